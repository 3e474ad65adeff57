"""Spiking neuron dynamics: charge, fire, reset, in step and window form.

One step of a neuron with membrane potential ``V`` (voltage units, e.g. mV)
and input ``X`` (same units: the input is the voltage increment it would
cause in a non-leaky neuron) is::

    charge   LIF: H_t = V_{t-1} + (X_t - (V_{t-1} - V_reset)) / tau
             IF:  H_t = V_{t-1} + X_t
    fire     S_t = Heaviside(H_t - V_th)          with Heaviside(0) = 1, i.e. S_t = [H_t >= V_th]
    reset    hard: V_t = S_t * V_reset + (1 - S_t) * H_t
             soft: V_t = H_t - S_t * V_th

``tau`` is the membrane time constant *in steps* (the LIF formula above is the
Euler step of ``tau dV/dt = -(V - V_reset) + X`` with ``dt = 1``); ``tau >= 1``
keeps the step stable and ``tau = 1`` means no memory (``H_t = V_reset + X_t``).
``V_reset`` is also the resting potential the LIF leaks towards.

The backward pass replaces the derivative of the Heaviside step by a surrogate
(:mod:`plastic.functional.surrogate`). With ``detach_reset`` the spike used in
the reset is detached, so no gradient flows through the reset path.

Two optional, non-differentiable extensions used by Diehl & Cook (2015)
networks:

* **Adaptive threshold.** A per-neuron offset ``theta`` (shape ``[*shape]``,
  shared by every sample of the batch: the one state without a batch
  dimension) raises the threshold to ``V_th + theta_{t-1}``. After the step::

      theta_t = theta_{t-1} * theta_decay + theta_plus * sum_b S_t[b]

  with ``theta_decay = exp(-dt / tau_theta)``: every spike of any sample adds
  ``theta_plus``. The soft reset then subtracts the effective threshold
  ``V_th + theta_{t-1}``.
* **Refractory period** of ``n = refractory_steps`` steps. A counter ``r``
  (shape ``[B, *shape]``, integer) is set to ``n`` by a spike and counts down
  by one per step. A step that starts with ``r > 0`` is refractory: the neuron
  ignores its input, does not leak, cannot fire, and keeps its voltage
  (``H_t = V_t = V_{t-1}``; after a hard reset that is ``V_reset``). So a spike
  at step ``t`` makes steps ``t+1 .. t+n`` refractory and the neuron integrates
  again from step ``t+n+1``.

Both are treated as constants by the gradient (their state is detached).

The window form (:func:`neuron_window`) runs the recurrence over ``[T, B,
*shape]`` inputs as one custom autograd function: the forward loop runs
without building a graph and keeps only ``H_t`` (plus the spikes, and the
per-step thresholds and refractory masks where used); the backward runs its own
reverse recurrence

    dL/dH_t     = dL/dS_t * g_t + (dL/dV_t + dL/dV_t|future) * dV_t/dH_t
    dL/dX_t     = dL/dH_t * dH_t/dX_t
    dL/dV_{t-1}|future = dL/dH_t * dH_t/dV_{t-1}

with ``g_t = surrogate'(H_t - V_th)``; ``dV_t/dH_t = (1 - S_t) + (V_reset -
H_t) g_t`` (hard) or ``1 - V_th g_t`` (soft), without the ``g_t`` terms when the
reset is detached; ``dH/dX = 1/tau``, ``dH/dV = 1 - 1/tau`` (LIF) or ``1, 1``
(IF); and ``dH/dX = 0``, ``dH/dV = 1``, ``g = 0`` on refractory steps.

References: Gerstner, Kistler, Naud & Paninski (2014), *Neuronal Dynamics*,
ch. 1 and 6 (LIF, adaptation); Diehl & Cook (2015), "Unsupervised learning of
digit recognition using spike-timing-dependent plasticity", Front. Comput.
Neurosci. 9:99 (adaptive threshold, refractory period); Fang et al. (2021),
ICCV (the charge/fire/reset decomposition with surrogate gradients).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import attrs
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from plastic.functional.surrogate import DEFAULT_SURROGATE, ATan, SurrogateGradient
from plastic.functional.traces import decay_factor, spike_values
from plastic.functional.validation import (
    check_choice,
    check_in_range,
    check_non_negative,
    check_positive,
    check_shape,
    check_tensor,
)

__all__ = [
    "NEURON_KINDS",
    "RESET_MODES",
    "NeuronParams",
    "NeuronState",
    "NeuronWindowResult",
    "fire",
    "if_charge",
    "lif_charge",
    "neuron_charge",
    "neuron_step",
    "neuron_step_state",
    "neuron_step_unchecked",
    "neuron_window",
    "neuron_window_state",
    "refractory_steps",
    "refractory_update",
    "reset_hard",
    "reset_soft",
    "theta_decay_factor",
    "theta_update",
]

NEURON_KINDS = ("lif", "if")
RESET_MODES = ("hard", "soft")

Threshold = float | Tensor


# ----------------------------------------------------------------------------
# Hyperparameters and state
# ----------------------------------------------------------------------------


def _finite_real(instance: object, attribute: attrs.Attribute, value: object) -> None:
    check_in_range(value, attribute.name, -math.inf, math.inf, inclusive=False)


def _tau_validator(instance: object, attribute: attrs.Attribute, value: object) -> None:
    tau = check_positive(value, "tau")
    if tau < 1:
        raise ValueError(f"tau: expected a membrane time constant >= 1 (in steps), got {value!r}")


def _choice(choices: tuple[str, ...]) -> Any:
    def validate(instance: object, attribute: attrs.Attribute, value: object) -> None:
        check_choice(value, attribute.name, choices)

    return validate


def _surrogate_validator(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, SurrogateGradient):
        raise TypeError(f"surrogate: expected a SurrogateGradient (e.g. ATan(), Sigmoid()), got {value!r}")


def _bool_validator(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name}: expected a bool, got {value!r}")


def _steps_validator(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name}: expected an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{attribute.name}: expected a value >= 0, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute, value: object) -> None:
    check_non_negative(value, attribute.name)


def _decay_validator(instance: object, attribute: attrs.Attribute, value: object) -> None:
    decay = check_in_range(value, attribute.name, 0.0, 1.0)
    if decay == 0:
        raise ValueError(f"{attribute.name}: expected a value in (0, 1], got {value!r}")


@attrs.frozen
class NeuronParams:
    """Hyperparameters of one neuron step, in step units.

    Parameters
    ----------
    kind:
        ``"lif"`` (leaky) or ``"if"`` (no leak).
    tau:
        Membrane time constant in steps, ``>= 1`` (LIF only; ignored by IF).
    v_threshold:
        Firing threshold ``V_th`` (voltage units).
    v_reset:
        Reset and resting potential ``V_reset`` (voltage units). A hard reset
        needs ``v_threshold > v_reset``; a soft reset needs ``v_threshold > 0``
        (otherwise subtracting it does not lower the voltage).
    reset:
        ``"hard"`` or ``"soft"``.
    surrogate:
        Surrogate gradient of the Heaviside step.
    detach_reset:
        Detach the spike used in the reset (no gradient through the reset).
    refractory_steps:
        Refractory period ``n`` in steps (``0``: none). See the module doc.
    theta_plus:
        Threshold increment per spike (voltage units) of the adaptive
        threshold; used only where a ``theta`` state is given.
    theta_decay:
        Per-step decay factor of ``theta``, in ``(0, 1]``
        (``exp(-dt / tau_theta)``, :func:`theta_decay_factor`).
    """

    kind: str = attrs.field(default="lif", validator=_choice(NEURON_KINDS))
    tau: float = attrs.field(default=2.0, validator=_tau_validator)
    v_threshold: float = attrs.field(default=1.0, validator=_finite_real)
    v_reset: float = attrs.field(default=0.0, validator=_finite_real)
    reset: str = attrs.field(default="hard", validator=_choice(RESET_MODES))
    surrogate: SurrogateGradient = attrs.field(factory=ATan, validator=_surrogate_validator)
    detach_reset: bool = attrs.field(default=False, validator=_bool_validator)
    refractory_steps: int = attrs.field(default=0, validator=_steps_validator)
    theta_plus: float = attrs.field(default=0.0, validator=_non_negative)
    theta_decay: float = attrs.field(default=1.0, validator=_decay_validator)

    def __attrs_post_init__(self) -> None:
        if self.reset == "hard" and not self.v_threshold > self.v_reset:
            raise ValueError(
                f"v_threshold: expected a value > v_reset ({self.v_reset}) with a hard reset, got {self.v_threshold}"
            )
        if self.reset == "soft" and not self.v_threshold > 0:
            raise ValueError(f"v_threshold: expected a value > 0 with a soft reset, got {self.v_threshold}")


class NeuronState(NamedTuple):
    """State carried from step to step.

    ``voltage`` ``[B, *shape]`` (float); ``refractory_remaining`` ``[B, *shape]``
    (integer, steps left in the refractory period) or ``None``; ``theta``
    ``[*shape]`` (float, adaptive threshold offset shared by the batch) or
    ``None`` (no adaptation).
    """

    voltage: Tensor
    refractory_remaining: Tensor | None = None
    theta: Tensor | None = None


class NeuronWindowResult(NamedTuple):
    """``spikes`` and ``voltages`` ``[T, B, *shape]`` and the state after the
    last step (``state.voltage`` equals ``voltages[-1]`` but is its own tensor;
    the initial voltage when ``T = 0``)."""

    spikes: Tensor
    voltages: Tensor
    state: NeuronState


# ----------------------------------------------------------------------------
# Elementary pieces
# ----------------------------------------------------------------------------


def lif_charge(voltage: Tensor, inputs: Tensor, tau: float, v_reset: float) -> Tensor:
    """LIF charge ``H = V + (X - (V - V_reset)) / tau`` (``tau`` in steps)."""
    return voltage + (inputs - (voltage - v_reset)) / tau


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
        return lif_charge(voltage, inputs, params.tau, params.v_reset)
    return if_charge(voltage, inputs)


def neuron_charge(params: NeuronParams, voltage: Tensor, inputs: Tensor) -> Tensor:
    """The charge ``H_t`` of ``params.kind`` (:func:`lif_charge` or :func:`if_charge`): the
    potential a step reaches before it fires and resets (what a competition between neurons
    that cross the threshold in the same step compares)."""
    return _charge(_check_params(params), voltage, inputs)


def _charge_into(params: NeuronParams, voltage: Tensor, inputs: Tensor, out: Tensor) -> None:
    """:func:`lif_charge` / :func:`if_charge` written into ``out``, with the
    same floating-point operations in the same order."""
    if params.kind == "lif":
        if params.v_reset == 0 and math.copysign(1.0, params.v_reset) > 0:  # V - (+0) is V exactly
            torch.sub(inputs, voltage, out=out)
        else:
            torch.sub(voltage, params.v_reset, out=out)
            torch.sub(inputs, out, out=out)
        out.div_(params.tau)
        out.add_(voltage)
    else:
        torch.add(voltage, inputs, out=out)


def _reset(params: NeuronParams, h: Tensor, spike: Tensor, threshold: Threshold) -> Tensor:
    if params.reset == "hard":
        return reset_hard(h, spike, params.v_reset)
    return reset_soft(h, spike, threshold)


def _charge_slopes(params: NeuronParams) -> tuple[float, float]:
    """``(dH/dX, dH/dV)`` of the charge step."""
    if params.kind == "lif":
        return 1.0 / params.tau, 1.0 - 1.0 / params.tau
    return 1.0, 1.0


# ----------------------------------------------------------------------------
# Validation shared by the step and window forms
# ----------------------------------------------------------------------------


def _check_state(
    state: NeuronState, inputs: Tensor, voltage_shape: tuple[int, ...], name: str, *, finite: bool = True
) -> None:
    """Kinds, shapes, dtypes and devices of ``state`` against ``inputs``; with ``finite`` also its values."""
    if not isinstance(state, NeuronState):
        raise TypeError(f"{name}: expected a NeuronState, got {type(state).__name__}")
    voltage = check_tensor(state.voltage, f"{name}.voltage", floating=True, finite=finite)
    check_shape(voltage, f"{name}.voltage", voltage_shape)
    if voltage.dtype != inputs.dtype:
        raise TypeError(f"{name}.voltage: expected dtype {inputs.dtype} (the inputs'), got {voltage.dtype}")
    if voltage.device != inputs.device:
        raise ValueError(f"{name}.voltage: expected a tensor on {inputs.device} (the inputs'), got {voltage.device}")
    if state.refractory_remaining is not None:
        remaining = check_tensor(state.refractory_remaining, f"{name}.refractory_remaining", device=inputs.device)
        check_shape(remaining, f"{name}.refractory_remaining", voltage_shape)
        if remaining.is_floating_point() or remaining.is_complex() or remaining.dtype == torch.bool:
            raise TypeError(f"{name}.refractory_remaining: expected an integer tensor, got dtype {remaining.dtype}")
    if state.theta is not None:
        theta = check_tensor(state.theta, f"{name}.theta", floating=True, finite=finite, device=inputs.device)
        check_shape(theta, f"{name}.theta", voltage_shape[1:])
        if theta.dtype != inputs.dtype:
            raise TypeError(f"{name}.theta: expected dtype {inputs.dtype} (the inputs'), got {theta.dtype}")


def _check_params(params: object) -> NeuronParams:
    if not isinstance(params, NeuronParams):
        raise TypeError(f"params: expected a NeuronParams, got {type(params).__name__}")
    return params


def _initial_remaining(params: NeuronParams, state: NeuronState) -> Tensor | None:
    """The refractory counter in use: ``None`` without a refractory period."""
    if params.refractory_steps == 0:
        return None
    if state.refractory_remaining is None:
        return torch.zeros(state.voltage.shape, dtype=torch.int32, device=state.voltage.device)
    return state.refractory_remaining


# ----------------------------------------------------------------------------
# Step form (autograd through ordinary tensor operations)
# ----------------------------------------------------------------------------


def _step(inputs: Tensor, state: NeuronState, params: NeuronParams) -> tuple[Tensor, NeuronState]:
    voltage = state.voltage
    remaining = _initial_remaining(params, state)
    theta = None if state.theta is None else state.theta.detach()
    h = _charge(params, voltage, inputs)
    refractory_mask = None if remaining is None else remaining > 0
    if refractory_mask is not None:
        h = torch.where(refractory_mask, voltage, h)
    threshold: Threshold = params.v_threshold if theta is None else params.v_threshold + theta
    spike = fire(h, threshold, params.surrogate)
    if refractory_mask is not None:
        spike = spike.masked_fill(refractory_mask, 0)
    new_voltage = _reset(params, h, spike.detach() if params.detach_reset else spike, threshold)
    fired = spike.detach() != 0
    new_remaining = None if remaining is None else refractory_update(remaining, fired, params.refractory_steps)
    new_theta = None if theta is None else theta_update(theta, fired, params.theta_plus, params.theta_decay)
    return spike, NeuronState(new_voltage, new_remaining, new_theta)


def neuron_step_unchecked(
    inputs: Tensor, state: NeuronState, params: NeuronParams
) -> tuple[Tensor, Tensor, NeuronState]:
    """The forward values of :func:`neuron_step_state`, without argument checks and without autograd.

    For callers that checked ``inputs`` and ``state`` themselves and need no
    gradient (the neuron modules' single steps in eval mode or under
    ``torch.no_grad()``); nothing is validated here and nothing keeps a graph.

    Returns ``(spike, fired, state)``: float spikes ``[B, *shape]``, the same
    spikes as bool, and the state after the step, equal (``torch.equal``) to
    what :func:`neuron_step_state` returns. The step is written with the
    selections of the window loop (:func:`neuron_window_state`), which give
    the values of the module-level equations for ``S`` in ``{0, 1}``::

        S_t = [H_t >= V_th + theta]           (= Heaviside(H_t - V_th - theta))
        V_t = V_reset where S_t, else H_t      (= S V_reset + (1 - S) H, hard reset)
        r_t = n where S_t, else max(r - 1, 0)
        theta_t = theta * theta_decay + theta_plus * sum_b S_t[b]

    (``theta * 1`` is ``theta`` exactly, so a decay of 1 skips the product,
    and with ``theta_plus = 0`` as well the returned ``theta`` is the given
    tensor itself.) The other returned tensors are new; nothing given is
    written.
    """
    voltage = state.voltage
    remaining = _initial_remaining(params, state)
    theta = state.theta
    h = torch.empty_like(voltage)
    _charge_into(params, voltage, inputs, h)
    refractory_mask = None if remaining is None else remaining > 0
    if refractory_mask is not None:
        torch.where(refractory_mask, voltage, h, out=h)
    threshold: Threshold = params.v_threshold if theta is None else params.v_threshold + theta
    fired = torch.ge(h, threshold)
    if refractory_mask is not None:
        fired.masked_fill_(refractory_mask, False)
    spike = spike_values(fired, h.dtype)
    # h is this call's own tensor: the new voltage is written into it
    new_voltage = h.masked_fill_(fired, params.v_reset) if params.reset == "hard" else h.sub_(spike * threshold)
    new_remaining = None
    if remaining is not None:
        new_remaining = (remaining - 1).clamp_min_(0).masked_fill_(fired, params.refractory_steps)
    new_theta = None if theta is None else _theta_after_step(theta, fired, spike, params)
    return spike, fired, NeuronState(new_voltage, new_remaining, new_theta)


def _theta_after_step(theta: Tensor, fired: Tensor, spike: Tensor, params: NeuronParams) -> Tensor:
    """:func:`theta_update` with the same values, fewer operations where they are exact."""
    if params.theta_plus == 0 and params.theta_decay == 1.0:
        return theta  # theta * 1 + 0 * count: nothing changes (the module never writes theta in place)
    if fired.shape[0] == 1 and spike.dtype == theta.dtype:
        count = spike.squeeze(0)  # one sample: its 0/1 spikes are the counts
    else:
        count = fired.sum(0).to(theta.dtype)
    decayed = theta if params.theta_decay == 1.0 else theta * params.theta_decay
    return decayed + params.theta_plus * count


def neuron_step_state(inputs: Tensor, state: NeuronState, params: NeuronParams) -> tuple[Tensor, NeuronState]:
    """One step with refractory period and adaptive threshold.

    Parameters
    ----------
    inputs:
        Input ``X_t`` ``[B, *shape]`` (floating, finite; voltage units).
    state:
        :class:`NeuronState` before the step. ``refractory_remaining`` may be
        ``None`` (no neuron refractory) and is ignored when
        ``params.refractory_steps == 0``; ``theta`` ``None`` disables the
        adaptive threshold.
    params:
        :class:`NeuronParams`.

    Returns
    -------
    ``(spike, state)``: float spikes ``[B, *shape]`` carrying the surrogate
    gradient, and the state after the step (``refractory_remaining`` is
    ``None`` without a refractory period).
    """
    params = _check_params(params)
    check_tensor(inputs, "inputs", min_ndim=1, floating=True, finite=True)
    _check_state(state, inputs, tuple(inputs.shape), "state")
    return _step(inputs, state, params)


def neuron_step(
    inputs: Tensor,
    voltage: Tensor,
    *,
    kind: str = "lif",
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    reset: str = "hard",
    surrogate: SurrogateGradient = DEFAULT_SURROGATE,
    detach_reset: bool = False,
) -> tuple[Tensor, Tensor]:
    """One charge-fire-reset step (see the module doc for the equations).

    ``inputs`` and ``voltage`` are ``[B, *shape]`` of one floating dtype.
    Returns ``(spike, voltage)``: float spikes with the surrogate gradient and
    the voltage after the reset.
    """
    params = NeuronParams(
        kind=kind,
        tau=tau,
        v_threshold=v_threshold,
        v_reset=v_reset,
        reset=reset,
        surrogate=surrogate,
        detach_reset=detach_reset,
    )
    spike, state = neuron_step_state(inputs, NeuronState(voltage), params)
    return spike, state.voltage


# ----------------------------------------------------------------------------
# Window form (one fused recurrence forward and backward)
# ----------------------------------------------------------------------------


class _WindowRecord(NamedTuple):
    spikes: Tensor
    voltages: Tensor
    state: NeuronState
    h: Tensor | None  # [T, B, *shape], kept for backward
    thresholds: Tensor | None  # [T, *shape], adaptive threshold per step
    refractory_masks: Tensor | None  # [T, B, *shape] bool


def _window_loop(inputs: Tensor, state: NeuronState, params: NeuronParams, keep_for_backward: bool) -> _WindowRecord:
    steps = inputs.shape[0]
    spikes = torch.empty_like(inputs)
    voltages = torch.empty_like(inputs)
    remaining = _initial_remaining(params, state)
    theta = state.theta
    keep_h = torch.empty_like(inputs) if keep_for_backward else None
    keep_thresholds = inputs.new_empty((steps, *theta.shape)) if keep_for_backward and theta is not None else None
    keep_masks = (
        torch.empty(inputs.shape, dtype=torch.bool, device=inputs.device)
        if keep_for_backward and remaining is not None
        else None
    )
    fired = torch.empty(inputs.shape[1:], dtype=torch.bool, device=inputs.device)
    h_scratch = torch.empty_like(state.voltage) if keep_h is None else None
    v_reset = inputs.new_tensor(params.v_reset)
    voltage = state.voltage
    # Written into preallocated outputs (no allocation per step where avoidable).
    # The values equal those of _step exactly: [H >= V_th] is Heaviside(H - V_th)
    # (a float difference is 0 only for equal operands and keeps the sign), and
    # for S in {0, 1} the selections below equal S*V_reset + (1-S)*H and H - S*V_th.
    for t in range(steps):
        h = h_scratch if keep_h is None else keep_h[t]
        _charge_into(params, voltage, inputs[t], h)
        refractory_mask = None if remaining is None else remaining > 0
        if refractory_mask is not None:
            torch.where(refractory_mask, voltage, h, out=h)
        threshold: Threshold = params.v_threshold if theta is None else params.v_threshold + theta
        torch.ge(h, threshold, out=fired)
        if refractory_mask is not None:
            fired.masked_fill_(refractory_mask, False)
        spikes[t].copy_(fired)
        if params.reset == "hard":
            torch.where(fired, v_reset, h, out=voltages[t])
        else:
            torch.sub(h, spikes[t] * threshold, out=voltages[t])
        voltage = voltages[t]
        if keep_thresholds is not None:
            keep_thresholds[t] = threshold
        if keep_masks is not None and refractory_mask is not None:
            keep_masks[t] = refractory_mask
        if remaining is not None:
            remaining = refractory_update(remaining, fired, params.refractory_steps)
        if theta is not None:
            theta = theta_update(theta, fired, params.theta_plus, params.theta_decay)
    # The final voltage is its own tensor, not a view of ``voltages``.
    final_voltage = voltages[-1].clone() if steps > 0 else state.voltage
    return _WindowRecord(
        spikes, voltages, NeuronState(final_voltage, remaining, theta), keep_h, keep_thresholds, keep_masks
    )


class _NeuronWindowFunction(torch.autograd.Function):
    """Fused forward and reverse recurrence; gradients for inputs and voltage0."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        inputs: Tensor,
        voltage0: Tensor,
        remaining0: Tensor | None,
        theta0: Tensor | None,
        params: NeuronParams,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
        # Called with T >= 1 only, so the final voltage is a new tensor.
        record = _window_loop(inputs, NeuronState(voltage0, remaining0, theta0), params, True)
        ctx.params = params
        ctx.save_for_backward(record.h, record.spikes, record.thresholds, record.refractory_masks)
        state = record.state
        outputs = (record.spikes, record.voltages, state.voltage, state.refractory_remaining, state.theta)
        ctx.mark_non_differentiable(*[o for o in outputs[3:] if o is not None])
        return outputs

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any,
        grad_spikes: Tensor,
        grad_voltages: Tensor,
        grad_final_voltage: Tensor,
        grad_remaining: Tensor | None,
        grad_theta: Tensor | None,
    ) -> tuple[Tensor | None, Tensor | None, None, None, None]:
        params: NeuronParams = ctx.params
        h, spikes, thresholds, refractory_masks = ctx.saved_tensors
        dh_dx, dh_dv = _charge_slopes(params)
        grad_inputs = torch.empty_like(h)
        # dL/dV_t through the steps after t; the final voltage is V_{T-1}.
        grad_future = grad_final_voltage
        for t in range(h.shape[0] - 1, -1, -1):
            threshold: Threshold = params.v_threshold if thresholds is None else thresholds[t]
            surrogate = params.surrogate.derivative(h[t] - threshold)
            mask = None if refractory_masks is None else refractory_masks[t]
            if mask is not None:
                surrogate = surrogate.masked_fill(mask, 0)
            if params.reset == "hard":
                dv_dh = 1 - spikes[t]
                if not params.detach_reset:
                    dv_dh = dv_dh + (params.v_reset - h[t]) * surrogate
            elif params.detach_reset:
                dv_dh = None  # identity
            else:
                dv_dh = 1 - threshold * surrogate
            grad_voltage = grad_voltages[t] + grad_future
            grad_h = grad_spikes[t] * surrogate + (grad_voltage if dv_dh is None else grad_voltage * dv_dh)
            if mask is None:
                torch.mul(grad_h, dh_dx, out=grad_inputs[t])
                grad_future = grad_h * dh_dv
            else:
                # A refractory step holds the voltage: dH/dX = 0, dH/dV = 1.
                grad_inputs[t] = (grad_h * dh_dx).masked_fill(mask, 0)
                grad_future = torch.where(mask, grad_h, grad_h * dh_dv)
        return (
            grad_inputs if ctx.needs_input_grad[0] else None,
            grad_future if ctx.needs_input_grad[1] else None,
            None,
            None,
            None,
        )


def neuron_window_state(inputs: Tensor, state: NeuronState, params: NeuronParams) -> NeuronWindowResult:
    """Run ``T`` steps at once, with refractory period and adaptive threshold.

    Parameters
    ----------
    inputs:
        Inputs ``[T, B, *shape]`` (floating, finite; voltage units), time first.
    state:
        :class:`NeuronState` before the first step (``voltage`` ``[B, *shape]``).
    params:
        :class:`NeuronParams`.

    Returns
    -------
    :class:`NeuronWindowResult` with float ``spikes`` and ``voltages``
    ``[T, B, *shape]`` and the state after the last step. Equal to ``T`` calls
    of :func:`neuron_step_state` (bitwise, forward). When a gradient is needed
    (grad mode on and ``inputs`` or ``state.voltage`` requiring it) the whole
    window is one autograd node whose backward is a fused reverse recurrence
    (gradients for ``inputs`` and ``state.voltage``); otherwise nothing is kept
    for backward.
    """
    params = _check_params(params)
    check_tensor(inputs, "inputs", min_ndim=2, floating=True, finite=True)
    _check_state(state, inputs, tuple(inputs.shape[1:]), "state")
    need_grad = torch.is_grad_enabled() and (inputs.requires_grad or state.voltage.requires_grad)
    remaining0 = _initial_remaining(params, state)
    theta0 = None if state.theta is None else state.theta.detach()
    if not need_grad or inputs.shape[0] == 0:
        with torch.no_grad():
            record = _window_loop(inputs, NeuronState(state.voltage, remaining0, theta0), params, False)
        # (An empty window returns the initial state itself, graph included.)
        return NeuronWindowResult(record.spikes, record.voltages, record.state)
    spikes, voltages, voltage, remaining, theta = _NeuronWindowFunction.apply(
        inputs, state.voltage, remaining0, theta0, params
    )
    return NeuronWindowResult(spikes, voltages, NeuronState(voltage, remaining, theta))


def neuron_window(
    inputs: Tensor,
    voltage0: Tensor,
    *,
    kind: str = "lif",
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    reset: str = "hard",
    surrogate: SurrogateGradient = DEFAULT_SURROGATE,
    detach_reset: bool = False,
) -> tuple[Tensor, Tensor]:
    """Window of charge-fire-reset steps as one fused autograd function.

    ``inputs`` ``[T, B, *shape]``, ``voltage0`` ``[B, *shape]`` (one floating
    dtype). Returns ``(spikes, voltages)``, both ``[T, B, *shape]``; spikes are
    float and carry the surrogate gradient. Gradients flow to ``inputs`` and
    ``voltage0``.
    """
    params = NeuronParams(
        kind=kind,
        tau=tau,
        v_threshold=v_threshold,
        v_reset=v_reset,
        reset=reset,
        surrogate=surrogate,
        detach_reset=detach_reset,
    )
    result = neuron_window_state(inputs, NeuronState(voltage0), params)
    return result.spikes, result.voltages
