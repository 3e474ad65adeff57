"""The adaptive exponential integrate-and-fire neuron of Clopath et al. (2010): step and window.

The neuron the voltage-based STDP of :mod:`plastic.functional.clopath` was
written for: an AdEx (Brette & Gerstner 2005) with a depolarising spike
after-potential ``z``, an adaptive threshold ``V_T`` that jumps after a spike
and relaxes, and a spike of finite duration (a plateau), so that the
membrane potential ``u`` the rule low-pass filters contains the spike and the
after-depolarisation. In continuous time::

    C du/dt       = -g_L (u - E_L) + g_L Delta_T exp((u - V_T) / Delta_T) - w + z + I
    tau_w dw/dt   = a (u - E_L) - w
    tau_z dz/dt   = -z
    tau_VT dV_T/dt = -(V_T - V_T,rest)

A spike is detected when ``u`` reaches ``v_peak``; ``u`` is then held at
``v_spike`` for ``spike_duration`` (the spike's plateau, input ignored, ``w``
frozen) and set to ``v_reset`` when the plateau ends, together with the jumps
``w += b``, ``z = I_sp``, ``V_T = V_T,max``.

Discrete time (step ``dt``, input current ``I_t`` held over the step; ``n =
ceil(spike_duration / dt)`` plateau steps; ``c`` counts the plateau steps
left)::

    c_{t-1} >= 2 (inside the plateau):
        u_t = v_spike,  w_t = w_{t-1},  c_t = c_{t-1} - 1,  no spike
    otherwise, from (u', w', z', V_T') = (v_reset, w + b, I_sp, V_T,max) if c_{t-1} == 1
                                          (the plateau ended: reset), else the previous state:
        h   = u' + dt/C (-g_L (u' - E_L) + g_L Delta_T exp((u' - V_T') / Delta_T) - w' + z' + I_t)
        w_t = w' + dt/tau_w (a (u' - E_L) - w')
        S_t = [h >= v_peak];  u_t = v_spike where S_t (c_t = n), else h (c_t = 0)
    always:  z_t = a_z z',  V_T,t = V_T,rest + a_VT (V_T' - V_T,rest)

``u`` and ``w`` by forward Euler (the authors' own simulations: Euler at
``dt = 1`` ms), ``z`` and ``V_T`` by their exact decays ``a = exp(-dt/tau)``
(``exact=False``: the Euler ``1 - dt/tau`` of the authors' code). So the
spike's voltage is in ``u`` for ``n`` steps (``u_t = v_spike`` from the step
that fired), and the first step after the plateau starts from ``v_reset``.

Units: mV, ms, pF, nS, pA (``pA / pF = mV / ms``).

Defaults: the paper's neuron (Table 1): ``C = 281`` pF, ``g_L = 30`` nS,
``E_L = -70.6`` mV, ``Delta_T = 2`` mV, ``V_T,rest = -50.4`` mV, ``V_T,max =
-30.4`` mV, ``tau_VT = 50`` ms, ``tau_w = 144`` ms, ``a = 4`` nS, ``b = 0.805``
pA, ``I_sp = 400`` pA, ``tau_z = 40`` ms; the spike's shape is not in the
paper's text but in the authors' simulation code (ModelDB 144566): detection
at 20 mV, 2 ms at about 29.4 mV, reset to ``E_L + 21.1`` mV (-49.5 mV).

References: C. Clopath, L. Büsing, E. Vasilaki & W. Gerstner (2010),
"Connectivity reflects coding: a model of voltage-based STDP with
homeostasis", Nat. Neurosci. 13:344-352; R. Brette & W. Gerstner (2005),
J. Neurophysiol. 94:3637-3642 (the AdEx).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative, positive
from plastic.functional.neuron_equations import refractory_steps
from plastic.functional.traces import decay_factor
from plastic.functional.validation import check_positive, check_state_tensor, check_tensor

__all__ = [
    "AdExParams",
    "AdExState",
    "AdExWindowResult",
    "adex_initial_state",
    "adex_step",
    "adex_window",
    "check_adex_state",
]


@attrs.frozen
class AdExParams:
    """Hyperparameters of the AdEx neuron of Clopath et al. (2010) (units: mV, ms, pF, nS, pA).

    capacitance: ``C`` (pF, > 0).
    leak_conductance: ``g_L`` (nS, > 0).
    v_rest: the leak reversal (resting) potential ``E_L`` (mV).
    slope_factor: ``Delta_T`` (mV, > 0), sharpness of the exponential spike initiation.
    v_threshold_rest, v_threshold_max: ``V_T`` at rest and right after a spike (mV).
    tau_threshold: relaxation of ``V_T`` (ms, > 0).
    tau_adaptation: ``tau_w`` (ms, > 0).
    adaptation_coupling: ``a`` (nS, >= 0), subthreshold adaptation.
    adaptation_jump: ``b`` (pA, >= 0), added to ``w`` at each spike's reset.
    afterpotential: ``I_sp`` (pA, >= 0), the value ``z`` is set to at each spike's reset.
    tau_afterpotential: ``tau_z`` (ms, > 0).
    v_peak: spike detection (mV): a spike where the step's ``u`` reaches it.
    v_spike: the spike's plateau (mV), held for ``spike_duration``.
    spike_duration: length of the plateau (ms, > 0; ``ceil(spike_duration / dt)`` steps).
    v_reset: the voltage after the plateau (mV, < ``v_peak``).
    exact: ``z`` and ``V_T`` decay by ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    """

    capacitance: float = attrs.field(default=281.0, validator=positive)
    leak_conductance: float = attrs.field(default=30.0, validator=positive)
    v_rest: float = attrs.field(default=-70.6, validator=finite)
    slope_factor: float = attrs.field(default=2.0, validator=positive)
    v_threshold_rest: float = attrs.field(default=-50.4, validator=finite)
    v_threshold_max: float = attrs.field(default=-30.4, validator=finite)
    tau_threshold: float = attrs.field(default=50.0, validator=positive)
    tau_adaptation: float = attrs.field(default=144.0, validator=positive)
    adaptation_coupling: float = attrs.field(default=4.0, validator=non_negative)
    adaptation_jump: float = attrs.field(default=0.805, validator=non_negative)
    afterpotential: float = attrs.field(default=400.0, validator=non_negative)
    tau_afterpotential: float = attrs.field(default=40.0, validator=positive)
    v_peak: float = attrs.field(default=20.0, validator=finite)
    v_spike: float = attrs.field(default=29.4, validator=finite)
    spike_duration: float = attrs.field(default=2.0, validator=positive)
    v_reset: float = attrs.field(default=-49.5, validator=finite)
    exact: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if self.v_threshold_max < self.v_threshold_rest:
            raise ValueError(
                f"v_threshold_max: expected a value >= v_threshold_rest ({self.v_threshold_rest}), "
                f"got {self.v_threshold_max}"
            )
        if self.v_peak <= self.v_threshold_rest:
            raise ValueError(
                f"v_peak: expected a value > v_threshold_rest ({self.v_threshold_rest}), got {self.v_peak}"
            )
        if self.v_reset >= self.v_peak:
            raise ValueError(f"v_reset: expected a value < v_peak ({self.v_peak}), got {self.v_reset}")

    def check_step(self, dt: float) -> None:
        """Whether the parameters work with steps of ``dt``: with the Euler decays (``exact=False``)
        ``tau_afterpotential`` and ``tau_threshold`` must be ``>= dt`` (errors name the field)."""
        dt = check_positive(dt, "dt")
        if not self.exact:
            for name in ("tau_afterpotential", "tau_threshold"):
                if getattr(self, name) < dt:
                    raise ValueError(
                        f"{name}: the Euler decay 1 - dt/tau needs {name} >= dt ({dt}), got {getattr(self, name)}"
                    )

    def plateau_steps(self, dt: float) -> int:
        """The spike's plateau in steps of ``dt``: ``ceil(spike_duration / dt)`` (>= 1)."""
        return max(1, refractory_steps(self.spike_duration, dt))


class AdExState(NamedTuple):
    """The state of a group of AdEx neurons, each ``[B, *shape]``.

    ``voltage`` (``u``, mV), ``adaptation`` (``w``, pA), ``afterpotential``
    (``z``, pA), ``threshold`` (``V_T``, mV), ``plateau`` (int32: steps of
    the spike's plateau left; 1: the plateau ended with the last step, the
    next step resets).
    """

    voltage: Tensor
    adaptation: Tensor
    afterpotential: Tensor
    threshold: Tensor
    plateau: Tensor


class AdExWindowResult(NamedTuple):
    """:func:`adex_window`'s result: ``spikes`` (bool ``[T, B, *shape]``), ``voltages``
    (``u_t`` of every step, ``[T, B, *shape]``), the ``state`` after the last step."""

    spikes: Tensor
    voltages: Tensor
    state: AdExState


def adex_initial_state(
    shape: tuple[int, ...],
    params: AdExParams,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> AdExState:
    """Neurons at rest: ``u = E_L``, ``w = z = 0``, ``V_T = V_T,rest``, no plateau (``shape`` includes the batch)."""
    if not isinstance(params, AdExParams):
        raise TypeError(f"params: expected AdExParams, got {type(params).__name__}")
    dtype = dtype or torch.get_default_dtype()
    return AdExState(
        torch.full(shape, params.v_rest, dtype=dtype, device=device),
        torch.zeros(shape, dtype=dtype, device=device),
        torch.zeros(shape, dtype=dtype, device=device),
        torch.full(shape, params.v_threshold_rest, dtype=dtype, device=device),
        torch.zeros(shape, dtype=torch.int32, device=device),
    )


def check_adex_state(state: object, like: Tensor) -> AdExState:
    """``state``: an :class:`AdExState` laid out as ``like`` (a step's inputs ``[B, *shape]``):
    its float tensors finite, of ``like``'s shape, dtype and device; ``plateau`` integer, ``>= 0``."""
    if not isinstance(state, AdExState):
        raise TypeError(f"state: expected an AdExState, got {type(state).__name__}")
    for name in ("voltage", "adaptation", "afterpotential", "threshold"):
        check_state_tensor(getattr(state, name), f"state.{name}", like.shape, like)
    plateau = check_tensor(state.plateau, "state.plateau", shape=like.shape, device=like.device)
    if plateau.is_floating_point() or plateau.dtype == torch.bool or plateau.is_complex():
        raise TypeError(f"state.plateau: expected an integer tensor, got dtype {plateau.dtype}")
    if bool((plateau < 0).any()):
        raise ValueError("state.plateau: expected values >= 0")
    return state


def _check_inputs(inputs: object, name: str, min_ndim: int) -> Tensor:
    return check_tensor(inputs, name, min_ndim=min_ndim, floating=True, finite=True)


class _StepConstants(NamedTuple):
    step_over_capacitance: float  # dt / C
    step_over_tau_adaptation: float  # dt / tau_w
    decay_afterpotential: float
    decay_threshold: float
    plateau_steps: int


def _constants(params: AdExParams, dt: float) -> _StepConstants:
    if not isinstance(params, AdExParams):
        raise TypeError(f"params: expected AdExParams, got {type(params).__name__}")
    dt = check_positive(dt, "dt")
    params.check_step(dt)
    return _StepConstants(
        dt / params.capacitance,
        dt / params.tau_adaptation,
        decay_factor(dt, params.tau_afterpotential, exact=params.exact),
        decay_factor(dt, params.tau_threshold, exact=params.exact),
        params.plateau_steps(dt),
    )


def _step(inputs: Tensor, state: AdExState, params: AdExParams, constants: _StepConstants) -> tuple[Tensor, AdExState]:
    """One step on checked inputs and state (the module docstring's equations)."""
    p = params
    plateau = state.plateau
    holding = plateau >= 2
    resetting = plateau == 1
    voltage = torch.where(resetting, p.v_reset, state.voltage)
    adaptation = torch.where(resetting, state.adaptation + p.adaptation_jump, state.adaptation)
    afterpotential = torch.where(resetting, p.afterpotential, state.afterpotential)
    threshold = torch.where(resetting, p.v_threshold_max, state.threshold)
    leak = voltage - p.v_rest
    # inside the plateau u is far above V_T: exp may overflow there, but where() keeps the held value
    initiation = torch.exp((voltage - threshold) / p.slope_factor) * (p.leak_conductance * p.slope_factor)
    current = initiation - p.leak_conductance * leak - adaptation + afterpotential + inputs
    charged = voltage + current * constants.step_over_capacitance
    integrated_adaptation = (
        adaptation + (p.adaptation_coupling * leak - adaptation) * constants.step_over_tau_adaptation
    )
    fired = (charged >= p.v_peak) & ~holding
    new_voltage = torch.where(holding | fired, p.v_spike, charged)
    new_adaptation = torch.where(holding, adaptation, integrated_adaptation)
    new_plateau = torch.where(fired, constants.plateau_steps, torch.where(holding, plateau - 1, 0)).to(plateau.dtype)
    new_afterpotential = afterpotential * constants.decay_afterpotential
    new_threshold = p.v_threshold_rest + (threshold - p.v_threshold_rest) * constants.decay_threshold
    return fired, AdExState(new_voltage, new_adaptation, new_afterpotential, new_threshold, new_plateau)


def adex_step(inputs: Tensor, state: AdExState, params: AdExParams, *, dt: float = 1.0) -> tuple[Tensor, AdExState]:
    """One step of the AdEx (module docstring) with input current ``inputs`` (pA, ``[B, *shape]``).

    Returns ``(spikes, state)``: bool spikes ``[B, *shape]`` and the new state
    (new tensors; ``state.voltage`` is ``u_t``). Inputs and state are checked
    first (``ValueError``/``TypeError`` naming ``inputs``, ``state.<field>``,
    ``params`` or ``dt``).
    """
    inputs = _check_inputs(inputs, "inputs", 1)
    constants = _constants(params, dt)
    check_adex_state(state, inputs)
    return _step(inputs, state, params, constants)


def adex_window(inputs: Tensor, state: AdExState, params: AdExParams, *, dt: float = 1.0) -> AdExWindowResult:
    """The AdEx over a window of input currents ``[T, B, *shape]`` (pA): the step of
    :func:`adex_step` in a loop over time (the recurrence needs it), so a window equals
    its steps bit for bit. Returns the spikes, every step's voltage ``u_t`` and the last state."""
    inputs = _check_inputs(inputs, "inputs", 2)
    constants = _constants(params, dt)
    check_adex_state(state, inputs[0] if inputs.shape[0] else inputs.new_empty(inputs.shape[1:]))
    steps = inputs.shape[0]
    spikes = torch.empty(inputs.shape, dtype=torch.bool, device=inputs.device)
    voltages = torch.empty_like(inputs)
    for t in range(steps):
        fired, state = _step(inputs[t], state, params, constants)
        spikes[t] = fired
        voltages[t] = state.voltage
    return AdExWindowResult(spikes, voltages, state)
