"""Spiking neuron dynamics: charge, fire, reset, in step and window form.

One step of a neuron with membrane potential ``V`` (voltage units, e.g. mV)
and input ``X`` (same units: the input is the voltage increment it would
cause in a non-leaky neuron) is::

    charge   LIF: H_t = V_{t-1} + (X_t - (V_{t-1} - V_reset)) / tau      (decay_input, the default)
                  H_t = V_{t-1} - (V_{t-1} - V_reset) / tau + X_t      (decay_input=False)
             IF:  H_t = V_{t-1} + X_t
    fire     S_t = Heaviside(H_t - V_th)          with Heaviside(0) = 1, i.e. S_t = [H_t >= V_th]
    reset    hard: V_t = S_t * V_reset + (1 - S_t) * H_t
             soft: V_t = H_t - S_t * V_th

``tau`` is the membrane time constant *in steps* (the LIF formula above is the
Euler step of ``tau dV/dt = -(V - V_reset) + X`` with ``dt = 1``); ``tau >= 1``
keeps the step stable and ``tau = 1`` means no memory (``H_t = V_reset + X_t``).
``V_reset`` is also the resting potential the LIF leaks towards. With
``decay_input=False`` (SpikingJelly's option of that name) the input is not
divided by ``tau``: it is the voltage increment of one step, and the Euler
equation reads ``tau dV/dt = -(V - V_reset) + tau X``.

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

The code is split by idea; every name is importable from here:

* :mod:`plastic.functional.neuron_params`: :class:`NeuronParams` (the
  hyperparameters, in step units), :class:`NeuronState`,
  :class:`NeuronWindowResult`, and the state checks;
* :mod:`plastic.functional.neuron_equations`: the pieces of the step
  (:func:`lif_charge`, :func:`fire`, :func:`reset_hard`, ...);
* this module: the step form (:func:`neuron_step_state`, autograd through
  ordinary tensor operations, and :func:`neuron_step_unchecked`, its forward
  values without checks or graph);
* :mod:`plastic.functional.neuron_window`: the window form
  (:func:`neuron_window_state`), ``T`` steps as one fused recurrence with a
  hand-written backward.

References: Gerstner, Kistler, Naud & Paninski (2014), *Neuronal Dynamics*,
ch. 1 and 6 (LIF, adaptation); Diehl & Cook (2015), "Unsupervised learning of
digit recognition using spike-timing-dependent plasticity", Front. Comput.
Neurosci. 9:99 (adaptive threshold, refractory period); Fang et al. (2021),
ICCV (the charge/fire/reset decomposition with surrogate gradients).
"""

from __future__ import annotations

import torch
from torch import Tensor

from plastic.functional.neuron_equations import (
    _charge,
    _charge_into,
    _reset,
    fire,
    if_charge,
    lif_charge,
    neuron_charge,
    refractory_steps,
    refractory_update,
    reset_hard,
    reset_soft,
    step_operand,
    theta_decay_factor,
    theta_update,
)
from plastic.functional.neuron_params import (
    NEURON_KINDS,
    RESET_MODES,
    NeuronParams,
    NeuronState,
    NeuronWindowResult,
    Threshold,
    _check_params,
    _check_state,
    _initial_remaining,
)
from plastic.functional.neuron_window import neuron_window, neuron_window_state
from plastic.functional.surrogate import DEFAULT_SURROGATE, SurrogateGradient
from plastic.functional.traces import spike_values
from plastic.functional.validation import check_tensor

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
    # the numbers of the step enter as cached 0-d tensors of the operands' dtypes (step_operand):
    # the same values, without wrapping each number into a new tensor at every step
    voltage, _, theta = state
    remaining = None if params.refractory_steps == 0 else _initial_remaining(params, state)
    h = _charge_into(params, voltage, inputs)
    refractory_mask = None if remaining is None else torch.gt(remaining, step_operand(0, remaining))
    if refractory_mask is not None:
        torch.where(refractory_mask, voltage, h, out=h)
    # V_th + theta (the sum commutes exactly)
    threshold = (
        step_operand(params.v_threshold, h)
        if theta is None
        else torch.add(theta, step_operand(params.v_threshold, theta))
    )
    fired = torch.ge(h, threshold)
    if refractory_mask is not None:
        fired.masked_fill_(refractory_mask, step_operand(False, fired))
    spike = spike_values(fired, h.dtype)
    # h is this call's own tensor: the new voltage is written into it
    if params.reset == "hard":
        new_voltage = h.masked_fill_(fired, step_operand(params.v_reset, h))
    else:
        new_voltage = h.sub_(spike * threshold)
    new_remaining = None
    if remaining is not None:
        new_remaining = (
            torch.sub(remaining, step_operand(1, remaining))
            .clamp_min_(step_operand(0, remaining))
            .masked_fill_(fired, step_operand(params.refractory_steps, remaining))
        )
    new_theta = None if theta is None else _theta_after_step(theta, fired, spike, params)
    return spike, fired, NeuronState(new_voltage, new_remaining, new_theta)


def _theta_after_step(theta: Tensor, fired: Tensor, spike: Tensor, params: NeuronParams) -> Tensor:
    """:func:`theta_update` with the same values, fewer operations where they are exact."""
    if params.theta_plus == 0 and params.theta_decay == 1.0:
        return theta  # theta * 1 + 0 * count: nothing changes (the module never writes theta in place)
    decayed = theta if params.theta_decay == 1.0 else torch.mul(theta, step_operand(params.theta_decay, theta))
    if fired.shape[0] == 1 and spike.dtype == theta.dtype:
        # one sample: its 0/1 spikes are the counts, and theta_plus * count is exact (theta_plus or 0),
        # so adding it with alpha rounds once, as the separate product and sum do
        return torch.add(decayed, spike.squeeze(0), alpha=params.theta_plus)
    return decayed + params.theta_plus * fired.sum(0).to(theta.dtype)


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
    decay_input: bool = True,
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
        decay_input=decay_input,
    )
    spike, state = neuron_step_state(inputs, NeuronState(voltage), params)
    return spike, state.voltage
