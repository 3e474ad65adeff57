"""Stochastic spike response neurons (SRM0) with exponential escape noise: one step and a window.

The membrane potential is a sum of kernels (spike response model, SRM0: the
postsynaptic potentials do not reset when the neuron fires; its own last
spike adds an after-potential)::

    h_t   = a_m * h_{t-1} + x_t                       a_m = exp(-dt / tau_membrane)
    u_t   = u_rest + epsilon_0 * h_t + a_eta * r_{t-1}
    rho_t = rho_0 * exp((u_t - theta) / delta_u)      (Hz)
    p_t   = 1 - exp(-rho_t * dt / 1000)               (0 while refractory)
    s_t   = [U_t < p_t],   U_t ~ uniform [0, 1)
    r_t   = eta_0 where s_t, else a_eta * r_{t-1}      a_eta = exp(-dt / tau_after_potential)

``x_t`` is the input of the step (a connection's output, e.g. ``sum_j w_ij
s_j(t)``), so ``epsilon_0 * h_t`` is the input filtered by the PSP kernel
``epsilon(s) = epsilon_0 * a_m^s`` (the current step's input included);
``r`` is the after-potential ``eta(t - t_last) = eta_0 * a_eta^(t - t_last)``
of the neuron's last spike, felt from the next step on. ``p_t`` is the
probability that an inhomogeneous Poisson process of rate ``rho_t`` has an
event in the step. After a spike the neuron cannot fire for
``ceil(refractory / dt)`` steps (``p = 0`` there).

The uniform draws ``U`` are an argument: the functions are deterministic and
the module (:class:`plastic.neural.escape_noise.EscapeNoiseNeuron`) draws
them from its ``torch.Generator``. The window form runs the step for each
step, so it equals the step loop bit for bit. No gradient is defined through
the spikes.

Units: voltages in mV, ``dt`` and time constants in ms, ``rho_0`` in Hz.

References: W. Gerstner & W. M. Kistler (2002), *Spiking Neuron Models*,
ch. 4 and 5.3 (SRM0, escape noise); E. Vasilaki, N. Frémaux, R. Urbanczik,
W. Senn & W. Gerstner (2009), PLoS Comput. Biol. 5:e1000586 (SRM0 neurons
with exponential escape noise trained by reward); BindsNET's ``SRM0Nodes``
(the same escape rate with a reset instead of kernels).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative, positive
from plastic.functional.neuron_equations import refractory_steps, refractory_update
from plastic.functional.traces import decay_factor
from plastic.functional.validation import check_positive, check_shape, check_tensor

__all__ = [
    "EscapeNoiseParams",
    "EscapeNoiseState",
    "EscapeNoiseStep",
    "EscapeNoiseWindow",
    "escape_noise_initial_state",
    "escape_noise_step",
    "escape_noise_window",
    "escape_probability",
]


@attrs.frozen
class EscapeNoiseParams:
    """Hyperparameters of the escape-noise SRM0 neuron (module docstring).

    tau_membrane: PSP kernel time constant (ms, > 0).
    epsilon_0: PSP amplitude per unit of input (mV).
    u_rest: resting potential (mV).
    theta: threshold of the escape rate (mV): ``rho = rho_0`` at ``u = theta``.
    delta_u: width of the threshold region (mV, > 0).
    rho_0: escape rate at threshold (Hz, > 0).
    eta_0: after-potential of a spike (mV; negative: hyperpolarising).
    tau_after_potential: its time constant (ms, > 0).
    refractory: absolute refractory period after a spike (ms, >= 0).

    Defaults: BindsNET's ``SRM0Nodes`` (rest -70 mV, threshold -50 mV, width
    5 mV, rate 1 per ms at threshold, 10 ms membrane, 5 ms refractory), without
    its reset (``eta_0 = 0``).
    """

    tau_membrane: float = attrs.field(default=10.0, validator=positive)
    epsilon_0: float = attrs.field(default=1.0, validator=finite)
    u_rest: float = attrs.field(default=-70.0, validator=finite)
    theta: float = attrs.field(default=-50.0, validator=finite)
    delta_u: float = attrs.field(default=5.0, validator=positive)
    rho_0: float = attrs.field(default=1000.0, validator=positive)
    eta_0: float = attrs.field(default=0.0, validator=finite)
    tau_after_potential: float = attrs.field(default=10.0, validator=positive)
    refractory: float = attrs.field(default=5.0, validator=non_negative)


class EscapeNoiseState(NamedTuple):
    """State after a step, each ``[B, *shape]``.

    psp: ``h``, the input filtered by ``a_m^s`` (``epsilon_0 * h`` is the summed PSP, mV/``epsilon_0``).
    after_potential: ``r``, the last spike's after-potential at this step (mV).
    refractory_remaining: steps the neuron still cannot fire (int32).
    """

    psp: Tensor
    after_potential: Tensor
    refractory_remaining: Tensor


class EscapeNoiseStep(NamedTuple):
    """One step: ``spike`` (bool), its ``probability`` ``p_t``, the ``voltage`` ``u_t`` and the new state."""

    spike: Tensor
    probability: Tensor
    voltage: Tensor
    state: EscapeNoiseState


class EscapeNoiseWindow(NamedTuple):
    """A window: ``spikes`` (bool), ``probability`` and ``voltage`` ``[T, B, *shape]``, the state after it."""

    spikes: Tensor
    probability: Tensor
    voltage: Tensor
    state: EscapeNoiseState


def escape_noise_initial_state(
    shape: tuple[int, ...], *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> EscapeNoiseState:
    """The resting state ``[B, *shape]`` (``shape`` with the batch): no input, no after-potential, not refractory."""
    zeros = torch.zeros(shape, dtype=dtype or torch.get_default_dtype(), device=device)
    return EscapeNoiseState(zeros, zeros.clone(), torch.zeros(shape, dtype=torch.int32, device=device))


def escape_probability(voltage: Tensor, params: EscapeNoiseParams, dt: float) -> Tensor:
    """``1 - exp(-rho_0 exp((u - theta) / delta_u) dt / 1000)``: the probability of a spike in a step
    of ``dt`` ms at the voltage ``u`` (mV) (refractoriness not included)."""
    rate = params.rho_0 * torch.exp((voltage - params.theta) / params.delta_u)
    return -torch.expm1(-rate * (dt / 1000.0))


def _check(
    inputs: object, state: object, params: object, dt: object, uniform: object, *, window: bool
) -> tuple[Tensor, EscapeNoiseState, EscapeNoiseParams, float, Tensor]:
    """Every argument check, before any computation (errors name the argument)."""
    name = "inputs"
    values = check_tensor(inputs, name, floating=True, finite=True, min_ndim=3 if window else 2)
    if not isinstance(params, EscapeNoiseParams):
        raise TypeError(f"params: expected EscapeNoiseParams, got {type(params).__name__}")
    dt = check_positive(dt, "dt")
    steps_shape = tuple(values.shape)
    state_shape = steps_shape[1:] if window else steps_shape
    noise = check_tensor(uniform, "uniform", floating=True, finite=True, device=values.device)
    check_shape(noise, "uniform", steps_shape)
    if noise.numel() and not bool(((noise >= 0) & (noise < 1)).all()):
        raise ValueError("uniform: expected draws in [0, 1)")
    if not isinstance(state, EscapeNoiseState):
        raise TypeError(f"state: expected an EscapeNoiseState, got {type(state).__name__}")
    for field, value in zip(EscapeNoiseState._fields, state, strict=True):
        tensor = check_tensor(value, f"state.{field}", shape=state_shape, device=values.device)
        if field == "refractory_remaining":
            if tensor.is_floating_point() or tensor.dtype == torch.bool:
                raise TypeError(f"state.{field}: expected an integer tensor, got {tensor.dtype}")
        else:
            check_tensor(tensor, f"state.{field}", floating=True, finite=True)
            if tensor.dtype != values.dtype:
                raise TypeError(f"state.{field}: expected dtype {values.dtype} (the inputs'), got {tensor.dtype}")
    return values, state, params, dt, noise


def _step(
    inputs: Tensor, state: EscapeNoiseState, params: EscapeNoiseParams, dt: float, uniform: Tensor
) -> EscapeNoiseStep:
    decay_membrane = float(decay_factor(dt, params.tau_membrane))
    decay_after = float(decay_factor(dt, params.tau_after_potential))
    psp = state.psp * decay_membrane + inputs
    felt = state.after_potential * decay_after
    voltage = params.u_rest + params.epsilon_0 * psp + felt
    probability = escape_probability(voltage, params, dt)
    probability = torch.where(state.refractory_remaining > 0, 0.0, probability)
    spike = uniform < probability
    after_potential = torch.where(spike, params.eta_0, felt)
    remaining = refractory_update(state.refractory_remaining, spike, refractory_steps(params.refractory, dt))
    return EscapeNoiseStep(
        spike, probability, voltage, EscapeNoiseState(psp, after_potential, remaining.to(torch.int32))
    )


def escape_noise_step(
    inputs: Tensor, state: EscapeNoiseState, params: EscapeNoiseParams, *, dt: float, uniform: Tensor
) -> EscapeNoiseStep:
    """One step of ``[B, *shape]`` neurons: ``inputs`` ``x_t`` and ``uniform`` draws ``U_t`` in ``[0, 1)``
    (both ``[B, *shape]``, the dtype of the state); returns :class:`EscapeNoiseStep`."""
    values, state, params, dt, noise = _check(inputs, state, params, dt, uniform, window=False)
    return _step(values, state, params, dt, noise)


def escape_noise_window(
    inputs: Tensor, state: EscapeNoiseState, params: EscapeNoiseParams, *, dt: float, uniform: Tensor
) -> EscapeNoiseWindow:
    """A window: ``inputs`` and ``uniform`` ``[T, B, *shape]``; :func:`escape_noise_step` for each
    step in turn (one ``O(B*N)`` step per time step), so equal to the step loop bit for bit."""
    values, state, params, dt, noise = _check(inputs, state, params, dt, uniform, window=True)
    steps = values.shape[0]
    spikes = torch.empty(values.shape, dtype=torch.bool, device=values.device)
    probability = torch.empty_like(values)
    voltage = torch.empty_like(values)
    for t in range(steps):
        result = _step(values[t], state, params, dt, noise[t])
        spikes[t], probability[t], voltage[t] = result.spike, result.probability, result.voltage
        state = result.state
    return EscapeNoiseWindow(spikes, probability, voltage, state)
