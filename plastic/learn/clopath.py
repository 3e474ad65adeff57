"""Voltage-based STDP (Clopath et al. 2010) on cells: dense and convolutional, window by window.

The rule of :mod:`plastic.functional.clopath`::

    at a presynaptic spike:  w -= A_LTD [u_minus(t - d) - theta_minus]_+
    every step:              w += A_LTP dt x_bar [u - theta_plus]_+ [u_plus(t - d) - theta_minus]_+

``u`` is the postsynaptic membrane potential: the trainer records the
presynaptic spikes (``connection.synspike``) and the neuron's
``voltage_sequence`` through monitors from the pool, so the neuron must be
built with ``store_voltage_sequence=True``. The paper's neuron is
:class:`~plastic.neural.adex.AdEx`, whose voltage holds the spike (a 2 ms
plateau) and the after-depolarisation. A neuron whose voltage loses the
spike in its reset (LIF, IF) can be used with ``spike_voltage``: the
trainer also records the postsynaptic spikes and puts that voltage back at
each spike step (:func:`~plastic.functional.clopath.voltage_with_spikes`);
without it the rule works on whatever voltage is recorded (then ``u``
rarely exceeds ``theta_plus`` and there is little potentiation). Brian2's LIF
adaptation of the rule bumps the filters by a constant at each postsynaptic
spike instead; NEST's ``clopath_synapse`` needs its ``aeif_psc_delta_clopath``
or ``hh_psc_alpha_clopath`` neurons.

The filters ``u_minus``, ``u_plus``, their last ``d`` values, the trace
``x_bar`` and (with homeostasis) the depolarisation average are carried
between calls as buffers of the cell's state (checkpointed with the
trainer), so calling after every step equals calling once per window. The
depression and potentiation go into ``cell.updater`` as two magnitudes; the
paper bounds the weights hard (``cell.make_updater(clamp=(w_min, w_max))``).

Defaults: the paper's visual-cortex fit (``A_LTD = 14e-5``, ``A_LTP = 8e-5``,
``theta_minus = -70.6`` mV, ``theta_plus = -45.3`` mV, ``tau_minus = 10``,
``tau_plus = 7``, ``tau_x = 15`` ms), the filters read 4 ms back.

Reference: C. Clopath, L. Büsing, E. Vasilaki & W. Gerstner (2010), Nat.
Neurosci. 13:344-352.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative, positive
from plastic.functional.clopath import (
    ClopathParameters,
    ClopathState,
    clopath_initial_state,
    clopath_window,
    voltage_with_spikes,
)
from plastic.functional.receptive import grouped_to_weight
from plastic.learn.base import Unit
from plastic.learn.bilinear import check_bilinear_cell, functional_reduction
from plastic.learn.stdp import signed_terms
from plastic.learn.window import WindowRuleParams, WindowTrainer
from plastic.neural.cell import Cell
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import WindowReducer

__all__ = ["ClopathSTDP", "ClopathSTDPParams"]


@attrs.frozen
class ClopathSTDPParams(WindowRuleParams):
    """Hyperparameters of :class:`ClopathSTDP` (mV and ms; see :class:`~plastic.functional.clopath.ClopathParameters`).

    a_ltd: depression per presynaptic spike and mV of ``[u_minus - theta_minus]_+`` (>= 0).
    a_ltp: potentiation per mV^2 and ms of ``x_bar`` (>= 0).
    theta_minus, theta_plus: the voltage thresholds (mV).
    tau_minus, tau_plus, tau_x: the filters of ``u`` and the presynaptic trace (ms).
    filter_delay: how far back the filters are read (ms, a multiple of ``dt``; 0: the printed equations).
    v_rest: the filters' value before the first step, the zero of the depolarisation (mV).
    homeostasis, tau_homeostasis, u_ref_squared: ``A_LTD`` scaled by ``u_bar_bar^2 / u_ref^2``.
    spike_voltage: None, or the voltage (mV) put at each postsynaptic spike step (for LIF/IF neurons).
    pairing: ``"all"`` only. exact, weight_dependence_post (scales the potentiation),
    weight_dependence_pre (scales the depression), batch_reduction, window: as every window rule.
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
    spike_voltage: float | None = attrs.field(default=None, validator=attrs.validators.optional(finite))

    def __attrs_post_init__(self) -> None:
        if self.pairing != "all":
            raise ValueError(
                f"pairing: ClopathSTDP has one presynaptic trace, all-to-all ('all'), got {self.pairing!r}"
            )

    def rule(self) -> ClopathParameters:
        """The functional :class:`~plastic.functional.clopath.ClopathParameters`."""
        return ClopathParameters(
            a_ltd=self.a_ltd, a_ltp=self.a_ltp, theta_minus=self.theta_minus, theta_plus=self.theta_plus,
            tau_minus=self.tau_minus, tau_plus=self.tau_plus, tau_x=self.tau_x, filter_delay=self.filter_delay,
            v_rest=self.v_rest, homeostasis=self.homeostasis, tau_homeostasis=self.tau_homeostasis,
            u_ref_squared=self.u_ref_squared, exact=self.exact,
        )  # fmt: skip


#: the carried buffers, in the order of :class:`~plastic.functional.clopath.ClopathState`
CARRIED = tuple(f"clopath_{name}" for name in ClopathState._fields)


class ClopathSTDP(WindowTrainer):
    """Voltage-based STDP of Clopath et al. (2010) on cells (see the module docstring).

    Example::

        cell = Cell(LinearDense(100, 10, weight_init=(0.0, 1.0)),
                    AdEx(10, store_voltage_sequence=True))
        cell.make_updater(clamp=(0.0, 1.0))
        trainer = ClopathSTDP()            # visual-cortex defaults
        trainer.register_cell("v1", cell, homeostasis=True)
        cell.step_mode = "window"
        with torch.no_grad():                   # plasticity only: no autograd graph
            cell(spikes, current)               # [T, B, 100] spikes, [T, B, 10] pA
            trainer()                           # the window's update into cell.updater
            trainer.update()
    """

    Params = ClopathSTDPParams
    recorded: ClassVar[dict[str, str]] = {"pre": "connection.synspike", "voltage": "neuron.voltage_sequence"}
    carried_names = CARRIED

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)
        if getattr(cell.neuron, "store_voltage_sequence", False) is not True:
            raise ValueError(
                f"cell: ClopathSTDP records the membrane potential (neuron.voltage_sequence); the neuron of "
                f"{name!r} ({type(cell.neuron).__name__}) does not keep it: build it with store_voltage_sequence=True"
            )
        params.rule().check_step(cell.dt)  # a filter_delay that is no multiple of dt fails here, not later

    def make_monitors(self, cell: Cell, params: Any) -> dict[str, Monitor]:
        monitors = super().make_monitors(cell, params)
        if params.spike_voltage is not None:
            steps, dt = params.window, cell.dt
            monitors["post"] = self.pool.get_or_create(
                cell, "neuron.spike", lambda: WindowReducer(steps, dt=dt), hook="post", train_only="train"
            )
        return monitors

    def _carried_state(self, unit: Unit, pre: Tensor, voltage: Tensor, rule: ClopathParameters) -> ClopathState:
        """The carried state for this window's layout (a rested one when new or resized)."""
        fresh = clopath_initial_state(
            pre.shape[1], tuple(pre.shape[2:]), tuple(voltage.shape[2:]), rule,
            dt=unit.cell.dt, dtype=voltage.dtype, device=voltage.device,
        )  # fmt: skip
        values = []
        for name, initial in zip(CARRIED, fresh, strict=True):
            buffer = getattr(unit.state, name, None)
            if not isinstance(buffer, Tensor) or buffer.shape != initial.shape or buffer.dtype != initial.dtype:
                unit.state.register_buffer(name, initial)
                buffer = initial
            values.append(buffer.to(voltage.device))
        return ClopathState(*values)

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: ClopathSTDPParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        spikes_pre = windows["pre"]
        voltage = windows["voltage"].to(weight.dtype)
        if params.spike_voltage is not None:
            voltage = voltage_with_spikes(voltage, windows["post"], params.spike_voltage)
        rule = params.rule()
        state = self._carried_state(unit, spikes_pre, voltage, rule)
        dependence = params.weight_dependence_post is not None or params.weight_dependence_pre is not None
        result = clopath_window(
            spikes_pre, voltage, state, rule,
            dt=unit.cell.dt, view=connection, batch_reduction=functional_reduction(params.batch_reduction),
            weight=weight if dependence else None,
            f_post=params.weight_dependence_post, f_pre=params.weight_dependence_pre,
        )  # fmt: skip
        # a weight dependence may be negative outside its range: sort signs out
        potentiation, depression = signed_terms(
            grouped_to_weight(result.potentiation, weight.shape), -grouped_to_weight(result.depression, weight.shape)
        )
        # the updater first: a refused change leaves the carried state as it was
        unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)
        self.store_carried(unit.state, result.state)
