"""The reward-modulated R-max rule (Vasilaki et al. 2009) on cells of escape-noise neurons.

The cell's neurons must expose each step's firing probability as
``spike_probability`` (:class:`~plastic.neural.escape_noise.EscapeNoiseNeuron`);
monitors record the presynaptic spikes, the postsynaptic spikes and that
probability. Per sample ``b`` and synapse ``post i <- pre j``::

    x_t = a_x x_{t-1} + A s_pre_t,   q_t = p_t / (1 + (tau_c/dt) p_t)
    e_t = a_e e_{t-1} + (s_post_t - q_t) (x) x_t,   dw = eta * sum_t sum_b r_{b,t} e_{b,t}

(:mod:`plastic.functional.rmax`). ``trainer(reward)`` consumes the steps the
cell ran since the previous call; ``reward`` is a scalar, ``[B]`` (per
sample), ``[T]`` (per step) or ``[T, B]`` over them. The PSP trace and the
per-sample eligibility trace ``[B, G, O, K]`` are carried (buffers
``trace_pre`` and ``eligibility_trace`` of the cell's state), so calling
after every step with that step's reward equals one call with the rewards
stacked. The signed change goes to ``cell.updater`` (positive part as
potentiation, negative part as depression), bounded there as for any rule.

Reference: E. Vasilaki, N. Frémaux, R. Urbanczik, W. Senn & W. Gerstner
(2009), PLoS Comput. Biol. 5:e1000586; BindsNET's ``Rmax``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative_or_infinite, positive
from plastic.functional.rmax import RmaxParameters, RmaxState, rmax_window
from plastic.learn.base import Unit
from plastic.learn.bilinear import functional_reduction
from plastic.learn.reward import RewardWindowTrainer
from plastic.learn.stdp import signed_terms
from plastic.learn.window import WindowRuleParams
from plastic.neural.cell import Cell

__all__ = ["Rmax", "RmaxParams"]


@attrs.frozen
class RmaxParams(WindowRuleParams):
    """Hyperparameters of :class:`Rmax` (times in ms).

    tau_psp, amplitude_psp: the presynaptic PSP trace (the neurons' ``tau_membrane``
        and ``epsilon_0 / delta_u`` for the exact gradient).
    tau_eligibility: ``tau_e`` (inf allowed); tau_c: 0 (policy gradient) ... inf (Hebbian).
    learning_rate: ``eta``.
    exact: decays ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau`` (BindsNET's).
    batch_reduction: ``"sum"`` (default), ``"mean"``, ``"amax"``, ... or a callable on dim 0.
    window: most steps the cell may run between two calls.
    (``pairing`` and the weight dependences of the shared base are not used by R-max.)
    """

    tau_psp: float = attrs.field(default=10.0, validator=positive)
    amplitude_psp: float = attrs.field(default=1.0, validator=finite)
    tau_eligibility: float = attrs.field(default=25.0, validator=non_negative_or_infinite)
    tau_c: float = attrs.field(default=0.0, validator=non_negative_or_infinite)
    learning_rate: float = attrs.field(default=1.0, validator=finite)

    def rule(self) -> RmaxParameters:
        """The functional :class:`~plastic.functional.rmax.RmaxParameters`."""
        return RmaxParameters(
            tau_psp=self.tau_psp, amplitude_psp=self.amplitude_psp, tau_eligibility=self.tau_eligibility,
            tau_c=self.tau_c, learning_rate=self.learning_rate, exact_decay=self.exact,
        )  # fmt: skip


class Rmax(RewardWindowTrainer):
    """R-max (module docstring).

    Example::

        neuron = EscapeNoiseNeuron(10, tau_membrane=10.0, seed=0)
        cell = Cell(LinearDense(100, 10), neuron)
        cell.make_updater()
        trainer = Rmax(learning_rate=1e-3, tau_psp=10.0, tau_eligibility=500.0)
        trainer.register_cell("out", cell)
        cell.step_mode = "window"
        with torch.no_grad():                 # plasticity only: no autograd graph
            cell(spikes)                      # [T, B, 100]
            trainer(reward)                   # e.g. [T, B], or [B] for the whole window
            trainer.update()
    """

    Params = RmaxParams
    recorded: ClassVar[dict[str, str]] = {
        "pre": "connection.synspike",
        "post": "neuron.spike",
        "probability": "neuron.spike_probability",
    }
    carried_names = RmaxState._fields

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        if not hasattr(cell.neuron, "spike_probability"):
            raise ValueError(
                f"cell: Rmax needs neurons that expose each step's firing probability as spike_probability "
                f"(e.g. EscapeNoiseNeuron); {name!r} has {type(cell.neuron).__name__}"
            )

    def learn_window(self, unit: Unit, windows: dict[str, Tensor], reward: float | Tensor) -> None:
        params: RmaxParams = unit.state.params
        connection = unit.cell.connection
        dtype = connection.weight.dtype
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        state = RmaxState(
            self.carried(unit.state, "trace_pre", spikes_pre, dtype),
            self.carried(unit.state, "eligibility_trace", self.grouped_like(spikes_pre, connection), dtype),
        )
        result = rmax_window(
            spikes_pre, spikes_post, windows["probability"].to(dtype), reward, state, params.rule(),
            dt=unit.cell.dt, view=connection, batch_reduction=functional_reduction(params.batch_reduction),
        )  # fmt: skip
        potentiation, depression = signed_terms(result.update)
        # the updater first: a refused change leaves the carried state as it was
        unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)
        self.store_carried(unit.state, result.state)
