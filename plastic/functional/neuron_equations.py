"""The equations of one neuron step, piece by piece: charge, fire, reset, refractory counter, adaptive threshold.

Each function is one line of the step written in
:mod:`plastic.functional.neurons`' module doc (which has the equations,
units and references); :func:`~plastic.functional.neurons.neuron_step_state`
and the window recurrence (:mod:`plastic.functional.neuron_window`) compose
them.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from plastic.functional.neuron_params import NeuronParams, Threshold
from plastic.functional.surrogate import SurrogateGradient
from plastic.functional.traces import decay_factor
from plastic.functional.validation import check_non_negative, check_positive

__all__ = [
    "fire",
    "if_charge",
    "lif_charge",
    "neuron_charge",
    "refractory_steps",
    "refractory_update",
    "reset_hard",
    "reset_soft",
    "theta_decay_factor",
    "theta_update",
]


def lif_charge(voltage: Tensor, inputs: Tensor, tau: float, v_reset: float, *, decay_input: bool = True) -> Tensor:
    """LIF charge (``tau`` in steps): ``H = V + (X - (V - V_reset)) / tau``, or
    with ``decay_input=False`` ``H = V - (V - V_reset) / tau + X`` (the input
    is not divided by ``tau``: ``X`` is the voltage increment of one step)."""
    if decay_input:
        return voltage + (inputs - (voltage - v_reset)) / tau
    return voltage - (voltage - v_reset) / tau + inputs


def if_charge(voltage: Tensor, inputs: Tensor) -> Tensor:
    """IF charge ``H = V + X``."""
    return voltage + inputs


def fire(h: Tensor, v_threshold: Threshold, surrogate: SurrogateGradient) -> Tensor:
    """Spikes ``S = Heaviside(H - V_th) = [H >= V_th]`` in ``h``'s dtype, with
    the surrogate gradient. ``v_threshold`` may be a tensor broadcasting to ``h``."""
    return surrogate(h - v_threshold)


def reset_hard(h: Tensor, spike: Tensor, v_reset: float) -> Tensor:
    """Hard reset ``V = S * V_reset + (1 - S) * H``."""
    return spike * v_reset + (1 - spike) * h


def reset_soft(h: Tensor, spike: Tensor, v_threshold: Threshold) -> Tensor:
    """Soft reset (reset by subtraction) ``V = H - S * V_th``."""
    return h - spike * v_threshold


def refractory_steps(refractory: float, dt: float) -> int:
    """Refractory period ``refractory`` (time units) as a whole number of steps
    of ``dt``: ``ceil(refractory / dt)``, where a ratio within ``1e-9``
    (relative) of an integer counts as that integer (so ``1.1 / 0.1`` gives 11,
    not 12, despite rounding)."""
    refractory = check_non_negative(refractory, "refractory")
    dt = check_positive(dt, "dt")
    ratio = refractory / dt
    nearest = round(ratio)
    if abs(ratio - nearest) <= 1e-9 * max(1.0, abs(ratio)):
        return int(nearest)
    return math.ceil(ratio)


def refractory_update(remaining: Tensor, spike: Tensor, steps: int) -> Tensor:
    """Refractory counter after a step: ``steps`` where the neuron spiked,
    otherwise one less (not below 0). ``spike`` is bool."""
    return torch.where(spike, steps, (remaining - 1).clamp_min(0))


def theta_decay_factor(tau_theta: float, dt: float) -> float:
    """Per-step decay ``exp(-dt / tau_theta)`` of the adaptive threshold
    (``tau_theta = inf``: no decay)."""
    return float(decay_factor(dt, check_positive(tau_theta, "tau_theta", allow_inf=True)))


def theta_update(theta: Tensor, spike: Tensor, theta_plus: float, theta_decay: float) -> Tensor:
    """Adaptive threshold after a step: ``theta * theta_decay + theta_plus *
    sum_b S[b]``. ``theta`` is ``[*shape]``, ``spike`` bool ``[B, *shape]``;
    the increments of every sample in the batch add up."""
    return theta * theta_decay + theta_plus * spike.sum(0).to(theta.dtype)


def _charge(params: NeuronParams, voltage: Tensor, inputs: Tensor) -> Tensor:
    if params.kind == "lif":
        return lif_charge(voltage, inputs, params.tau, params.v_reset, decay_input=params.decay_input)
    return if_charge(voltage, inputs)


def neuron_charge(params: NeuronParams, voltage: Tensor, inputs: Tensor) -> Tensor:
    """The charge ``H_t`` of ``params.kind`` (:func:`lif_charge` or :func:`if_charge`): the
    potential a step reaches before it fires and resets (what a competition between neurons
    that cross the threshold in the same step compares)."""
    if not isinstance(params, NeuronParams):
        raise TypeError(f"params: expected a NeuronParams, got {type(params).__name__}")
    return _charge(params, voltage, inputs)


def _charge_into(params: NeuronParams, voltage: Tensor, inputs: Tensor, out: Tensor | None = None) -> Tensor:
    """:func:`lif_charge` / :func:`if_charge` written into ``out`` (a new tensor if None), with
    the same floating-point operations in the same order; returns ``out``."""
    if params.kind != "lif":
        return torch.add(voltage, inputs, out=out)
    v_reset_is_plus_zero = params.v_reset == 0 and math.copysign(1.0, params.v_reset) > 0  # V - (+0) is V exactly
    if params.decay_input:  # V + (X - (V - V_reset)) / tau
        if v_reset_is_plus_zero:
            out = torch.sub(inputs, voltage, out=out)
        else:
            out = torch.sub(voltage, step_operand(params.v_reset, voltage), out=out)
            torch.sub(inputs, out, out=out)
        # ``out / tau + V`` in one pass: addcdiv divides each element by tau (the same rounded
        # quotient as ``div_``), then adds V (one more rounding, as ``add_``)
        return torch.addcdiv(voltage, out, scalar_tensor(params.tau, out.dtype, out.device), out=out)
    # (V - (V - V_reset) / tau) + X
    if v_reset_is_plus_zero:
        out = torch.div(voltage, step_operand(params.tau, voltage), out=out)
    else:
        out = torch.sub(voltage, step_operand(params.v_reset, voltage), out=out)
        out.div_(step_operand(params.tau, out))
    torch.sub(voltage, out, out=out)
    return out.add_(inputs)


def scalar_tensor(value: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A 0-d tensor holding ``value`` (cached per value, dtype and device; never written)."""
    # the sign in the key too: -0.0 == 0.0 (and hashes alike), but a reset to -0.0 is another value
    return _scalar_tensor(value, math.copysign(1.0, value) if isinstance(value, float) else 1.0, dtype, device)


@functools.lru_cache(maxsize=128)
def _scalar_tensor(value: float, sign: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor(value, dtype=dtype, device=device)


#: dtypes whose elementwise kernels compute in their own precision: an operand that is a 0-d tensor
#: of the dtype is read as the number would be (the number is cast to the same dtype)
_OWN_PRECISION = frozenset(
    {torch.float32, torch.float64, torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}
)


def step_operand(value: float, like: Tensor) -> Tensor | float:
    """``value`` as the number operand of an elementwise operation on ``like``: a cached 0-d tensor of
    ``like``'s dtype and device where the result is the same (a float32, float64 or integer
    ``like``), the number itself otherwise (half and bfloat16 compute in float32).

    A Python number is wrapped into a new tensor at every call; on a one-sample step that is about
    half of each such operation's cost (measured: ``theta * decay`` 2.1 -> 1.0 us, ``remaining > 0``
    2.3 -> 1.3 us at 1,000 neurons).
    """
    dtype = like.dtype
    if dtype not in _OWN_PRECISION:
        return value
    return scalar_tensor(value, dtype, like.device)


def _reset(params: NeuronParams, h: Tensor, spike: Tensor, threshold: Threshold) -> Tensor:
    if params.reset == "hard":
        return reset_hard(h, spike, params.v_reset)
    return reset_soft(h, spike, threshold)


def _charge_slopes(params: NeuronParams) -> tuple[float, float]:
    """``(dH/dX, dH/dV)`` of the charge step."""
    if params.kind == "lif":
        return (1.0 / params.tau if params.decay_input else 1.0), 1.0 - 1.0 / params.tau
    return 1.0, 1.0
