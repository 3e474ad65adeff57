"""Integer (fixed-point) STDP, as on digital neuromorphic hardware.

All quantities are integers. Traces decay by a multiply-and-shift and are set
to ``trace_scale`` at a spike; updates use stochastic rounding so that small
learning rates survive the integer arithmetic in expectation.

Order of operations within one step ``t`` (for each sample, neuron, synapse):

1. Decay both traces: ``x <- (d * x) >> shift`` (``d = trace_decay_pre`` or
   ``trace_decay_post``, ``shift = trace_decay_shift``; ``>>`` is an
   arithmetic right shift, i.e. ``floor(d * x / 2^shift)``).
2. Spikes set the traces: ``x <- trace_scale`` where the neuron spiked this
   step (the trace includes the current spike, so a simultaneous pre/post
   pair gives both terms).
3. Round, with one uniform draw ``U`` per neuron value (all synapses that read
   the same neuron at the same step share the draw)::

       round_s(v) = (v >> k) + [U < (v mod 2^k) / 2^k]          (k = rounding_shift)

   ``dep_i = round_s(nu_pre * x_post_i)`` (drawn first, one ``U`` per
   postsynaptic value ``[T, B, *out_shape]``) and
   ``pot_j = round_s(nu_post * x_pre_j)`` (drawn second, ``[T, B, *in_shape]``),
   both from ``generator``. ``E[round_s(v)] = v / 2^k`` exactly.
4. Accumulate (integers, summed over the batch and, for conv, over output
   positions)::

       potentiation_ij += s_post_i * pot_j      (at post spikes)
       depression_ij   += dep_i * s_pre_j       (at pre spikes)

After the window (a step is a window of length 1), the weight is updated once:

5. ``w <- w + potentiation - depression``;
6. rows of postsynaptic neurons whose ``threshold > max_threshold`` are halved,
   ``w <- w >> 1`` (``floor(w / 2)``);
7. ``w <- clamp(w, w_min, w_max)``.

Calling the step function ``T`` times applies the weight after every step;
calling the window function once applies it after the window (as an updater
does after a batch). The accumulated potentiation and depression are
identical either way (the traces do not depend on the weight), provided the
uniform draws are the same: the window draws all ``[T, ...]`` values of a kind
in one call, the steps one ``[1, ...]`` call each.

Products run in float64 (integer matrix products are not available on every
device); the results are exact while every sum stays below ``2^53``.

References: the multiply-and-shift trace decay and stochastic rounding of
weight updates follow fixed-point on-chip learning on digital neuromorphic
chips, e.g. M. Davies et al. (2018), "Loihi: a neuromorphic manycore
processor with on-chip learning", IEEE Micro 38(1):82-99 (integer traces with
stochastic rounding); stochastic rounding in low-precision learning:
S. Gupta et al. (2015), "Deep learning with limited numerical precision",
ICML. The halving of rows above a threshold bound is a homeostatic reset used
in integer STDP networks with adaptive thresholds (thresholds grow with
activity; when one exceeds ``max_threshold`` that neuron's synapses are halved).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import Validator
from plastic.functional.bilinear import View, check_rule_inputs, step_as_window
from plastic.functional.validation import check_tensor

__all__ = [
    "IntegerSTDPParameters",
    "IntegerSTDPResult",
    "IntegerTraces",
    "integer_stdp_step",
    "integer_stdp_window",
    "integer_trace_step",
    "integer_trace_window",
    "stochastic_round",
]

INTEGER_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
MAX_ROUNDING_SHIFT = 24  # the float32 uniform draw resolves fractions down to 2^-24 exactly


def _check_int(value: object, name: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        expected = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}: expected an int {expected}, got {value}")
    return value


def _int_at_least(low: int, high: int | None = None) -> Validator:
    def validator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _check_int(value, attribute.name, low, high)

    return validator


def _optional_threshold(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value):
        raise TypeError(f"{attribute.name}: expected a real number or None, got {value!r}")


@attrs.frozen
class IntegerSTDPParameters:
    """Hyperparameters of integer STDP (all integers except ``max_threshold``).

    * ``trace_scale``: trace value right after a spike (e.g. 127 for 7-bit traces).
    * ``trace_decay_pre``, ``trace_decay_post``: decay multipliers ``d``,
      ``0 <= d < 2^trace_decay_shift``; the per-step factor is
      ``d / 2^shift`` (e.g. 240/256 = 0.9375, a time constant of about 15.5 steps).
    * ``trace_decay_shift``: the shift of the multiply-and-shift decay.
    * ``nu_pre``, ``nu_post``: depression and potentiation multipliers (>= 0).
    * ``rounding_shift``: ``k`` in the stochastic rounding, 0 to 24; the
      effective learning rate is ``nu / 2^k`` weight units per trace unit.
    * ``w_min``, ``w_max``: weight bounds (integers, ``w_min <= w_max``).
    * ``max_threshold``: a postsynaptic threshold above it halves that
      neuron's incoming weights (None: never).
    """

    trace_scale: int = attrs.field(default=127, validator=_int_at_least(0))
    trace_decay_pre: int = attrs.field(default=240, validator=_int_at_least(0))
    trace_decay_post: int = attrs.field(default=240, validator=_int_at_least(0))
    trace_decay_shift: int = attrs.field(default=8, validator=_int_at_least(0, 62))
    nu_pre: int = attrs.field(default=1, validator=_int_at_least(0))
    nu_post: int = attrs.field(default=1, validator=_int_at_least(0))
    rounding_shift: int = attrs.field(default=4, validator=_int_at_least(0, MAX_ROUNDING_SHIFT))
    w_min: int = attrs.field(default=0, validator=_int_at_least(-(2**62)))
    w_max: int = attrs.field(default=255, validator=_int_at_least(-(2**62)))
    max_threshold: float | None = attrs.field(default=None, validator=_optional_threshold)

    def __attrs_post_init__(self) -> None:
        for name in ("trace_decay_pre", "trace_decay_post"):
            if getattr(self, name) >= 2**self.trace_decay_shift:
                raise ValueError(
                    f"{name}: expected a multiplier < 2^trace_decay_shift = {2**self.trace_decay_shift} "
                    f"(a decaying trace), got {getattr(self, name)}"
                )
        if self.w_min > self.w_max:
            raise ValueError(f"w_min: expected w_min <= w_max ({self.w_max}), got {self.w_min}")


class IntegerTraces(NamedTuple):
    """Integer traces: ``trace_pre`` ``[B, *in_shape]``, ``trace_post`` ``[B, *out_shape]``."""

    trace_pre: Tensor
    trace_post: Tensor


class IntegerSTDPResult(NamedTuple):
    """The new ``weight`` (input dtype, integral), the accumulated ``potentiation``
    and ``depression`` (int64, the weight's shape, >= 0) and the traces to carry."""

    weight: Tensor
    potentiation: Tensor
    depression: Tensor
    traces: IntegerTraces


def _check_integer_tensor(value: object, name: str) -> Tensor:
    tensor = check_tensor(value, name)
    if tensor.dtype not in INTEGER_DTYPES:
        raise TypeError(f"{name}: expected an integer tensor (int32/int64), got dtype {tensor.dtype}")
    return tensor


def stochastic_round(value: Tensor, shift: int, generator: torch.Generator | None = None) -> Tensor:
    """``(v >> k) + [U < (v mod 2^k) / 2^k]`` elementwise, ``U ~ Uniform[0, 1)``.

    Args:
        value: integer tensor ``v`` (any shape; negative values round the same
            way: ``>>`` floors and ``mod`` is the non-negative remainder).
        shift: ``k``, 0 to 24. With ``k = 0`` the value is returned unchanged
            and no number is drawn.
        generator: the source of ``U`` (on ``value``'s device); one float32
            draw per element, ``torch.rand(value.shape, generator=generator)``.

    Returns:
        an integer tensor of ``value``'s dtype whose expectation is ``v / 2^k``.
    """
    value = _check_integer_tensor(value, "value")
    shift = _check_int(shift, "shift", 0, MAX_ROUNDING_SHIFT)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    if shift == 0:
        return value.clone()
    uniform = torch.rand(value.shape, generator=generator, dtype=torch.float32, device=value.device)
    remainder = value & ((1 << shift) - 1)
    # U < r / 2^k, compared exactly: both sides are multiples of 2^-24 in float32.
    round_up = uniform < remainder.to(torch.float32) / float(1 << shift)
    return (value >> shift) + round_up.to(value.dtype)


def integer_trace_step(trace: Tensor, spike: Tensor, decay: int, shift: int, scale: int) -> Tensor:
    """``x <- (d * x) >> shift``, then ``x <- scale`` where ``spike`` (a new tensor)."""
    decayed = (trace * decay) >> shift
    return torch.where(spike, torch.as_tensor(scale, dtype=trace.dtype, device=trace.device), decayed)


def integer_trace_window(spikes: Tensor, decay: int, shift: int, scale: int, initial: Tensor) -> tuple[Tensor, Tensor]:
    """Integer traces of a window ``spikes`` ``[T, *shape]`` (bool) from ``initial``
    ``[*shape]``; returns ``(traces [T, *shape], last)``."""
    out = torch.empty(spikes.shape, dtype=initial.dtype, device=initial.device)
    previous = initial
    for t in range(spikes.shape[0]):
        out[t] = integer_trace_step(previous, spikes[t], decay, shift, scale)
        previous = out[t]
    return out, (out[-1].clone() if out.shape[0] else initial.clone())


def integer_stdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    weight: Tensor,
    traces: IntegerTraces | None = None,
    parameters: IntegerSTDPParameters = IntegerSTDPParameters(),
    *,
    view: View = None,
    threshold: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> IntegerSTDPResult:
    """Integer STDP over a window (module docstring for the order of operations).

    Args:
        spikes_pre: ``[T, B, *in_shape]``; spikes_post: ``[T, B, *out_shape]`` (bool or {0, 1}).
        weight: integer tensor, or a floating tensor holding integers, of the view's weight shape: dense
            ``[N_out, N_in]`` or conv ``[C_out, C_in/groups, *kernel]``.
        traces: carried :class:`IntegerTraces` (integer dtype; zeros, int64, when None).
        parameters: :class:`IntegerSTDPParameters`.
        view: None (dense), a ConvGeometry or a connection
            (:data:`plastic.functional.bilinear.View`).
        threshold: ``[weight.shape[0]]``, one threshold per weight row (per
            postsynaptic neuron, or per output channel for a conv; reduce an
            adaptive per-sample threshold before calling). Used only when
            ``parameters.max_threshold`` is set.
        generator: ``torch.Generator`` for the rounding draws (reproducible runs).

    Returns:
        :class:`IntegerSTDPResult`.
    """
    # the weight and traces are integers: checked here, not as the floating state of the other rules
    checked = check_rule_inputs(spikes_pre, spikes_post, parameters, IntegerSTDPParameters, view=view)
    pre, post, layout = checked.pre, checked.post, checked.layout
    weight = check_tensor(weight, "weight", shape=layout.weight_shape, finite=True)
    if weight.is_floating_point():
        if not bool((weight == torch.round(weight)).all()):
            raise ValueError("weight: expected integral values")
    elif weight.dtype not in INTEGER_DTYPES:
        raise TypeError(f"weight: expected an integer (or integral floating) tensor, got dtype {weight.dtype}")
    if weight.device != pre.device:
        raise ValueError(f"weight: expected a tensor on {pre.device}, got {weight.device}")
    _steps, batch = pre.shape[:2]
    if traces is not None:
        if not isinstance(traces, tuple) or len(traces) != 2:
            raise TypeError("traces: expected IntegerTraces(trace_pre, trace_post)")
        for name, value, shape in (
            ("traces.trace_pre", traces[0], (batch, *layout.in_shape)),
            ("traces.trace_post", traces[1], (batch, *layout.out_shape)),
        ):
            _check_integer_tensor(value, name)
            check_tensor(value, name, shape=shape, device=pre.device)
            if bool((value < 0).any()):
                raise ValueError(f"{name}: expected non-negative trace values")
    p = parameters
    if threshold is not None and p.max_threshold is not None:
        check_tensor(threshold, "threshold", shape=(layout.weight_shape[0],), device=pre.device)
        if threshold.is_floating_point() and bool(torch.isnan(threshold).any()):
            raise ValueError("threshold: expected no NaN")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")

    if traces is None:
        traces = IntegerTraces(
            torch.zeros((batch, *layout.in_shape), dtype=torch.int64, device=pre.device),
            torch.zeros((batch, *layout.out_shape), dtype=torch.int64, device=pre.device),
        )
    shift = p.trace_decay_shift
    x_pre, last_pre = integer_trace_window(pre, p.trace_decay_pre, shift, p.trace_scale, traces.trace_pre)
    x_post, last_post = integer_trace_window(post, p.trace_decay_post, shift, p.trace_scale, traces.trace_post)
    # The draw order is part of the contract: depression values first, then potentiation.
    depression_values = stochastic_round(x_post.to(torch.int64) * p.nu_pre, p.rounding_shift, generator)
    potentiation_values = stochastic_round(x_pre.to(torch.int64) * p.nu_post, p.rounding_shift, generator)
    exact = torch.float64
    potentiation = layout.bilinear(post.to(exact), potentiation_values.to(exact), "sum")
    depression = layout.bilinear(depression_values.to(exact), pre.to(exact), "sum")
    potentiation = layout.to_weight(potentiation).round().to(torch.int64)
    depression = layout.to_weight(depression).round().to(torch.int64)

    updated = weight.to(torch.int64) + potentiation - depression
    if threshold is not None and p.max_threshold is not None:
        over = (threshold > p.max_threshold).reshape(-1, *([1] * (updated.ndim - 1)))
        updated = torch.where(over, updated >> 1, updated)
    updated = updated.clamp(p.w_min, p.w_max).to(weight.dtype)
    return IntegerSTDPResult(updated, potentiation, depression, IntegerTraces(last_pre, last_post))


def integer_stdp_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    weight: Tensor,
    traces: IntegerTraces | None = None,
    parameters: IntegerSTDPParameters = IntegerSTDPParameters(),
    *,
    view: View = None,
    threshold: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> IntegerSTDPResult:
    """One step of integer STDP (``spike_pre`` ``[B, *in_shape]``, ``spike_post``
    ``[B, *out_shape]``), the weight updated, halved and clamped after it.
    Equal to :func:`integer_stdp_window` with ``T = 1``."""
    return step_as_window(
        integer_stdp_window, spike_pre, spike_post, weight, traces, parameters,
        view=view, threshold=threshold, generator=generator,
    )  # fmt: skip
