"""Triplet STDP (Pfister & Gerstner 2006), dense and convolutional, step and window.

Four traces. Presynaptic: ``r1`` (time constant ``tau_plus``) and ``r2``
(``tau_x``); postsynaptic: ``o1`` (``tau_minus``) and ``o2`` (``tau_y``). Each
trace decays by ``a = exp(-dt/tau)`` per step and, at a spike of its neuron,
is incremented by 1 (all-to-all pairing) or set to 1 (nearest-spike pairing).
Traces include the current step's spike (so a simultaneous pre/post pair
contributes to both terms). The weight change of synapse ``post i <- pre j`` is::

    at a post spike:  dw_ij += f_post(w_ij) * r1_j(t) * (A2p + A3p * o2_i(t-))
    at a pre spike:   dw_ij -= f_pre(w_ij)  * o1_i(t) * (A2m + A3m * r2_j(t-))

where ``o2_i(t-)`` / ``r2_j(t-)`` is the value just before the current spike:
the previous step's trace decayed once, ``a_y * o2_i(t-1)`` (the same in both
pairing variants), i.e. without this step's increment. Summed over the batch
(``batch_reduction``) and, for a convolution, over output positions.

The window form is the fast path: the four traces by their recurrence (O(B*N)
per step), then, because ``s_post(t) * (A2p + A3p*o2(t-))`` is a scalar per
post neuron and step, one product over the flattened ``T*B*P`` dimension per
term::

    potentiation = sum_{t,b,p} [s_post * (A2p + A3p*o2(t-))]_{i} * r1_j
    depression   = sum_{t,b,p} o1_i * [s_pre * (A2m + A3m*r2(t-))]_{j}

Both are returned as non-negative magnitudes (``A* >= 0``, ``f >= 0``)
together with the carried traces, so that two chained windows give exactly
one long window.

Units: time constants in the unit of ``dt`` (ms by convention); amplitudes are
in the unit of the weight per spike pair (``A2*``) or triplet (``A3*``).

Reference: J.-P. Pfister & W. Gerstner (2006), "Triplets of spikes in a model
of spike timing-dependent plasticity", J. Neurosci. 26(38):9673-9682. The
default parameters are the paper's visual-cortex fit (all-to-all, full model):
``tau_plus=16.8, tau_minus=33.7, tau_x=101, tau_y=125`` ms,
``A2p=5e-10, A3p=6.2e-3, A2m=7e-3, A3m=2.3e-4``.

The layout (``view=``: dense, a ``ConvGeometry`` or a connection), the batch
reduction and the argument checks are shared with the other trace rules:
:mod:`plastic.functional.bilinear`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, one_of, positive
from plastic.functional.bilinear import (
    PAIRINGS,
    BatchReduction,
    View,
    WeightFactor,
    check_rule_inputs,
    pairing_traces,
    step_as_window,
)
from plastic.functional.traces import decay_factor

__all__ = [
    "TripletParameters",
    "TripletTraces",
    "TripletUpdate",
    "triplet_initial_traces",
    "triplet_stdp_step",
    "triplet_stdp_window",
]


@attrs.frozen
class TripletParameters:
    """Hyperparameters of triplet STDP (defaults: Pfister & Gerstner 2006, visual cortex, all-to-all).

    ``tau_plus``, ``tau_x`` (presynaptic ``r1``, ``r2``) and ``tau_minus``,
    ``tau_y`` (postsynaptic ``o1``, ``o2``) in the unit of ``dt`` (ms);
    ``a2_plus``, ``a3_plus``, ``a2_minus``, ``a3_minus`` >= 0 in weight units;
    ``pairing`` ``"all"`` (cumulative traces, all-to-all) or ``"nearest"`` (traces
    set to 1); ``exact_decay`` ``exp(-dt/tau)`` (True) or Euler ``1 - dt/tau``.
    """

    tau_plus: float = attrs.field(default=16.8, validator=positive)
    tau_minus: float = attrs.field(default=33.7, validator=positive)
    tau_x: float = attrs.field(default=101.0, validator=positive)
    tau_y: float = attrs.field(default=125.0, validator=positive)
    a2_plus: float = attrs.field(default=5e-10, validator=non_negative)
    a3_plus: float = attrs.field(default=6.2e-3, validator=non_negative)
    a2_minus: float = attrs.field(default=7e-3, validator=non_negative)
    a3_minus: float = attrs.field(default=2.3e-4, validator=non_negative)
    pairing: str = attrs.field(default="all", validator=one_of(*PAIRINGS))
    exact_decay: bool = True


class TripletTraces(NamedTuple):
    """Carried traces: ``pre_pair`` = r1, ``pre_triplet`` = r2 (``[B, *in_shape]``),
    ``post_pair`` = o1, ``post_triplet`` = o2 (``[B, *out_shape]``)."""

    pre_pair: Tensor
    pre_triplet: Tensor
    post_pair: Tensor
    post_triplet: Tensor


class TripletUpdate(NamedTuple):
    """Non-negative ``potentiation`` and ``depression`` (the weight's shape) and the traces to carry."""

    potentiation: Tensor
    depression: Tensor
    traces: TripletTraces


def triplet_initial_traces(
    batch_size: int,
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> TripletTraces:
    """All four traces at zero (no spike seen yet)."""
    pre = torch.zeros((batch_size, *in_shape), dtype=dtype, device=device)
    post = torch.zeros((batch_size, *out_shape), dtype=dtype, device=device)
    return TripletTraces(pre, pre.clone(), post, post.clone())


def _trace_window(spikes: Tensor, decay: float, initial: Tensor, pairing: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(traces [T, ...], before [T, ...], last)``; ``before[t] = a * traces[t-1]`` (the ``t-`` value)."""
    traces, last = pairing_traces(spikes, decay, 1.0, initial, pairing)
    before = torch.cat([initial.unsqueeze(0), traces[:-1]]) * decay
    return traces, before, last


def triplet_stdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    traces: TripletTraces | None = None,
    parameters: TripletParameters = TripletParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> TripletUpdate:
    """Triplet STDP over a window (module docstring for the equations).

    Args:
        spikes_pre: ``[T, B, *in_shape]`` bool or {0, 1}.
        spikes_post: ``[T, B, *out_shape]`` bool or {0, 1}.
        traces: carried :class:`TripletTraces` (zeros when None); floating, finite.
        parameters: :class:`TripletParameters`.
        dt: step length (> 0), in the unit of the time constants.
        view: ``None`` for dense (``in_shape = (N_in,)``), a
            :class:`~plastic.functional.receptive.ConvGeometry` for conv, or
            a connection (anything with ``pre_view``/``post_view``, see
            :data:`plastic.functional.bilinear.View`).
        weight: the weight (needed only by ``f_post``/``f_pre``).
        f_post, f_pre: weight-dependence factors scaling potentiation and
            depression (None: factor 1).
        batch_reduction: ``"sum"`` (default), ``"mean"`` or a callable reducing dim 0.

    Returns:
        :class:`TripletUpdate`: potentiation and depression in the weight's
        shape, and the traces after the last step.
    """
    checked = check_rule_inputs(
        spikes_pre, spikes_post, parameters, TripletParameters, view=view, dt=dt, weight=weight,
        batch_reduction=batch_reduction, state=traces, state_name="traces", state_fields=(
            ("pre_pair", "pre"), ("pre_triplet", "pre"), ("post_pair", "post"), ("post_triplet", "post")
        ), state_expected="TripletTraces(pre_pair, pre_triplet, post_pair, post_triplet)",
    )  # fmt: skip
    pre, post, layout, dtype = checked.pre, checked.post, checked.layout, checked.dtype
    factor_post, factor_pre = layout.factors(f_post, f_pre, weight)
    if checked.state is None:
        traces = triplet_initial_traces(pre.shape[1], layout.in_shape, layout.out_shape, dtype=dtype, device=pre.device)
    else:
        traces = TripletTraces(*checked.state)

    p = parameters
    decay = {
        name: decay_factor(dt, tau, exact=p.exact_decay)
        for name, tau in (("plus", p.tau_plus), ("x", p.tau_x), ("minus", p.tau_minus), ("y", p.tau_y))
    }
    r1, _, r1_last = _trace_window(pre, decay["plus"], traces.pre_pair, p.pairing)
    r2, r2_before, r2_last = _trace_window(pre, decay["x"], traces.pre_triplet, p.pairing)
    o1, _, o1_last = _trace_window(post, decay["minus"], traces.post_pair, p.pairing)
    o2, o2_before, o2_last = _trace_window(post, decay["y"], traces.post_triplet, p.pairing)
    del r2, o2

    # The triplet factor is one scalar per neuron and step: fold it into the spikes.
    post_events = post.to(dtype) * (p.a2_plus + p.a3_plus * o2_before)
    pre_events = pre.to(dtype) * (p.a2_minus + p.a3_minus * r2_before)
    potentiation = layout.bilinear(post_events, r1, checked.batch_reduction, factor_post)
    depression = layout.bilinear(o1, pre_events, checked.batch_reduction, factor_pre)
    return TripletUpdate(
        layout.to_weight(potentiation),
        layout.to_weight(depression),
        TripletTraces(r1_last, r2_last, o1_last, o2_last),
    )


def triplet_stdp_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    traces: TripletTraces | None = None,
    parameters: TripletParameters = TripletParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> TripletUpdate:
    """One step of triplet STDP: ``spike_pre`` ``[B, *in_shape]``, ``spike_post`` ``[B, *out_shape]``.

    Identical to :func:`triplet_stdp_window` on a window of length 1.
    """
    return step_as_window(
        triplet_stdp_window, spike_pre, spike_post, traces, parameters,
        dt=dt, view=view, weight=weight, f_post=f_post, f_pre=f_pre, batch_reduction=batch_reduction,
    )  # fmt: skip
