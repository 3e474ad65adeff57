"""Pair STDP in trace form: single step, window, one-product window; dense and conv.

Semantics (DESIGN.md, "Pair STDP, trace form"). Presynaptic traces ``x_pre``
(decay ``a_pre``, jump ``A_pre``), postsynaptic traces ``x_post`` (``a_post``,
``A_post``), cumulative (all-to-all pairing) or nearest (nearest-spike
pairing), including the current step's spike::

    cumulative: x_t = a * x_{t-1} + A * s_t
    nearest:    x_t = A where s_t, else a * x_{t-1}

At a post spike the synapse is potentiated by the presynaptic trace, at a pre
spike depressed by the postsynaptic trace::

    dw_ij += eta_post * f_post(w_ij) * sum_b s_post[b, i] * x_pre[b, j]
    dw_ij -= eta_pre  * f_pre(w_ij)  * sum_b x_post[b, i] * s_pre[b, j]

A Hebbian rule has ``eta_post > 0`` and ``eta_pre > 0`` in this form (the
kernel form of :mod:`plastic.functional.kernels` carries the sign in its
``eta_pre`` instead). A simultaneous pair (both spikes in one step) gives both
terms, since both traces already hold the current spike.

What the functions return
-------------------------
:func:`stdp_step` and :func:`stdp_window` return the two raw, non-negative
products, **without** learning rates and weight dependence::

    potentiation[g, o, k] = sum_{t, b, p} s_post[t, b, g, o, p] * x_pre[t, b, g, k, p]
    depression[g, o, k]   = sum_{t, b, p} x_post[t, b, g, o, p] * s_pre[t, b, g, k, p]

in the grouped weight layout ``[G, O, K]`` of :mod:`plastic.functional.receptive`
(dense: ``[1, N_out, N_in]``; conv: ``p`` runs over output positions, the
presynaptic quantities over each position's receptive field). Trainers scale
them by ``eta`` and ``f(w)`` (weights are constant within a window) and write
them into an updater; :func:`stdp_delta_weight` does that in one call.
:func:`stdp_window_net` returns the signed net change of all-to-all pairing
with identity weight dependence in one matrix product.

Batch reduction, conv products and the event-driven ``method``:
:mod:`plastic.functional.pair_products`; the one-product form of
:func:`stdp_window_net` filters the window with :mod:`plastic.functional.stdp_engine`;
the entry points check their arguments with :mod:`plastic.functional.stdp_checks`.

The view argument (:data:`View`, re-exported here with :data:`BatchReduction`
and :class:`ReceptiveView`), its layout (:class:`~plastic.functional.bilinear.ViewLayout`),
the trace recurrences, the batch reduction and the spike checks are shared
with the other trace rules: :mod:`plastic.functional.bilinear`.

References: Bi & Poo (1998), J. Neurosci. 18:10464; Song, Miller & Abbott
(2000), Nat. Neurosci. 3:919; Morrison, Diesmann & Gerstner (2008), Biol.
Cybern. 98:459 (trace formulation, pairing schemes, weight dependence).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from plastic.functional.bilinear import (
    BatchReduction,
    ReceptiveView,
    SynapseLayout,
    View,
    ViewLayout,
    WeightFactor,
    check_grouped_views,  # noqa: F401 (importable from here before the split)
    pairing_traces,
    reduce_batch,
)
from plastic.functional.events import event_indices  # noqa: F401 (importable from here before the split)
from plastic.functional.pair_products import (
    EVENT_CHUNK_ELEMENTS,  # noqa: F401 (likewise)
    METHODS,
    SPARSE_DENSITY_THRESHOLD,
    Method,
    event_product,  # noqa: F401 (likewise)
    pair_product,
)
from plastic.functional.pairing_schemes import (
    STATEFUL_PAIRINGS,
    STDP_PAIRINGS,
    PairingState,
    check_pairing_state,
    presynaptic_centred_window,
    restricted_window,
)
from plastic.functional.receptive import ConvGeometry, grouped_to_weight, weight_to_grouped  # noqa: F401 (ConvGeometry)
from plastic.functional.stdp_checks import CheckedInputs, Scalar, check_real, check_stdp_inputs
from plastic.functional.stdp_engine import (
    CONVERSION_CHUNK_ELEMENTS,  # noqa: F401 (likewise)
    blocked_window_product,
    decay_powers,
    filtered_presynaptic,
    pre_event_window_update,
    time_weighted_sum,
    uses_pre_event_product,
)
from plastic.functional.traces import (
    spike_values,
    trace_anticausal_window,
    trace_cumulative_window,
)
from plastic.functional.validation import check_shape, check_tensor

__all__ = [
    "METHODS",
    "SPARSE_DENSITY_THRESHOLD",
    "STDP_PAIRINGS",
    "BatchReduction",
    "PairingState",
    "ReceptiveView",
    "STDPNetUpdate",
    "STDPUpdate",
    "View",
    "pair_product",
    "receptive_views",
    "stdp_delta_weight",
    "stdp_step",
    "stdp_window",
    "stdp_window_net",
]

#: the ``pairing`` choices (:data:`~plastic.functional.pairing_schemes.STDP_PAIRINGS`)
Pairing = Literal["all", "nearest", "symmetric", "presynaptic_centred", "restricted"]


class STDPUpdate(NamedTuple):
    """Raw products ``[G, O, K]`` (non-negative), the traces after the last step, and the carried
    :class:`~plastic.functional.pairing_schemes.PairingState` of the ``"restricted"`` and
    ``"presynaptic_centred"`` schemes (None for the others)."""

    potentiation: Tensor
    depression: Tensor
    trace_pre: Tensor
    trace_post: Tensor
    pairing_state: PairingState | None = None


class STDPNetUpdate(NamedTuple):
    """Signed net change ``[G, O, K]`` and the traces after the last step."""

    delta_weight: Tensor
    trace_pre: Tensor
    trace_post: Tensor


def receptive_views(view: View) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """``(pre_view, post_view)`` callables for a view argument (see :data:`View`)."""
    layout = ViewLayout(view)
    return layout.pre, layout.post


#: Tuning of the one-product form (read at each call, so a test may patch them here).
#: Windows of at most this many presynaptic entries (``T * B * N_in``) are
#: filtered by one ``[T+2, T] @ [T, B*N_in]`` product instead of two
#: recurrences of ``T`` small steps: the steps' fixed cost dominates small
#: batches (B1 at B = 1: ~0.3 ms against ~2 ms on one CPU thread), the
#: product's ``T^2 B N`` work large ones.
MATRIX_FILTER_MAX_ELEMENTS = 1 << 20

#: Elements of one block of the filtered presynaptic window in the blocked
#: one-product form (steps per block = this // (B * N_in), at least 1).
#: Measured (one thread): 2^19 against 2^18 takes S1 (70000 -> 700, T = 100)
#: from 27.5 to 24.7 ms and B1 at B = 64 from 14.0 to 13.2 ms; 2^21 is slower.
FILTER_BLOCK_ELEMENTS = 1 << 19

#: Most elements of filtered presynaptic rows multiplied with the postsynaptic
#: spikes in one product of the blocked form (at least a filter block, at most
#: the weight's size). Each product passes over the whole change once (the CSR
#: product reads and writes all of its output, ~10 ms for a 70000 x 700
#: float32 weight however few events it adds), so a large weight gets few,
#: large products: S1 (70000 -> 700, T = 100) one per window instead of 34.
PRODUCT_BLOCK_ELEMENTS = 1 << 26


# ------------------------------------------------------------------------ the rules


def stdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    decay_pre: Scalar | None = None,
    decay_post: Scalar | None = None,
    tau_pre: Scalar | None = None,
    tau_post: Scalar | None = None,
    dt: float = 1.0,
    exact: bool = True,
    amplitude_pre: float = 1.0,
    amplitude_post: float = 1.0,
    pairing: Pairing = "all",
    pairing_state: PairingState | None = None,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
) -> STDPUpdate:
    """Pair STDP over a window: exactly the sum of :func:`stdp_step` over its steps.

    Args:
        spikes_pre: ``[T, B, *in_shape]`` presynaptic spikes (bool or {0, 1}).
        spikes_post: ``[T, B, *out_shape]`` postsynaptic spikes.
        trace_pre: ``[B, *in_shape]`` presynaptic trace carried from the step
            before the window (``None``: zeros). Its dtype is the dtype of the
            computation.
        trace_post: ``[B, *out_shape]`` postsynaptic trace, likewise.
        decay_pre, decay_post: per-step decay factors in ``[0, 1]`` (floats or
            tensors broadcasting to the trace shape), or instead
        tau_pre, tau_post: time constants (unit of ``dt``) with
        dt: step (> 0, ms by convention) and
        exact: ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
        amplitude_pre, amplitude_post: trace jump ``A`` at a spike.
        pairing: which spike pairs count (Morrison et al. 2008, Fig. 7;
            :mod:`plastic.functional.pairing_schemes`): ``"all"``
            (all-to-all, cumulative traces), ``"nearest"`` (the symmetric
            nearest-neighbour scheme, nearest traces; ``"symmetric"`` is the
            same), ``"presynaptic_centred"`` or ``"restricted"``.
        pairing_state: what ``"presynaptic_centred"`` and ``"restricted"``
            carry besides the traces (the ``pairing_state`` of the previous
            window's result, given together with its traces; ``None``: a fresh
            start). The other schemes take None.
        view: ``None`` (dense), a :class:`ConvGeometry` or a connection.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.
        method: ``"auto"``, ``"dense"`` or ``"sparse"`` products (the
            ``"restricted"`` scheme always gathers at the events).

    Returns:
        :class:`STDPUpdate` ``(potentiation, depression, trace_pre, trace_post,
        pairing_state)``: the raw products as ``[G, O, K]`` (potentiation: the
        sum of ``A_pre a_pre^(q-p)`` over the counted pairs with ``p <= q``,
        depression: of ``A_post a_post^(p-q)`` over those with ``q <= p``), the
        traces after the last step (new tensors; nearest traces for every
        scheme but ``"all"``) and the scheme's new state (None for the
        stateless schemes).

    ``"all"`` and ``"nearest"``: the products are ``sum s_post (x) x_pre`` and
    ``sum x_post (x) s_pre``; traces come from one recurrence over time (O(B*N)
    per step), each term is then one matrix product over ``T*B`` (conv:
    ``T*B*P`` per group). The other schemes: see
    :mod:`plastic.functional.pairing_schemes` (``"presynaptic_centred"``
    needs one presynaptic decay for all neurons).
    """
    checked = check_stdp_inputs(
        spikes_pre, spikes_post, trace_pre, trace_post, window=True,
        decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
        amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, batch_reduction=batch_reduction,
        method=method, pairing=pairing, pairing_state=pairing_state,
    )  # fmt: skip
    return _stdp_window(checked, pairing, ViewLayout(view), batch_reduction, method, (spikes_pre, spikes_post))


def _spike_matrix(given: object, checked: Tensor, dtype: torch.dtype) -> Tensor:
    """The spikes as values of ``dtype`` for the products: the caller's tensor itself when it
    already is ``{0, 1}`` of that dtype (checked; never written to), else converted."""
    if isinstance(given, Tensor) and given.dtype == dtype and given.shape == checked.shape and not given.requires_grad:
        return given
    return spike_values(checked, dtype)


def _stdp_window(
    checked: CheckedInputs,
    pairing: str,
    layout: ViewLayout,
    batch_reduction: BatchReduction,
    method: Method,
    spikes_original: tuple[object, object] = (None, None),
) -> STDPUpdate:
    dtype = checked.trace_pre.dtype
    if pairing in STATEFUL_PAIRINGS:
        return _stateful_window(checked, pairing, layout, batch_reduction, method)
    s_pre = _spike_matrix(spikes_original[0], checked.spikes_pre, dtype)
    s_post = _spike_matrix(spikes_original[1], checked.spikes_post, dtype)
    x_pre, last_pre = pairing_traces(
        checked.spikes_pre, checked.decay_pre, checked.amplitude_pre, checked.trace_pre, pairing
    )
    x_post, last_post = pairing_traces(
        checked.spikes_post, checked.decay_post, checked.amplitude_post, checked.trace_post, pairing
    )
    reduction = batch_reduction
    potentiation = pair_product(s_post, x_pre, view=layout, events="post", batch_reduction=reduction, method=method)
    depression = pair_product(x_post, s_pre, view=layout, events="pre", batch_reduction=reduction, method=method)
    return STDPUpdate(potentiation, depression, last_pre, last_post)


def _stateful_window(
    checked: CheckedInputs, pairing: str, layout: ViewLayout, batch_reduction: BatchReduction, method: Method
) -> STDPUpdate:
    """The ``"restricted"`` and ``"presynaptic_centred"`` schemes (:mod:`plastic.functional.pairing_schemes`)."""
    spikes_pre, spikes_post = checked.spikes_pre, checked.spikes_post
    # the layer shapes against the view, with errors naming the spikes
    SynapseLayout.infer(spikes_pre.shape[2:], spikes_post.shape[2:], layout.view, device=spikes_pre.device)
    state = check_pairing_state(
        checked.pairing_state, pairing, layout=layout, spikes_pre=checked.spikes_pre,
        spikes_post=checked.spikes_post, dtype=checked.trace_pre.dtype,
    )  # fmt: skip
    if pairing == "restricted":
        result = restricted_window(
            spikes_pre, spikes_post, checked.trace_pre, checked.trace_post, state,
            decay_pre=checked.decay_pre, decay_post=checked.decay_post, amplitude_pre=checked.amplitude_pre,
            amplitude_post=checked.amplitude_post, layout=layout, batch_reduction=batch_reduction,
        )  # fmt: skip
    else:
        assert isinstance(checked.decay_pre, float)  # one number: check_stdp_inputs
        result = presynaptic_centred_window(
            spikes_pre, spikes_post, checked.trace_pre, checked.trace_post, state,
            decay_pre=checked.decay_pre, decay_post=checked.decay_post, amplitude_pre=checked.amplitude_pre,
            amplitude_post=checked.amplitude_post, layout=layout, batch_reduction=batch_reduction, method=method,
        )  # fmt: skip
    return STDPUpdate(result.potentiation, result.depression, result.trace_pre, result.trace_post, result.state)


def stdp_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    decay_pre: Scalar | None = None,
    decay_post: Scalar | None = None,
    tau_pre: Scalar | None = None,
    tau_post: Scalar | None = None,
    dt: float = 1.0,
    exact: bool = True,
    amplitude_pre: float = 1.0,
    amplitude_post: float = 1.0,
    pairing: Pairing = "all",
    pairing_state: PairingState | None = None,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
) -> STDPUpdate:
    """One step of pair STDP: update both traces with this step's spikes, then::

        potentiation = reduce_b s_post[b] (x) x_pre[b]
        depression   = reduce_b x_post[b] (x) s_pre[b]

    ``spike_pre`` is ``[B, *in_shape]``, ``spike_post`` ``[B, *out_shape]``,
    traces ``[B, *shape]``; every other argument as in :func:`stdp_window`.
    Returns :class:`STDPUpdate` with ``[G, O, K]`` products and the new traces.
    """
    checked = check_stdp_inputs(
        spike_pre, spike_post, trace_pre, trace_post, window=False,
        decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
        amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, batch_reduction=batch_reduction,
        method=method, pairing=pairing, pairing_state=pairing_state,
    )  # fmt: skip
    return _stdp_window(checked, pairing, ViewLayout(view), batch_reduction, method)


def stdp_window_net(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    eta_post: float = 1.0,
    eta_pre: float = 1.0,
    decay_pre: Scalar | None = None,
    decay_post: float | Tensor | None = None,
    tau_pre: Scalar | None = None,
    tau_post: float | None = None,
    dt: float = 1.0,
    exact: bool = True,
    amplitude_pre: float = 1.0,
    amplitude_post: float = 1.0,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
    out: Tensor | None = None,
) -> STDPNetUpdate:
    """All-to-all pair STDP, identity weight dependence, as ONE product per window.

    Equal to ``eta_post * potentiation - eta_pre * depression`` of
    :func:`stdp_window` with ``pairing="all"``. The depression over the window,
    ``sum_t x_post(t)^T s_pre(t)``, splits into the pairs with both spikes in
    the window and the pairs whose post spike came before the window (held by
    the carried trace ``x_post(-1)``)::

        sum_t x_post(t)^T s_pre(t) = sum_t s_post(t)^T y_pre(t)
                                   + sum_b x_post(-1)[b] (x) z[b]
        y_pre(t) = A_post * sum_{u >= t} a_post^(u - t) s_pre(u)   (anti-causal, in the window)
        z        = sum_t a_post^(t + 1) s_pre(t)

    hence ``dw = sum_t s_post(t)^T (eta_post*x_pre(t) - eta_pre*y_pre(t)) -
    eta_pre * x_post(-1)^T z``: one product over ``T*B`` (or ``T*B*P``) plus a
    rank-``B`` correction. Pairs with the post spike in a later window are
    counted there through the returned presynaptic trace, so chained windows
    equal one long window.

    Args:
        eta_post, eta_pre: learning rates (weight units); Hebbian: both > 0.
        decay_post / tau_post: must be one number (the anti-causal presynaptic
            trace decays with it); ``decay_pre`` may be per neuron.
        method: ``"sparse"`` gathers the rows of the filtered presynaptic
            matrix at postsynaptic events (CSR product), ``"dense"`` one GEMM,
            ``"auto"`` sparse below :data:`SPARSE_DENSITY_THRESHOLD`.

    ``out``: a ``[G, O, K]`` tensor of the traces' dtype and device that
    receives the change (``batch_reduction`` ``"sum"`` or ``"mean"``), e.g. a
    buffer kept across windows: no fresh weight-sized allocation per call.
    An input-major ``out`` (``out[0].T`` contiguous, the layout of an
    input-major weight's accumulator) of a one-sample dense window is written
    in its own layout from the presynaptic events
    (:func:`~plastic.functional.stdp_engine.pre_event_window_product`, where
    :func:`~plastic.functional.stdp_engine.uses_pre_event_product` says so);
    any other non-contiguous ``out`` receives a copy of the change.

    Every other argument as in :func:`stdp_window`. Returns
    :class:`STDPNetUpdate` ``(delta_weight [G, O, K], trace_pre, trace_post)``.
    """
    checked = check_stdp_inputs(
        spikes_pre, spikes_post, trace_pre, trace_post, window=True,
        decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
        amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, batch_reduction=batch_reduction,
        method=method,
    )  # fmt: skip
    eta_post = check_real(eta_post, "eta_post")
    eta_pre = check_real(eta_pre, "eta_pre")
    amplitude_pre, amplitude_post = checked.amplitude_pre, checked.amplitude_post
    decay_post_value = checked.decay_post
    if isinstance(decay_post_value, Tensor):
        if decay_post_value.numel() != 1:
            raise ValueError(
                "decay_post: the one-product form needs one postsynaptic decay for all neurons, "
                f"got shape {tuple(decay_post_value.shape)}"
            )
        decay_post_value = float(decay_post_value.item())
    layout = ViewLayout(view)
    dtype = checked.trace_pre.dtype
    steps, batch = checked.spikes_pre.shape[:2]
    device = checked.trace_pre.device
    if out is not None:
        check_tensor(out, "out", ndim=3, device=device)
        if out.dtype != dtype:
            raise TypeError(f"out: expected dtype {dtype} (the traces'), got {out.dtype}")
        if layout.dense:
            outputs, inputs = math.prod(checked.spikes_post.shape[2:]), math.prod(checked.spikes_pre.shape[2:])
            check_shape(out, "out", (1, outputs, inputs))
        elif layout.geometry is not None:
            geometry = layout.geometry
            groups = geometry.groups
            check_shape(out, "out", (groups, geometry.out_channels // groups, geometry.receptive_size))

    needs_graph = torch.is_grad_enabled() and any(
        isinstance(value, Tensor) and value.requires_grad
        for value in (checked.trace_pre, checked.trace_post, checked.decay_pre)
    )
    if (
        out is not None
        and layout.dense
        and isinstance(batch_reduction, str)
        and not needs_graph
        and not isinstance(checked.decay_pre, Tensor)
        and uses_pre_event_product(out, steps, batch)
    ):
        # an input-major change (out[0] the transpose of a contiguous [N_in, N_out]): written input
        # by input from the presynaptic events, in its own layout
        layout.check_shapes(checked.spikes_pre[0], checked.spikes_post[0])
        _, last_pre, last_post = pre_event_window_update(
            checked.spikes_pre, checked.spikes_post, checked.trace_pre, checked.trace_post, trace_post is None,
            float(checked.decay_pre), decay_post_value, amplitude_pre, amplitude_post, eta_post, eta_pre, out,
        )  # fmt: skip
        return STDPNetUpdate(out, last_pre, last_post)  # one sample: the mean is the sum
    if out is not None and not out.is_contiguous():
        # another layout than the products write: computed in a contiguous buffer, then copied
        update = stdp_window_net(
            spikes_pre, spikes_post, trace_pre, trace_post, eta_post=eta_post, eta_pre=eta_pre,
            decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
            amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, view=view, batch_reduction=batch_reduction,
            method=method, out=torch.empty(out.shape, dtype=out.dtype, device=out.device),
        )  # fmt: skip
        return STDPNetUpdate(out.copy_(update.delta_weight), update.trace_pre, update.trace_post)
    main: Tensor | None = None
    if needs_graph:
        s_pre = _spike_matrix(spikes_pre, checked.spikes_pre, dtype)
        x_pre, last_pre = trace_cumulative_window(s_pre, checked.decay_pre, amplitude_pre, initial=checked.trace_pre)
        filtered = trace_anticausal_window(s_pre, decay_post_value, amplitude_post, dtype=dtype)
        filtered = filtered * -eta_pre + x_pre * eta_post  # eta_post*x_pre - eta_pre*y_pre
        # the pre spikes as seen by the carried post trace: z = sum_t a^(t+1) s_pre(t)
        seen_by_carried = torch.einsum("t,tb...->b...", decay_powers(decay_post_value, steps, dtype, device)[1:], s_pre)
    elif (
        layout.dense
        and isinstance(batch_reduction, str)
        and not isinstance(checked.decay_pre, Tensor)
        and checked.spikes_pre.numel() > MATRIX_FILTER_MAX_ELEMENTS
    ):
        # large dense windows: filtered and multiplied a block of steps at a time, never whole
        layout.check_shapes(checked.spikes_pre[0], checked.spikes_post[0])
        main, last_pre, seen_by_carried = blocked_window_product(
            checked.spikes_pre, checked.spikes_post, checked.trace_pre, float(checked.decay_pre),
            decay_post_value, amplitude_pre, amplitude_post, eta_post, eta_pre, method, out,
            filter_block_elements=FILTER_BLOCK_ELEMENTS, product_block_elements=PRODUCT_BLOCK_ELEMENTS,
        )  # fmt: skip
    else:
        filtered, last_pre, seen_by_carried = filtered_presynaptic(
            checked.spikes_pre, checked.trace_pre, checked.decay_pre, decay_post_value,
            amplitude_pre, amplitude_post, eta_post, eta_pre, matrix_max_elements=MATRIX_FILTER_MAX_ELEMENTS,
        )  # fmt: skip

    # trace_post after the window, closed form: a^T x(-1) + A sum_u a^(T-1-u) s_post(u)
    powers = decay_powers(decay_post_value, steps, dtype, device)
    last_post = checked.trace_post * powers[steps] + amplitude_post * time_weighted_sum(
        checked.spikes_post, powers[:steps].flip(0)
    )
    # the event side stays bool: the event-driven product reads its nonzeros directly
    s_post = checked.spikes_post

    if isinstance(batch_reduction, str):
        if main is None and out is not None and trace_post is not None and layout.dense and not filtered.requires_grad:
            # the carried-trace term written first (beta 0: no zeroing pass over ``out``), the window's
            # pairs then added into it: their event-driven product touches only the rows with post spikes
            torch.addmm(
                out[0], checked.trace_post.reshape(batch, -1).T, seen_by_carried.reshape(batch, -1),
                beta=0, alpha=-eta_pre, out=out[0],
            )  # fmt: skip
            delta = pair_product(
                s_post, filtered, view=layout, events="post", batch_reduction="sum", method=method, out=out,
                accumulate=True,
            )  # fmt: skip
        else:
            if main is None:
                main = pair_product(
                    s_post, filtered, view=layout, events="post", batch_reduction="sum", method=method, out=out
                )
            if trace_post is None:
                delta = main  # no carried postsynaptic trace: no pairs with a post spike before the window
            elif layout.dense and not main.requires_grad:
                # the rank-B correction added in place: no second weight-sized product and pass
                delta = main
                delta[0].addmm_(
                    checked.trace_post.reshape(batch, -1).T, seen_by_carried.reshape(batch, -1), alpha=-eta_pre
                )
            else:
                carried = pair_product(
                    checked.trace_post.unsqueeze(0), seen_by_carried.unsqueeze(0), view=layout, batch_reduction="sum"
                )
                delta = main.sub_(carried, alpha=eta_pre)
        if batch_reduction == "mean":
            delta = delta.div_(batch)
    else:
        if out is not None:
            raise ValueError("out: needs batch_reduction 'sum' or 'mean' (a callable reduces per-sample values)")
        s_post_values = _spike_matrix(spikes_post, checked.spikes_post, dtype)
        per_sample = layout.per_sample(s_post_values, filtered)
        per_sample -= eta_pre * layout.per_sample(checked.trace_post.unsqueeze(0), seen_by_carried.unsqueeze(0))
        delta = reduce_batch(per_sample, batch_reduction)
    return STDPNetUpdate(delta, last_pre, last_post)


def stdp_delta_weight(
    potentiation: Tensor,
    depression: Tensor,
    weight: Tensor,
    *,
    eta_post: Scalar = 1.0,
    eta_pre: Scalar = 1.0,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
) -> Tensor:
    """``eta_post * f_post(w) * potentiation - eta_pre * f_pre(w) * depression`` in weight shape.

    Args:
        potentiation, depression: ``[G, O, K]`` raw products (e.g. from
            :func:`stdp_window`).
        weight: the connection's weight (dense ``[N_out, N_in]``, conv
            ``[C_out, C_in/G, *kernel]``), grouped with ``G`` of the products.
        eta_post, eta_pre: learning rates (weight units; tensors broadcast to
            ``[G, O, K]``); Hebbian: both > 0.
        f_post, f_pre: weight dependence ``f(w) -> factor`` (e.g. soft bounds
            ``(w_max - w)^mu`` and ``(w - w_min)^mu``; Gütig et al. 2003;
            Morrison et al. 2008); ``None`` is the identity (additive STDP).
    """
    potentiation = check_tensor(potentiation, "potentiation", ndim=3, floating=True)
    depression = check_tensor(depression, "depression", shape=potentiation.shape, floating=True)
    weight = check_tensor(weight, "weight", min_ndim=2)
    grouped = weight_to_grouped(weight, potentiation.shape[0]) if weight.shape[0] % potentiation.shape[0] == 0 else None
    if grouped is None or grouped.shape != potentiation.shape:
        raise ValueError(
            f"weight: shape {tuple(weight.shape)} does not group into the products' shape {tuple(potentiation.shape)}"
        )
    up = potentiation * eta_post if f_post is None else potentiation * f_post(grouped) * eta_post
    down = depression * eta_pre if f_pre is None else depression * f_pre(grouped) * eta_pre
    return grouped_to_weight(up - down, weight.shape)
