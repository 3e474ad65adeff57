"""The window form of the neuron step: ``T`` steps as one fused recurrence with its own backward.

:func:`neuron_window_state` runs the step of :mod:`plastic.functional.neurons`
(equations in its module doc) over ``[T, B, *shape]`` inputs as one custom
autograd function: the forward loop runs without building a graph and keeps
only ``H_t`` (plus the spikes, and the per-step thresholds and refractory
masks where used); the backward runs its own reverse recurrence

    dL/dH_t     = dL/dS_t * g_t + (dL/dV_t + dL/dV_t|future) * dV_t/dH_t
    dL/dX_t     = dL/dH_t * dH_t/dX_t
    dL/dV_{t-1}|future = dL/dH_t * dH_t/dV_{t-1}

with ``g_t = surrogate'(H_t - V_th)``; ``dV_t/dH_t = (1 - S_t) + (V_reset -
H_t) g_t`` (hard) or ``1 - V_th g_t`` (soft), without the ``g_t`` terms when the
reset is detached; ``dH/dX = 1/tau`` (``1`` with ``decay_input=False``),
``dH/dV = 1 - 1/tau`` (LIF) or ``1, 1`` (IF); and ``dH/dX = 0``, ``dH/dV = 1``, ``g = 0`` on refractory steps.
The forward values equal ``T`` calls of
:func:`~plastic.functional.neurons.neuron_step_state` bit for bit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from plastic.functional.neuron_equations import _charge_into, _charge_slopes, refractory_update, theta_update
from plastic.functional.neuron_params import (
    NeuronParams,
    NeuronState,
    NeuronWindowResult,
    Threshold,
    _check_params,
    _check_state,
    _initial_remaining,
)
from plastic.functional.surrogate import DEFAULT_SURROGATE, SurrogateGradient
from plastic.functional.validation import check_tensor

__all__ = ["neuron_window", "neuron_window_state"]


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
    # H_t of every step where backward needs it, else one slot that every step reuses
    h_store = torch.empty_like(inputs) if keep_for_backward else inputs.new_empty((1, *inputs.shape[1:]))
    keep_thresholds = inputs.new_empty((steps, *theta.shape)) if keep_for_backward and theta is not None else None
    keep_masks = (
        torch.empty(inputs.shape, dtype=torch.bool, device=inputs.device)
        if keep_for_backward and remaining is not None
        else None
    )
    fired = torch.empty(inputs.shape[1:], dtype=torch.bool, device=inputs.device)
    v_reset = inputs.new_tensor(params.v_reset)
    voltage = state.voltage
    # Written into preallocated outputs (no allocation per step where avoidable).
    # The values equal those of _step exactly: [H >= V_th] is Heaviside(H - V_th)
    # (a float difference is 0 only for equal operands and keeps the sign), and
    # for S in {0, 1} the selections below equal S*V_reset + (1-S)*H and H - S*V_th.
    for t in range(steps):
        h = h_store[t] if keep_for_backward else h_store[0]
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
    keep_h = h_store if keep_for_backward else None
    return _WindowRecord(
        spikes, voltages, NeuronState(final_voltage, remaining, theta), keep_h, keep_thresholds, keep_masks
    )


class _NeuronWindowFunction(torch.autograd.Function):
    """Fused forward and reverse recurrence; gradients for inputs and voltage0."""

    @staticmethod
    def forward(
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
    def backward(
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
    # torch's Function.apply is unannotated (the subclass's call is not covered by untyped_calls_exclude)
    spikes, voltages, voltage, remaining, theta = _NeuronWindowFunction.apply(  # type: ignore[no-untyped-call]
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
    decay_input: bool = True,
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
        decay_input=decay_input,
    )
    result = neuron_window_state(inputs, NeuronState(voltage0), params)
    return result.spikes, result.voltages
