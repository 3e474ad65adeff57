"""Voltage-based STDP of Clopath, Büsing, Vasilaki & Gerstner (2010): step and window, dense and conv.

The weight of synapse ``post i <- pre j`` changes with the postsynaptic
membrane potential ``u_i`` and two low-pass filtered copies of it, and with a
presynaptic trace ``x_bar_j``. In the paper's continuous time::

    tau_minus du_minus/dt = -u_minus + u        tau_plus du_plus/dt = -u_plus + u
    tau_x dx_bar/dt       = -x_bar + X_j(t)     (X_j: the presynaptic spike train, a sum of deltas)

    dw/dt = -A_LTD X_j(t) [u_minus - theta_minus]_+                        (depression at presynaptic spikes)
            + A_LTP x_bar_j [u - theta_plus]_+ [u_plus - theta_minus]_+      (potentiation, continuous)

with ``[v]_+ = max(v, 0)``. Optional homeostasis: ``A_LTD`` scaled by
``u_bar_bar^2 / u_ref^2``, where ``u_bar_bar`` is a slow average of the
depolarisation ``u - v_rest`` (``tau_homeostasis``, about 1 s).

Discrete time (step ``dt``; ``u_t`` is the voltage recorded after step ``t``,
``s_t`` the presynaptic spikes of step ``t``; ``a = exp(-dt/tau)``)::

    u_minus_t = a_minus u_minus_{t-1} + (1 - a_minus) u_t         (the same for u_plus)
    x_bar_t   = a_x x_bar_{t-1} + s_t / tau_x
    depression   += A_LTD(t) s_t [u_minus_{t-d} - theta_minus]_+
    potentiation += A_LTP dt x_bar_t [u_t - theta_plus]_+ [u_plus_{t-d} - theta_minus]_+
    u_bar_bar_t  = a_h u_bar_bar_{t-1} + (1 - a_h) (u_t - v_rest),
    A_LTD(t)     = A_LTD (homeostasis off) or A_LTD u_bar_bar_t^2 / u_ref^2 (on)

Where this differs from the continuous form: the filters are the exact
solution of their equation for ``u`` held at ``u_t`` over the step
(``exact=False``: the Euler ``a = 1 - dt/tau``, the form of the authors'
code); ``x_bar`` includes the current step's spike (as every trace in
plastic; the authors' code adds it one step later); the potentiation is
integrated by the rectangle rule at the end of each step. ``d =
filter_delay / dt`` steps: the rule reads the filters ``filter_delay`` ms in
the past. The paper's equations have no delay; the authors' simulations
(ModelDB 144566: the filters read 4 steps of 1 ms back, "to read the value
of the voltage trace before this spike") and NEST's ``clopath_synapse``
(``delay_u_bars``, 5 ms by default) have it, and the pairing experiments need
it: without it a spike's own plateau raises ``u_plus`` within the spike and
an isolated pre-post pair potentiates strongly. ``filter_delay = 0`` gives
the equations as printed. Before the first step the filters (and the
delayed values) hold ``v_rest``: the neuron rested before.

Over a window both terms are one bilinear product each, like the pair rules
(:mod:`plastic.functional.bilinear`): ``potentiation = sum_{t,b,p} post_+(t)
x_bar(t)`` and ``depression = sum_{t,b,p} post_-(t) s(t)``, with the
postsynaptic factors ``post_+ = A_LTP dt [u - theta_plus]_+ [u_plus(t-d) -
theta_minus]_+`` and ``post_- = A_LTD(t) [u_minus(t-d) - theta_minus]_+``;
for a convolution the presynaptic quantities are taken over each output
position's receptive field and summed over positions. The filters, the trace
and the delayed values are carried (:class:`ClopathState`), so chained
windows equal one window.

Units: mV and ms; ``A_LTD`` in weight per mV (per presynaptic spike),
``A_LTP`` in weight per mV^2 per (ms x_bar), ``x_bar`` in 1/ms.

Defaults: the paper's visual-cortex fit (Table 1; the same values are NEST's
defaults): ``A_LTD = 14e-5`` /mV, ``A_LTP = 8e-5`` /mV^2, ``theta_minus =
-70.6`` mV, ``theta_plus = -45.3`` mV, ``tau_minus = 10``, ``tau_plus = 7``,
``tau_x = 15`` ms, ``u_ref^2 = 60`` mV^2.

Reference: C. Clopath, L. Büsing, E. Vasilaki & W. Gerstner (2010),
"Connectivity reflects coding: a model of voltage-based STDP with
homeostasis", Nat. Neurosci. 13:344-352.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative, positive
from plastic.functional.bilinear import (
    BatchReduction,
    SynapseLayout,
    View,
    WeightFactor,
    check_batch_reduction,
)
from plastic.functional.traces import decay_factor, spike_values, trace_cumulative_window
from plastic.functional.validation import check_positive, check_spikes, check_state_tensor, check_tensor

__all__ = [
    "ClopathParameters",
    "ClopathState",
    "ClopathUpdate",
    "clopath_initial_state",
    "clopath_step",
    "clopath_window",
    "low_pass",
    "voltage_with_spikes",
]


@attrs.frozen
class ClopathParameters:
    """Hyperparameters of the voltage-based rule (module docstring; mV, ms).

    a_ltd: ``A_LTD`` (weight per mV, >= 0), depression per presynaptic spike and mV of ``[u_minus - theta_minus]_+``.
    a_ltp: ``A_LTP`` (weight per mV^2 and ms of ``x_bar``, >= 0).
    theta_minus: the threshold of the filtered potentials (mV).
    theta_plus: the threshold of the potential itself in the potentiation (mV).
    tau_minus, tau_plus: the filters ``u_minus`` (depression) and ``u_plus`` (potentiation) (ms, > 0).
    tau_x: the presynaptic trace ``x_bar`` (ms, > 0; it jumps by ``1/tau_x``).
    filter_delay: how far back the filters are read (ms, >= 0, a multiple of ``dt``).
    v_rest: the filters' value before the first step, and the zero of the depolarisation (mV).
    homeostasis: scale ``A_LTD`` by ``u_bar_bar^2 / u_ref_squared``.
    tau_homeostasis: the average ``u_bar_bar`` of the depolarisation (ms, > 0).
    u_ref_squared: ``u_ref^2`` (mV^2, > 0).
    exact: decays ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    """

    a_ltd: float = attrs.field(default=14e-5, validator=non_negative)
    a_ltp: float = attrs.field(default=8e-5, validator=non_negative)
    theta_minus: float = attrs.field(default=-70.6, validator=finite)
    theta_plus: float = attrs.field(default=-45.3, validator=finite)
    tau_minus: float = attrs.field(default=10.0, validator=positive)
    tau_plus: float = attrs.field(default=7.0, validator=positive)
    tau_x: float = attrs.field(default=15.0, validator=positive)
    filter_delay: float = attrs.field(default=4.0, validator=non_negative)
    v_rest: float = attrs.field(default=-70.6, validator=finite)
    homeostasis: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    tau_homeostasis: float = attrs.field(default=1000.0, validator=positive)
    u_ref_squared: float = attrs.field(default=60.0, validator=positive)
    exact: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def delay_steps(self, dt: float) -> int:
        """``filter_delay / dt`` as a whole number of steps (ValueError when it is not one)."""
        dt = check_positive(dt, "dt")
        ratio = self.filter_delay / dt
        steps = round(ratio)
        if abs(ratio - steps) > 1e-9 * max(1.0, ratio):
            raise ValueError(f"filter_delay: expected a multiple of dt ({dt}), got {self.filter_delay}")
        return int(steps)

    def check_step(self, dt: float) -> None:
        """Whether the parameters work with steps of ``dt``: ``filter_delay`` a multiple of it and,
        with the Euler decays (``exact=False``), every time constant ``>= dt`` (errors name the field)."""
        self.delay_steps(dt)
        if not self.exact:
            for name in ("tau_minus", "tau_plus", "tau_x", "tau_homeostasis"):
                if getattr(self, name) < dt:
                    raise ValueError(
                        f"{name}: the Euler decay 1 - dt/tau needs {name} >= dt ({dt}), got {getattr(self, name)}"
                    )


class ClopathState(NamedTuple):
    """What the rule carries from one window to the next.

    ``trace_pre`` (``x_bar``, ``[B, *in_shape]``, 1/ms); ``u_minus``,
    ``u_plus`` (the filters after the last step, ``[B, *out_shape]``, mV);
    ``u_minus_delayed``, ``u_plus_delayed`` (the filters of the last ``d``
    steps, oldest first, ``[d, B, *out_shape]``); ``depolarisation``
    (``u_bar_bar``, ``[B, *out_shape]``, mV; stays 0 without homeostasis).
    """

    trace_pre: Tensor
    u_minus: Tensor
    u_plus: Tensor
    u_minus_delayed: Tensor
    u_plus_delayed: Tensor
    depolarisation: Tensor


class ClopathUpdate(NamedTuple):
    """``potentiation``, ``depression``: non-negative magnitudes ``[G, O, K]``; ``state``: the carried state."""

    potentiation: Tensor
    depression: Tensor
    state: ClopathState


def _check_parameters(parameters: object) -> ClopathParameters:
    if not isinstance(parameters, ClopathParameters):
        raise TypeError(f"parameters: expected ClopathParameters, got {type(parameters).__name__}")
    return parameters


def clopath_initial_state(
    batch_size: int,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    parameters: ClopathParameters,
    *,
    dt: float = 1.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> ClopathState:
    """The state of a rested neuron: ``x_bar = 0``, filters (and their delayed values) at
    ``v_rest``, no depolarisation."""
    parameters = _check_parameters(parameters)
    delay = parameters.delay_steps(dt)
    dtype = dtype or torch.get_default_dtype()
    post_shape = (batch_size, *out_shape)

    def rested(shape: tuple[int, ...]) -> Tensor:
        return torch.full(shape, parameters.v_rest, dtype=dtype, device=device)

    return ClopathState(
        torch.zeros((batch_size, *in_shape), dtype=dtype, device=device),
        rested(post_shape),
        rested(post_shape),
        rested((delay, *post_shape)),
        rested((delay, *post_shape)),
        torch.zeros(post_shape, dtype=dtype, device=device),
    )


def voltage_with_spikes(voltage: Tensor, spikes: Tensor, spike_voltage: float) -> Tensor:
    """``voltage`` with ``spike_voltage`` at the steps where ``spikes`` fired (a new tensor).

    For neurons whose recorded voltage loses the spike in the reset (LIF,
    IF: ``voltage_sequence`` is ``V_reset`` at a spike): the rule then sees a
    spike's depolarisation for one step, as the AdEx's plateau gives it.
    """
    voltage = check_tensor(voltage, "voltage", floating=True)
    fired = check_spikes(spikes, "spikes", shape=voltage.shape, device=voltage.device)
    return torch.where(fired, torch.as_tensor(spike_voltage, dtype=voltage.dtype, device=voltage.device), voltage)


def _check_state(state: object, batch: int, layout: SynapseLayout, delay: int, like: Tensor) -> ClopathState:
    if not isinstance(state, ClopathState):
        raise TypeError(f"state: expected a ClopathState or None, got {type(state).__name__}")
    post_shape = (batch, *layout.out_shape)
    shapes = (
        (batch, *layout.in_shape),
        post_shape,
        post_shape,
        (delay, *post_shape),
        (delay, *post_shape),
        post_shape,
    )
    return ClopathState(
        *(
            check_state_tensor(value, f"state.{name}", shape, like)
            for value, name, shape in zip(state, ClopathState._fields, shapes, strict=True)
        )
    )


def low_pass(
    values: Tensor, initial: Tensor, tau: float, *, dt: float = 1.0, exact: bool = True
) -> tuple[Tensor, Tensor]:
    """The rule's filter ``y_t = a y_{t-1} + (1 - a) v_t`` (``a = exp(-dt/tau)``, or ``1 - dt/tau``
    when not ``exact``) of a window ``values`` ``[T, *shape]`` from ``initial`` ``[*shape]``;
    returns every step's value and the last (a window equals its steps bit for bit)."""
    decay = decay_factor(dt, tau, exact=exact)
    return trace_cumulative_window(values, decay, 1.0 - decay, initial)


def _delayed(filtered: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
    """``filtered[t - d]`` for every step of the window (the first ``d`` from ``history``), and the new history."""
    delay = history.shape[0]
    if delay == 0:
        return filtered, history
    joined = torch.cat((history, filtered))
    steps = filtered.shape[0]
    return joined[:steps], joined[steps:].clone()


def clopath_window(
    spikes_pre: Tensor,
    voltage_post: Tensor,
    state: ClopathState | None = None,
    parameters: ClopathParameters | None = None,
    *,
    dt: float = 1.0,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
) -> ClopathUpdate:
    """The voltage-based rule over a window (module docstring).

    Args:
        spikes_pre: ``[T, B, *in_shape]`` presynaptic spikes (bool or {0, 1}).
        voltage_post: ``[T, B, *out_shape]`` postsynaptic membrane potential ``u_t`` (mV, finite).
        state: carried from the previous window (None: :func:`clopath_initial_state`).
        parameters: :class:`ClopathParameters` (None: the paper's visual-cortex defaults).
        dt: step (ms, > 0).
        view: ``None`` (dense), a :class:`~plastic.functional.receptive.ConvGeometry` or a connection.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.
        weight, f_post, f_pre: weight dependences scaling the potentiation
            (``f_post(w)``) and the depression (``f_pre(w)``); ``weight`` is needed with them.

    Returns:
        :class:`ClopathUpdate`; the weight change is ``potentiation - depression``.
        Everything is checked before any computation (errors name the argument).
    """
    pre = check_spikes(spikes_pre, "spikes_pre", min_ndim=3)
    voltage = check_tensor(voltage_post, "voltage_post", min_ndim=3, floating=True, finite=True)
    if voltage.shape[:2] != pre.shape[:2]:
        raise ValueError(
            f"voltage_post: expected the time and batch sizes of spikes_pre {tuple(pre.shape[:2])}, "
            f"got {tuple(voltage.shape[:2])}"
        )
    if voltage.device != pre.device:
        raise ValueError(f"voltage_post: expected a tensor on {pre.device}, got {voltage.device}")
    parameters = ClopathParameters() if parameters is None else _check_parameters(parameters)
    dt = check_positive(dt, "dt")
    parameters.check_step(dt)
    delay = parameters.delay_steps(dt)
    batch_reduction = check_batch_reduction(batch_reduction)
    layout = SynapseLayout.infer(pre.shape[2:], voltage.shape[2:], view, post_name="voltage_post", device=pre.device)
    layout.check_weight(weight, pre.device)
    batch = pre.shape[1]
    if state is None:
        state = clopath_initial_state(
            batch, layout.in_shape, layout.out_shape, parameters, dt=dt, dtype=voltage.dtype, device=voltage.device
        )
    else:
        state = _check_state(state, batch, layout, delay, voltage)
    factor_post, factor_pre = layout.factors(f_post, f_pre, weight)
    p = parameters

    u_minus, last_minus = low_pass(voltage, state.u_minus, p.tau_minus, dt=dt, exact=p.exact)
    u_plus, last_plus = low_pass(voltage, state.u_plus, p.tau_plus, dt=dt, exact=p.exact)
    trace_pre, last_trace = trace_cumulative_window(
        pre, decay_factor(dt, p.tau_x, exact=p.exact), 1.0 / p.tau_x, state.trace_pre
    )
    u_minus_read, history_minus = _delayed(u_minus, state.u_minus_delayed)
    u_plus_read, history_plus = _delayed(u_plus, state.u_plus_delayed)
    if p.homeostasis:
        depolarisation, last_depolarisation = low_pass(
            voltage - p.v_rest, state.depolarisation, p.tau_homeostasis, dt=dt, exact=p.exact
        )
        amplitude_ltd: Tensor | float = depolarisation.square() * (p.a_ltd / p.u_ref_squared)
    else:
        last_depolarisation = state.depolarisation
        amplitude_ltd = p.a_ltd
    post_depression = (u_minus_read - p.theta_minus).clamp_min(0.0) * amplitude_ltd
    post_potentiation = (voltage - p.theta_plus).clamp_min(0.0) * (u_plus_read - p.theta_minus).clamp_min(0.0)
    post_potentiation = post_potentiation * (p.a_ltp * dt)
    potentiation = layout.bilinear(post_potentiation, trace_pre, batch_reduction, factor_post)
    depression = layout.bilinear(post_depression, spike_values(pre, voltage.dtype), batch_reduction, factor_pre)
    carried = ClopathState(last_trace, last_minus, last_plus, history_minus, history_plus, last_depolarisation)
    return ClopathUpdate(potentiation, depression, carried)


def clopath_step(
    spike_pre: Tensor,
    voltage_post: Tensor,
    state: ClopathState | None = None,
    parameters: ClopathParameters | None = None,
    *,
    dt: float = 1.0,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
) -> ClopathUpdate:
    """One step: :func:`clopath_window` on ``spike_pre`` ``[B, *in_shape]`` and
    ``voltage_post`` ``[B, *out_shape]`` as a window of one step (same keywords)."""
    pre = check_spikes(spike_pre, "spike_pre", min_ndim=2)
    voltage = check_tensor(voltage_post, "voltage_post", min_ndim=2, floating=True)
    return clopath_window(
        pre.unsqueeze(0), voltage.unsqueeze(0), state, parameters,
        dt=dt, view=view, batch_reduction=batch_reduction, weight=weight, f_post=f_post, f_pre=f_pre,
    )  # fmt: skip
