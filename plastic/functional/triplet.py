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

This module also holds :class:`SynapseLayout`, the small adapter between
layer-shaped spike tensors and the receptive views of
:mod:`plastic.functional.receptive`, shared with :mod:`plastic.functional.reward`
and :mod:`plastic.functional.integer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import attrs
import torch
from einops import rearrange
from torch import Tensor

from plastic.functional.receptive import (
    ConvGeometry,
    conv_output_shape,
    conv_post_view,
    conv_pre_view,
    dense_post_view,
    dense_pre_view,
    grouped_to_weight,
    weight_to_grouped,
)
from plastic.functional.traces import decay_factor, trace_cumulative_window, trace_nearest_window
from plastic.functional.validation import (
    check_choice,
    check_non_negative,
    check_positive,
    check_spikes,
    check_tensor,
)

__all__ = [
    "SynapseLayout",
    "BatchReduction",
    "WeightFactor",
    "PAIRINGS",
    "TripletParameters",
    "TripletTraces",
    "TripletUpdate",
    "triplet_initial_traces",
    "triplet_stdp_step",
    "triplet_stdp_window",
]

PAIRINGS = ("all_to_all", "nearest")
BATCH_REDUCTIONS = ("sum", "mean")

WeightFactor = Callable[[Tensor], Tensor]
BatchReduction = str | Callable[[Tensor], Tensor]


# --------------------------------------------------------------------------- layout


@attrs.frozen
class SynapseLayout:
    """How layer-shaped spikes map onto a weight seen as ``[G, O, K]``.

    Dense (``geometry is None``): presynaptic ``[N, N_in]``, postsynaptic
    ``[N, N_out]``, weight ``[N_out, N_in]``. Conv: presynaptic
    ``[N, C_in, *spatial]``, postsynaptic ``[N, C_out, *out_spatial]``, weight
    ``[C_out, C_in/groups, *kernel]``. Every bilinear update is
    ``dw[g, o, k] = sum_{n, p} post[n, g, o, p] * pre[n, g, k, p]``.
    """

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    geometry: ConvGeometry | None

    @classmethod
    def infer(
        cls,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        geometry: ConvGeometry | None,
        *,
        pre_name: str = "spikes_pre",
        post_name: str = "spikes_post",
    ) -> "SynapseLayout":
        """Check that the layer shapes (without time and batch) fit the geometry."""
        in_shape, out_shape = tuple(in_shape), tuple(out_shape)
        if geometry is None:
            if len(in_shape) != 1:
                raise ValueError(f"{pre_name}: a dense layer expects one feature dimension, got {in_shape}")
            if len(out_shape) != 1:
                raise ValueError(f"{post_name}: a dense layer expects one feature dimension, got {out_shape}")
            return cls(in_shape, out_shape, None)
        if not isinstance(geometry, ConvGeometry):
            raise TypeError(f"geometry: expected a ConvGeometry or None, got {type(geometry).__name__}")
        if len(in_shape) != geometry.dims + 1 or in_shape[0] != geometry.in_channels:
            raise ValueError(
                f"{pre_name}: expected [C_in={geometry.in_channels}, {geometry.dims} spatial dims] "
                f"after time and batch, got {in_shape}"
            )
        expected_out = (geometry.out_channels, *conv_output_shape(geometry, in_shape[1:]))
        if out_shape != expected_out:
            raise ValueError(f"{post_name}: expected {expected_out} after time and batch, got {out_shape}")
        return cls(in_shape, out_shape, geometry)

    @property
    def groups(self) -> int:
        return 1 if self.geometry is None else self.geometry.groups

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.geometry is None:
            return (self.out_shape[0], self.in_shape[0])
        return self.geometry.weight_shape

    @property
    def grouped_shape(self) -> tuple[int, int, int]:
        """``(G, O, K)``."""
        groups = self.groups
        return (groups, self.weight_shape[0] // groups, math.prod(self.weight_shape[1:]))

    def pre(self, values: Tensor) -> Tensor:
        """``[N, *in_shape]`` -> ``[N, G, K, P]``."""
        if self.geometry is None:
            return dense_pre_view(values)
        return conv_pre_view(values, self.geometry)

    def post(self, values: Tensor) -> Tensor:
        """``[N, *out_shape]`` -> ``[N, G, O, P]``."""
        if self.geometry is None:
            return dense_post_view(values)
        return conv_post_view(values, self.geometry)

    def to_weight(self, grouped: Tensor) -> Tensor:
        """``[G, O, K]`` -> the weight's shape."""
        return grouped_to_weight(grouped, self.weight_shape)

    def to_grouped(self, weight_shaped: Tensor) -> Tensor:
        """The weight's shape -> ``[G, O, K]``."""
        return weight_to_grouped(weight_shaped, self.groups)

    def factor(self, function: WeightFactor | None, weight: Tensor | None, name: str) -> Tensor | None:
        """Weight-dependence factor ``function(weight)`` as ``[G, O, K]`` (None: identity, factor 1)."""
        if function is None:
            return None
        if weight is None:
            raise ValueError(f"weight: required when {name} is given")
        if not callable(function):
            raise TypeError(f"{name}: expected a callable f(w) or None, got {type(function).__name__}")
        value = function(weight)
        if not isinstance(value, Tensor) or value.shape != weight.shape:
            raise ValueError(f"{name}: f(w) must return a tensor of the weight's shape {tuple(weight.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: f(w) returned NaN or inf")
        return self.to_grouped(value)

    def check_weight(self, weight: Tensor | None, device: torch.device | None = None) -> None:
        """``weight`` (if given): a finite tensor of the weight's shape on ``device``."""
        if weight is not None:
            check_tensor(weight, "weight", shape=self.weight_shape, finite=True, device=device)

    def bilinear(
        self,
        post_values: Tensor,
        pre_values: Tensor,
        batch_reduction: BatchReduction = "sum",
        factor: Tensor | None = None,
    ) -> Tensor:
        """``reduce_b factor * sum_{t, p} post (x) pre`` as ``[G, O, K]``.

        ``post_values`` ``[T, B, *out_shape]``, ``pre_values`` ``[T, B, *in_shape]``.
        ``"sum"`` and ``"mean"`` contract ``T*B*P`` in one product; a callable
        reduction needs the per-sample products ``[B, G, O, K]`` first.
        """
        steps, batch = post_values.shape[:2]
        post = self.post(post_values.reshape(steps * batch, *self.out_shape))
        pre = self.pre(pre_values.reshape(steps * batch, *self.in_shape))
        if isinstance(batch_reduction, str):
            result = torch.einsum("ngop,ngkp->gok", post, pre)
            if factor is not None:
                result = result * factor
            return result / batch if batch_reduction == "mean" else result
        post = rearrange(post, "(t b) g o p -> b g o (t p)", t=steps)
        pre = rearrange(pre, "(t b) g k p -> b g k (t p)", t=steps)
        per_sample = torch.einsum("bgop,bgkp->bgok", post, pre)
        if factor is not None:
            per_sample = per_sample * factor
        return reduce_batch(per_sample, batch_reduction)

    def per_sample(self, post_values: Tensor, pre_values: Tensor) -> Tensor:
        """``sum_{t, p} post (x) pre`` per sample: ``[B, G, O, K]`` (memory ``B*G*O*K``)."""
        steps = post_values.shape[0]
        post = self.post(post_values.flatten(0, 1))
        pre = self.pre(pre_values.flatten(0, 1))
        post = rearrange(post, "(t b) g o p -> b g o (t p)", t=steps)
        pre = rearrange(pre, "(t b) g k p -> b g k (t p)", t=steps)
        return torch.einsum("bgop,bgkp->bgok", post, pre)


def check_batch_reduction(value: object) -> BatchReduction:
    """``"sum"``, ``"mean"`` or a callable reducing dim 0."""
    if callable(value) or (isinstance(value, str) and value in BATCH_REDUCTIONS):
        return value  # type: ignore[return-value]
    raise ValueError(f"batch_reduction: expected 'sum', 'mean' or a callable reducing dim 0, got {value!r}")


def reduce_batch(per_sample: Tensor, batch_reduction: BatchReduction) -> Tensor:
    """Reduce ``[B, ...]`` over dim 0 with ``"sum"``, ``"mean"`` or a callable."""
    if batch_reduction == "sum":
        return per_sample.sum(0)
    if batch_reduction == "mean":
        return per_sample.mean(0)
    result = batch_reduction(per_sample)  # type: ignore[operator]
    if not isinstance(result, Tensor) or result.shape != per_sample.shape[1:]:
        raise ValueError(
            f"batch_reduction: a callable must reduce dim 0 of {tuple(per_sample.shape)} "
            f"to {tuple(per_sample.shape[1:])}"
        )
    return result


def check_window_spikes(
    spikes_pre: object, spikes_post: object, *, step: bool = False
) -> tuple[Tensor, Tensor]:
    """Spikes as bool: window ``[T, B, *shape]`` (or step ``[B, *shape]``), same T and B."""
    leading = 1 if step else 2
    pre = check_spikes(spikes_pre, "spike_pre" if step else "spikes_pre", min_ndim=leading + 1)
    post = check_spikes(spikes_post, "spike_post" if step else "spikes_post", min_ndim=leading + 1)
    if pre.shape[:leading] != post.shape[:leading]:
        what = "batch size" if step else "time and batch sizes"
        raise ValueError(
            f"spikes_post: expected the {what} of spikes_pre {tuple(pre.shape[:leading])}, "
            f"got {tuple(post.shape[:leading])}"
        )
    if pre.device != post.device:
        raise ValueError(f"spikes_post: expected a tensor on {pre.device}, got {post.device}")
    return pre, post


def check_state_tensor(value: object, name: str, shape: Sequence[int], like: Tensor | None) -> Tensor:
    tensor = check_tensor(value, name, shape=shape, floating=True, finite=True)
    if like is not None and (tensor.dtype != like.dtype or tensor.device != like.device):
        raise ValueError(
            f"{name}: expected dtype {like.dtype} on {like.device}, got {tensor.dtype} on {tensor.device}"
        )
    return tensor


def compute_dtype(*candidates: object) -> torch.dtype:
    """The first floating tensor's dtype (state, weight, floating spikes), else torch's default."""
    for candidate in candidates:
        if isinstance(candidate, Tensor) and candidate.is_floating_point():
            return candidate.dtype
    return torch.get_default_dtype()


# --------------------------------------------------------------------------- triplet


def _positive(instance: object, attribute: attrs.Attribute, value: object) -> None:
    check_positive(value, attribute.name)


def _non_negative(instance: object, attribute: attrs.Attribute, value: object) -> None:
    check_non_negative(value, attribute.name)


def _pairing(instance: object, attribute: attrs.Attribute, value: object) -> None:
    check_choice(value, attribute.name, PAIRINGS)


@attrs.frozen
class TripletParameters:
    """Hyperparameters of triplet STDP (defaults: Pfister & Gerstner 2006, visual cortex, all-to-all).

    ``tau_plus``, ``tau_x`` (presynaptic ``r1``, ``r2``) and ``tau_minus``,
    ``tau_y`` (postsynaptic ``o1``, ``o2``) in the unit of ``dt`` (ms);
    ``a2_plus``, ``a3_plus``, ``a2_minus``, ``a3_minus`` >= 0 in weight units;
    ``pairing`` ``"all_to_all"`` (cumulative traces) or ``"nearest"`` (traces
    set to 1); ``exact_decay`` ``exp(-dt/tau)`` (True) or Euler ``1 - dt/tau``.
    """

    tau_plus: float = attrs.field(default=16.8, validator=_positive)
    tau_minus: float = attrs.field(default=33.7, validator=_positive)
    tau_x: float = attrs.field(default=101.0, validator=_positive)
    tau_y: float = attrs.field(default=125.0, validator=_positive)
    a2_plus: float = attrs.field(default=5e-10, validator=_non_negative)
    a3_plus: float = attrs.field(default=6.2e-3, validator=_non_negative)
    a2_minus: float = attrs.field(default=7e-3, validator=_non_negative)
    a3_minus: float = attrs.field(default=2.3e-4, validator=_non_negative)
    pairing: str = attrs.field(default="all_to_all", validator=_pairing)
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


def _trace_window(
    spikes: Tensor, decay: float, initial: Tensor, pairing: str
) -> tuple[Tensor, Tensor, Tensor]:
    """``(traces [T, ...], before [T, ...], last)``; ``before[t] = a * traces[t-1]`` (the ``t-`` value)."""
    window = trace_cumulative_window if pairing == "all_to_all" else trace_nearest_window
    traces, last = window(spikes, decay, 1.0, initial)
    before = torch.cat([initial.unsqueeze(0), traces[:-1]]) * decay
    return traces, before, last


def triplet_stdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    traces: TripletTraces | None = None,
    parameters: TripletParameters = TripletParameters(),
    *,
    dt: float = 1.0,
    geometry: ConvGeometry | None = None,
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
        geometry: ``None`` for dense (``in_shape = (N_in,)``), a
            :class:`~plastic.functional.receptive.ConvGeometry` for conv.
        weight: the weight (needed only by ``f_post``/``f_pre``).
        f_post, f_pre: weight-dependence factors scaling potentiation and
            depression (None: factor 1).
        batch_reduction: ``"sum"`` (default), ``"mean"`` or a callable reducing dim 0.

    Returns:
        :class:`TripletUpdate`: potentiation and depression in the weight's
        shape, and the traces after the last step.
    """
    pre, post = check_window_spikes(spikes_pre, spikes_post)
    if not isinstance(parameters, TripletParameters):
        raise TypeError(f"parameters: expected TripletParameters, got {type(parameters).__name__}")
    check_positive(dt, "dt")
    batch_reduction = check_batch_reduction(batch_reduction)
    layout = SynapseLayout.infer(pre.shape[2:], post.shape[2:], geometry)
    layout.check_weight(weight, pre.device)
    batch = pre.shape[1]
    if traces is not None:
        if not isinstance(traces, tuple) or len(traces) != 4:
            raise TypeError("traces: expected TripletTraces(pre_pair, pre_triplet, post_pair, post_triplet)")
        traces = TripletTraces(*traces)
        first = traces.pre_pair if isinstance(traces.pre_pair, Tensor) else None
        for name, value, shape in (
            ("traces.pre_pair", traces.pre_pair, (batch, *layout.in_shape)),
            ("traces.pre_triplet", traces.pre_triplet, (batch, *layout.in_shape)),
            ("traces.post_pair", traces.post_pair, (batch, *layout.out_shape)),
            ("traces.post_triplet", traces.post_triplet, (batch, *layout.out_shape)),
        ):
            check_state_tensor(value, name, shape, first)
        if first.device != pre.device:
            raise ValueError(f"traces: expected tensors on {pre.device}, got {first.device}")
    dtype = compute_dtype(None if traces is None else traces.pre_pair, weight, spikes_pre, spikes_post)
    factor_post = layout.factor(f_post, weight, "f_post")
    factor_pre = layout.factor(f_pre, weight, "f_pre")
    if traces is None:
        traces = triplet_initial_traces(batch, layout.in_shape, layout.out_shape, dtype=dtype, device=pre.device)

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
    potentiation = layout.bilinear(post_events, r1, batch_reduction, factor_post)
    depression = layout.bilinear(o1, pre_events, batch_reduction, factor_pre)
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
    geometry: ConvGeometry | None = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> TripletUpdate:
    """One step of triplet STDP: ``spike_pre`` ``[B, *in_shape]``, ``spike_post`` ``[B, *out_shape]``.

    Identical to :func:`triplet_stdp_window` on a window of length 1.
    """
    check_window_spikes(spike_pre, spike_post, step=True)
    return triplet_stdp_window(
        spike_pre.unsqueeze(0),  # the originals: floating spikes set the dtype
        spike_post.unsqueeze(0),
        traces,
        parameters,
        dt=dt,
        geometry=geometry,
        weight=weight,
        f_post=f_post,
        f_pre=f_pre,
        batch_reduction=batch_reduction,
    )
