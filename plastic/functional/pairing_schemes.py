"""Spike-pairing schemes of pair STDP: all-to-all and the nearest-neighbour schemes.

Which pre/post spike pairs of one synapse count (Morrison, Diesmann & Gerstner
2008, Fig. 7; NEST's ``stdp_synapse``, ``stdp_nn_symm_synapse``,
``stdp_nn_pre_centered_synapse``, ``stdp_nn_restr_synapse``). With ``P`` the
steps of the presynaptic spikes and ``Q`` those of the postsynaptic spikes
(one synapse, one sample)::

    prev_P(q) = max {p in P : p <= q}      next_P(q) = min {p in P : p >= q}
    prev_Q(p) = max {q in Q : q <= p}      next_Q(p) = min {q in Q : q >= p}

a potentiation pair ``(p, q)`` (``p <= q``) adds ``A_pre * a_pre^(q - p)`` to
the potentiation and a depression pair (``q <= p``) adds
``A_post * a_post^(p - q)`` to the depression::

    scheme                 potentiation pairs                     depression pairs
    "all"                  every p <= q                           every q <= p
    "nearest"/"symmetric"  (prev_P(q), q) for each q              (p, prev_Q(p)) for each p
    "presynaptic_centred"  (p, next_Q(p)) for each p              (p, prev_Q(p)) for each p
    "restricted"           (p, q): p = prev_P(q) and q = next_Q(p)   (p, q): q = prev_Q(p) and p = next_P(q)

"nearest" is the symmetric scheme (Fig. 7A, ``stdp_nn_symm_synapse``): each
post spike pairs with the latest pre spike, each pre spike with the latest
post spike (nearest traces on both sides, set to ``A`` at a spike). The
presynaptic-centred scheme (Fig. 7B, ``stdp_nn_pre_centered_synapse``;
Izhikevich & Desai 2003) pairs each pre spike with the latest post spike
before it (depression) and the first post spike after it (potentiation): a
post spike potentiates with every pre spike since the previous post spike.
The restricted (reduced symmetric) scheme (Fig. 7C, ``stdp_nn_restr_synapse``;
Burkitt, Meffin & Grayden 2004) keeps the symmetric pairs whose two spikes are
neighbours, with no spike of either partner between them: each spike is in at
most one potentiation and one depression pair.

Simultaneous spikes. This library's traces include the current step's spike
(DESIGN.md), so ``p == q`` is both a potentiation and a depression pair in
every scheme, and it is the nearest partner on either side (the ``<=`` and
``>=`` above). NEST discards pairs with zero lag instead and pairs the spike
with the second-latest partner.

How each scheme is computed over a window ``[T, B, *shape]`` (steps in a loop
over time touch ``O(B*N)`` values; every term is a product or an event gather):

* ``"all"``, ``"nearest"``/``"symmetric"``: traces and two pair products
  (:mod:`plastic.functional.stdp`).
* ``"restricted"``: the nearest traces, plus the time of each neuron's latest
  spike at or before each step (``last``) and strictly before it
  (``previous``). A post event at ``q`` takes ``x_pre`` of every presynaptic
  neuron whose latest spike is after the postsynaptic neuron's previous one
  (``last_pre(q) > previous_post(q)``); a pre event at ``p`` takes ``x_post``
  of every postsynaptic neuron with ``last_post(p) > previous_pre(p)``. The
  masked rows are gathered at the events (work proportional to the events
  times the fan-in or fan-out). Carried: the traces and the steps since each
  neuron's last spike.
* ``"presynaptic_centred"``: depression as ``"nearest"``. Potentiation pairs
  each pre spike with the first post spike at or after it: within the window,
  the anti-causal nearest postsynaptic trace ``z(t) = A_pre a_pre^(next_Q(t) - t)``
  times the pre spikes (one product); pre spikes still waiting for a post
  spike at the end of a window are kept per synapse (``pending_pre`` ``[B, G,
  O, K, P]``, the presynaptic trace reset at each postsynaptic spike: NEST's
  per-synapse ``Kplus``) and pair with the first post spike of a later window.

References: A. Morrison, M. Diesmann & W. Gerstner (2008), Biol. Cybern.
98:459-478 (Fig. 7); E. M. Izhikevich & N. S. Desai (2003), Neural Comput.
15:1511-1523; A. N. Burkitt, H. Meffin & D. B. Grayden (2004), Neural Comput.
16:885-940; NEST's documentation of the synapse models named above.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from plastic.functional.bilinear import (
    BatchReduction,
    View,
    ViewLayout,
    check_grouped_views,
    reduce_batch,
)
from plastic.functional.events import event_indices
from plastic.functional.pair_products import Method, pair_product
from plastic.functional.stdp_engine import decay_powers
from plastic.functional.traces import spike_values, trace_nearest_window
from plastic.functional.validation import check_tensor

__all__ = [
    "NO_SPIKE",
    "STATEFUL_PAIRINGS",
    "STDP_PAIRINGS",
    "PairingProducts",
    "PairingState",
    "check_pairing_state",
    "initial_pairing_state",
    "masked_event_product",
    "presynaptic_centred_window",
    "restricted_window",
    "spike_times",
]

#: the ``pairing`` choices of pair STDP (``"symmetric"`` is ``"nearest"``)
STDP_PAIRINGS = ("all", "nearest", "symmetric", "presynaptic_centred", "restricted")
#: the schemes that carry a :class:`PairingState` besides the two traces
STATEFUL_PAIRINGS = ("presynaptic_centred", "restricted")
#: ``steps_since_*`` of a neuron that has not spiked yet
NO_SPIKE = -1

#: time steps of a window unfolded at once by the event gathers (elements of the
#: unfolded values per chunk of steps; a dense layer unfolds nothing)
UNFOLD_CHUNK_ELEMENTS = 1 << 22
#: gathered elements per chunk of events (rows of the masked product)
EVENT_CHUNK_ELEMENTS = 1 << 22


class PairingState(NamedTuple):
    """What a nearest-neighbour scheme carries between windows besides the traces.

    steps_since_pre, steps_since_post: ``int64`` ``[B, *in_shape]`` and
        ``[B, *out_shape]``, the steps from each neuron's last spike to the
        window's last step (0: it spiked at that step; :data:`NO_SPIKE`: never).
        ``"restricted"`` only.
    pending_pre: ``[B, G, O, K, P]`` (the traces' dtype), per synapse and
        receptive position, ``sum A_pre a_pre^(T-1-p)`` over the pre spikes ``p``
        after the postsynaptic neuron's last spike: they pair with its next one.
        ``"presynaptic_centred"`` only.
    """

    steps_since_pre: Tensor | None = None
    steps_since_post: Tensor | None = None
    pending_pre: Tensor | None = None


class PairingProducts(NamedTuple):
    """Raw products ``[G, O, K]``, the nearest traces after the window and the new :class:`PairingState`."""

    potentiation: Tensor
    depression: Tensor
    trace_pre: Tensor
    trace_post: Tensor
    state: PairingState


# ---------------------------------------------------------------------- checks


def _grouped_sizes(layout: ViewLayout, spikes_pre: Tensor, spikes_post: Tensor) -> tuple[int, int, int, int]:
    """``(G, O, K, P)`` of the layout for windows ``[T, B, *shape]``, from one blank sample of each side."""
    device = spikes_pre.device
    pre_view = layout.pre(torch.zeros((1, *spikes_pre.shape[2:]), device=device))
    post_view = layout.post(torch.zeros((1, *spikes_post.shape[2:]), device=device))
    check_grouped_views(pre_view, post_view)
    groups, inputs, positions = pre_view.shape[1:]
    return int(groups), int(post_view.shape[2]), int(inputs), int(positions)


def initial_pairing_state(
    pairing: str, *, spikes_pre: Tensor, spikes_post: Tensor, view: View | ViewLayout, dtype: torch.dtype
) -> PairingState:
    """The state of a stateful ``pairing`` before any spike, for windows ``[T, B, *shape]`` like
    ``spikes_pre``/``spikes_post`` on ``view``: no spike yet (``"restricted"``), nothing pending
    (``"presynaptic_centred"``, zeros of ``dtype``)."""
    layout = view if isinstance(view, ViewLayout) else ViewLayout(view)
    batch = spikes_pre.shape[1]
    device = spikes_pre.device
    if pairing == "restricted":
        return PairingState(
            torch.full((batch, *spikes_pre.shape[2:]), NO_SPIKE, dtype=torch.int64, device=device),
            torch.full((batch, *spikes_post.shape[2:]), NO_SPIKE, dtype=torch.int64, device=device),
        )
    if pairing != "presynaptic_centred":
        raise ValueError(f"pairing: expected one of {list(STATEFUL_PAIRINGS)}, got {pairing!r}")
    groups, outputs, inputs, positions = _grouped_sizes(layout, spikes_pre, spikes_post)
    return PairingState(
        pending_pre=torch.zeros((batch, groups, outputs, inputs, positions), dtype=dtype, device=device)
    )


def check_pairing_state(
    state: object,
    pairing: str,
    *,
    layout: ViewLayout,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    dtype: torch.dtype,
) -> PairingState:
    """The carried state of a stateful ``pairing`` for windows ``spikes_pre``/``spikes_post`` ``[T, B, ...]``.

    ``None``: a fresh one (no spike yet, nothing pending). Otherwise a
    :class:`PairingState` with the fields the scheme uses, of the batch's
    shapes, on the spikes' device (``pending_pre``: finite, of ``dtype``).
    Errors name ``pairing_state.<field>``.
    """
    batch = spikes_pre.shape[1]
    in_shape, out_shape = (batch, *spikes_pre.shape[2:]), (batch, *spikes_post.shape[2:])
    device = spikes_pre.device
    restricted = pairing == "restricted"
    if state is None:
        return initial_pairing_state(pairing, spikes_pre=spikes_pre, spikes_post=spikes_post, view=layout, dtype=dtype)
    if not isinstance(state, PairingState):
        raise TypeError(f"pairing_state: expected a PairingState or None, got {type(state).__name__}")
    if restricted:
        if state.pending_pre is not None:
            raise ValueError("pairing_state.pending_pre: the 'restricted' scheme carries none (expected None)")
        for name, value, shape in (
            ("steps_since_pre", state.steps_since_pre, in_shape),
            ("steps_since_post", state.steps_since_post, out_shape),
        ):
            tensor = check_tensor(value, f"pairing_state.{name}", shape=shape, device=device)
            if tensor.dtype != torch.int64:
                raise TypeError(f"pairing_state.{name}: expected dtype torch.int64, got {tensor.dtype}")
            if tensor.numel() and int(tensor.min()) < NO_SPIKE:
                raise ValueError(f"pairing_state.{name}: expected steps >= 0, or {NO_SPIKE} for no spike yet")
        return state
    if state.steps_since_pre is not None or state.steps_since_post is not None:
        raise ValueError(
            "pairing_state.steps_since_pre: the 'presynaptic_centred' scheme carries only pending_pre (expected None)"
        )
    groups, outputs, inputs, positions = _grouped_sizes(layout, spikes_pre, spikes_post)
    pending = check_tensor(
        state.pending_pre, "pairing_state.pending_pre", shape=(batch, groups, outputs, inputs, positions),
        floating=True, finite=True, device=device,
    )  # fmt: skip
    if pending.dtype != dtype:
        raise TypeError(f"pairing_state.pending_pre: expected dtype {dtype} (the traces'), got {pending.dtype}")
    return state


# ------------------------------------------------------------------ spike times


def spike_times(spikes: Tensor, steps_since: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Window-relative steps of each neuron's latest spike, for a window ``spikes`` ``[T, B, ...]`` (bool).

    Returns ``(last, previous, steps_since_after)``: ``last[t]`` the step of
    the latest spike at or before ``t``, ``previous[t]`` the latest strictly
    before ``t`` (a spike ``s`` steps before the window is at ``-1 - s``, none
    at the dtype's least value; ``int32``, or ``int64`` when the carried steps
    need it, so comparisons stay exact), and the steps since each neuron's
    last spike after the window (``int64``, :data:`NO_SPIKE` for none).
    """
    steps = spikes.shape[0]
    oldest = int(steps_since.max()) if steps_since.numel() else 0
    dtype = torch.int32 if oldest < torch.iinfo(torch.int32).max - steps - 2 else torch.int64
    never = torch.iinfo(dtype).min
    times = torch.empty((steps + 1, *spikes.shape[1:]), dtype=dtype, device=spikes.device)
    times[0] = torch.where(steps_since < 0, never, -1 - steps_since)
    index = torch.arange(steps, dtype=dtype, device=spikes.device)
    for t in range(steps):  # one O(B*N) step each (a cumulative max along time is slower on CPU)
        torch.where(spikes[t], index[t], times[t], out=times[t + 1])
    if steps:
        latest = times[steps]
        after = torch.where(
            latest >= 0,
            (steps - 1 - latest).to(torch.int64),
            torch.where(steps_since < 0, steps_since, steps_since + steps),
        )
    else:
        after = steps_since.clone()
    return times[1:], times[:-1], after


# ---------------------------------------------------------------- event gathers


def masked_event_product(
    layout: ViewLayout,
    events: Tensor,
    values: Tensor,
    keys: Tensor,
    thresholds: Tensor,
    *,
    events_side: str,
    per_sample: bool,
) -> Tensor:
    """Event rows of ``values`` masked by ``keys > thresholds``, summed into the grouped weight layout.

    With ``events_side="post"`` (``events``, ``thresholds`` postsynaptic
    ``[T, B, *out_shape]``; ``values``, ``keys`` presynaptic ``[T, B, *in_shape]``)::

        out[g, o, k] = sum_{t, b, p} events[t,b,g,o,p] * values[t,b,g,k,p] * [keys[t,b,g,k,p] > thresholds[t,b,g,o,p]]

    and with ``events_side="pre"`` the same with the sides exchanged (the
    events presynaptic, summed over ``o`` into ``out[g, o, k]``). ``per_sample``:
    ``[B, G, O, K]`` without the sum over ``b``. Work proportional to the
    events times the row length (fan-in or fan-out): each event gathers its
    row, masks it and adds it into its destination. The window is unfolded a
    chunk of steps at a time, the events gathered a chunk at a time.
    """
    steps, batch = events.shape[:2]
    event_map, value_map = (layout.post, layout.pre) if events_side == "post" else (layout.pre, layout.post)
    if not layout.dense:  # unfolding needs floating values (exact for the int32 steps)
        keys, thresholds = keys.to(torch.float64), thresholds.to(torch.float64)
    blank_events = event_map(torch.zeros((1, *events.shape[2:]), dtype=values.dtype, device=values.device))
    blank_values = value_map(torch.zeros((1, *values.shape[2:]), dtype=values.dtype, device=values.device))
    groups, rows, columns = blank_events.shape[1], blank_events.shape[2], blank_values.shape[2]
    out = values.new_zeros((batch * groups if per_sample else groups) * rows, columns)
    chunk_steps = max(1, UNFOLD_CHUNK_ELEMENTS // max(1, blank_values.numel() * batch))
    chunk_events = max(1, EVENT_CHUNK_ELEMENTS // max(columns, 1))
    for begin in range(0, steps if batch else 0, chunk_steps):
        end = min(steps, begin + chunk_steps)
        count = (end - begin) * batch
        fired = event_map(events[begin:end].reshape(count, *events.shape[2:]))
        sample, group, row, position = event_indices(fired if fired.dtype == torch.bool else fired != 0)
        if sample.numel() == 0:
            continue
        # values and keys as rows [N * G * P, C]: one row per event (a dense layout reshapes in place)
        positions = fired.shape[3]
        value_rows = value_map(values[begin:end].reshape(count, *values.shape[2:])).transpose(2, 3).reshape(-1, columns)
        key_rows = value_map(keys[begin:end].reshape(count, *keys.shape[2:])).transpose(2, 3).reshape(-1, columns)
        threshold_view = event_map(thresholds[begin:end].reshape(count, *thresholds.shape[2:]))
        source = (sample * groups + group) * positions + position
        destination = group * rows + row
        if per_sample:
            destination = destination + (sample % batch) * (groups * rows)
        for first in range(0, sample.numel(), chunk_events):
            part = slice(first, first + chunk_events)
            threshold = threshold_view[sample[part], group[part], row[part], position[part]]
            kept = key_rows.index_select(0, source[part]) > threshold.unsqueeze(1)
            out.index_add_(0, destination[part], value_rows.index_select(0, source[part]).mul_(kept))
    out = out.view(batch, groups, rows, columns) if per_sample else out.view(groups, rows, columns)
    return out if events_side == "post" else out.transpose(-2, -1)


def _gather_at_post_times(layout: ViewLayout, values: Tensor, times: Tensor, grouped_shape: tuple[int, ...]) -> Tensor:
    """``out[b, g, o, k, p] = pre_view(values[times[b, g, o, p], b])[g, k, p]`` as ``[B, G, O, K, P]``.

    ``values`` ``[S, B, *in_shape]``; ``times`` ``[B, G, O, P]`` (int64 in
    ``[0, S)``). A dense layout reads ``values`` in place; others are unfolded
    a chunk of steps at a time (:data:`UNFOLD_CHUNK_ELEMENTS`).
    """
    count, batch = values.shape[:2]
    _, groups, outputs, inputs, positions = grouped_shape
    per_step = max(1, batch * groups * inputs * positions)
    chunk_steps = count if layout.dense else max(1, UNFOLD_CHUNK_ELEMENTS // per_step)
    out: Tensor | None = None
    for begin in range(0, count, chunk_steps):
        end = min(count, begin + chunk_steps)
        inside = (times >= begin) & (times < end)
        if out is not None and not bool(inside.any()):
            continue
        unfolded = layout.pre(values[begin:end].reshape((end - begin) * batch, *values.shape[2:]))
        source = unfolded.view(end - begin, batch, groups, inputs, positions).permute(1, 2, 3, 4, 0)
        local = (times - begin).clamp(0, end - begin - 1)  # [B, G, O, P]
        index = local[:, :, :, None, :, None].expand(batch, groups, outputs, inputs, positions, 1)
        gathered = torch.gather(
            source.unsqueeze(2).expand(batch, groups, outputs, inputs, positions, end - begin), 5, index
        ).squeeze(5)
        out = gathered if out is None else torch.where(inside[:, :, :, None, :], gathered, out)
    assert out is not None
    return out


# ---------------------------------------------------------------------- schemes


def _empty_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor,
    trace_post: Tensor,
    state: PairingState,
    layout: ViewLayout,
    batch_reduction: BatchReduction,
) -> PairingProducts:
    """A window without steps: no pairs, everything carried as it was."""
    zero = pair_product(
        spike_values(spikes_post, trace_pre.dtype), spikes_pre, view=layout, batch_reduction=batch_reduction
    )
    kept = PairingState(*(None if value is None else value.clone() for value in state))
    return PairingProducts(zero, zero.clone(), trace_pre.clone(), trace_post.clone(), kept)


def _reduce(terms: Tensor, batch: int, batch_reduction: BatchReduction) -> Tensor:
    """Per-sample ``[B, G, O, K]`` or summed ``[G, O, K]`` products reduced over the batch."""
    if isinstance(batch_reduction, str):
        return terms / batch if batch_reduction == "mean" else terms
    return reduce_batch(terms, batch_reduction)


def restricted_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor,
    trace_post: Tensor,
    state: PairingState,
    *,
    decay_pre: float | Tensor,
    decay_post: float | Tensor,
    amplitude_pre: float,
    amplitude_post: float,
    layout: ViewLayout,
    batch_reduction: BatchReduction,
) -> PairingProducts:
    """Restricted (reduced symmetric) nearest-neighbour pairing over a window (checked inputs, bool spikes).

    Potentiation at a post spike ``q`` with the latest pre spike ``p <= q``
    when no post spike lies in ``[p, q)``; depression at a pre spike ``p``
    with the latest post spike ``q <= p`` when no pre spike lies in ``[q, p)``
    (see the module notes).
    """
    assert state.steps_since_pre is not None and state.steps_since_post is not None
    steps, batch = spikes_pre.shape[:2]
    if steps == 0:
        return _empty_window(spikes_pre, spikes_post, trace_pre, trace_post, state, layout, batch_reduction)
    x_pre, last_trace_pre = trace_nearest_window(spikes_pre, decay_pre, amplitude_pre, initial=trace_pre)
    x_post, last_trace_post = trace_nearest_window(spikes_post, decay_post, amplitude_post, initial=trace_post)
    last_pre, previous_pre, since_pre = spike_times(spikes_pre, state.steps_since_pre)
    last_post, previous_post, since_post = spike_times(spikes_post, state.steps_since_post)
    per_sample = not isinstance(batch_reduction, str)
    potentiation = masked_event_product(
        layout, spikes_post, x_pre, last_pre, previous_post, events_side="post", per_sample=per_sample
    )
    depression = masked_event_product(
        layout, spikes_pre, x_post, last_post, previous_pre, events_side="pre", per_sample=per_sample
    )
    return PairingProducts(
        _reduce(potentiation, batch, batch_reduction),
        _reduce(depression, batch, batch_reduction),
        last_trace_pre,
        last_trace_post,
        PairingState(since_pre, since_post),
    )


def presynaptic_centred_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor,
    trace_post: Tensor,
    state: PairingState,
    *,
    decay_pre: float,
    decay_post: float | Tensor,
    amplitude_pre: float,
    amplitude_post: float,
    layout: ViewLayout,
    batch_reduction: BatchReduction,
    method: Method,
) -> PairingProducts:
    """Presynaptic-centred nearest-neighbour pairing over a window (checked inputs, bool spikes).

    Depression at each pre spike with the latest post spike at or before it
    (nearest postsynaptic trace); potentiation of each pre spike with the first
    post spike at or after it. ``decay_pre`` is one number (the anti-causal
    trace that pairs pre spikes with later post spikes lives on the
    postsynaptic side). ``trace_pre`` is only carried on (the nearest
    presynaptic trace, for inspection): the scheme's presynaptic memory is
    ``state.pending_pre``.
    """
    pending = state.pending_pre
    assert pending is not None
    steps, batch = spikes_pre.shape[:2]
    if steps == 0:
        return _empty_window(spikes_pre, spikes_post, trace_pre, trace_post, state, layout, batch_reduction)
    dtype = pending.dtype
    device = pending.device
    _, last_trace_pre = trace_nearest_window(spikes_pre, decay_pre, amplitude_pre, initial=trace_pre)
    x_post, last_trace_post = trace_nearest_window(spikes_post, decay_post, amplitude_post, initial=trace_post)
    per_sample = not isinstance(batch_reduction, str)
    depression = pair_product(
        x_post, spikes_pre, view=layout, events="pre", batch_reduction=batch_reduction, method=method
    )

    # pairs within the window: z(t) = A_pre a_pre^(next_Q(t) - t), the nearest trace run backwards
    reversed_post = spikes_post.flip(0)
    zero_post = torch.zeros(spikes_post.shape[1:], dtype=dtype, device=device)
    following = trace_nearest_window(reversed_post, decay_pre, amplitude_pre, initial=zero_post)[0].flip(0)
    s_pre = spike_values(spikes_pre, dtype)
    if per_sample:
        within = layout.per_sample(following, s_pre)
    else:
        within = pair_product(following, spikes_pre, view=layout, events="pre", batch_reduction="sum", method=method)

    # pre spikes pending from earlier windows pair with the first post spike here: pending * a^(first + 1)
    fired = spikes_post.any(0)
    as_bytes = spikes_post.to(torch.uint8)
    first = as_bytes.argmax(0)  # the first post spike of each neuron (argmax: the first maximum)
    decay = torch.tensor(decay_pre, dtype=dtype, device=device)
    factor = torch.where(fired, torch.pow(decay, (first + 1).to(dtype)), 0.0)
    factor_view = layout.post(factor)  # [B, G, O, P]
    if per_sample:
        potentiation = within + torch.einsum("bgop,bgokp->bgok", factor_view, pending)
    else:
        potentiation = within + torch.einsum("bgop,bgokp->gok", factor_view, pending)

    # what stays pending: the pre spikes after each post neuron's last spike in the window,
    # suffix[u] = sum_{v >= u} A_pre a_pre^(T-1-v) s_pre(v) (suffix[T] = 0), read at u = last + 1
    # (a neuron that did not fire reads suffix[0], all of the window's pre spikes, and keeps a^T pending)
    powers = decay_powers(decay_pre, steps, dtype, device)  # a^0 .. a^T
    weights = amplitude_pre * powers[:steps].flip(0)
    suffix = torch.zeros((steps + 1, *s_pre.shape[1:]), dtype=dtype, device=device)
    for u in range(steps - 1, -1, -1):  # one O(B*N) step each (cumsum along time is slower on CPU)
        torch.add(suffix[u + 1], s_pre[u], alpha=float(weights[u]), out=suffix[u])
    last = steps - 1 - as_bytes.flip(0).argmax(0)
    restart = torch.where(fired, last + 1, 0)
    restart_view = layout.post(restart.to(dtype)).to(torch.int64)  # [B, G, O, P]
    kept = layout.post(torch.where(fired, 0.0, powers[steps]))  # a^T where no post spike
    new_pending = _gather_at_post_times(layout, suffix, restart_view, tuple(pending.shape))
    new_pending.addcmul_(pending, kept[:, :, :, None, :])
    return PairingProducts(
        _reduce(potentiation, batch, batch_reduction),
        depression,
        last_trace_pre,
        last_trace_post,
        PairingState(pending_pre=new_pending),
    )
