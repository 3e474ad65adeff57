"""Reward-modulated STDP (Florian 2007) on cells: MSTDP and MSTDP-ET, window by window.

Traces ``x_pre`` (``tau_plus``, jump ``a_plus``) and ``x_post`` (``tau_minus``,
jump ``a_minus``), cumulative or nearest, including the current step's spike.
Per-sample eligibility of synapse ``post i <- pre j``::

    z_{b,t} = f_post(w) * s_post_{b,t,i} * x_pre_{b,t,j} - f_pre(w) * x_post_{b,t,i} * s_pre_{b,t,j}

MSTDP, the reward at ``t`` acting on the eligibility up to ``t - 1``::

    dw_t = eta * sum_b r_{b,t} * z_{b,t-1}

MSTDP-ET, with the eligibility trace ``e`` (``c = exp(-dt/tau_e)``)::

    e_{b,t} = c * e_{b,t-1} + z_{b,t-1} / tau_e,      dw_t = eta * sum_b r_{b,t} * e_{b,t}

``trainer(reward)`` consumes the steps the cell ran since the previous call;
``reward`` is a scalar, ``[B]`` (per sample), ``[T]`` (per step) or ``[T, B]``
over those ``T`` steps (``[T, 1]``/``[1, B]`` where ``T == B`` would be
ambiguous). The traces and the last eligibility ``z`` (MSTDP) or eligibility
trace ``e`` (MSTDP-ET), ``[B, G, O, K]`` per cell, are carried, so calling
after every step with that step's reward equals one call over the window with
the rewards stacked. The signed change goes to ``cell.updater`` (positive part
as potentiation, negative part as depression).

The math is :mod:`plastic.functional.reward` (one product over ``T*B*P`` per
term, the reward folded into the postsynaptic factor).

Reference: R. V. Florian (2007), "Reinforcement learning through modulation of
spike-timing-dependent synaptic plasticity", Neural Computation
19(6):1468-1502. Defaults: ``tau_plus = tau_minus = 20`` ms,
``a_plus = a_minus = 1``, ``tau_e = 25`` ms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, positive
from plastic.functional.reward import (
    MSTDPETState,
    MSTDPState,
    RewardSTDPParameters,
    broadcast_reward,
    mstdp_et_window,
    mstdp_window,
)
from plastic.learn.base import Unit
from plastic.learn.bilinear import check_bilinear_cell, functional_reduction
from plastic.learn.stdp import signed_terms
from plastic.learn.window import WindowRuleParams, WindowTrainer
from plastic.neural.cell import Cell
from plastic.neural.connections import Connection

__all__ = ["MSTDP", "MSTDPET", "MSTDPETParams", "MSTDPParams", "RewardWindowTrainer"]


@attrs.frozen
class MSTDPParams(WindowRuleParams):
    """Hyperparameters of :class:`MSTDP` (times in the unit of ``dt``, ms).

    tau_plus, tau_minus: presynaptic and postsynaptic trace time constants.
    a_plus, a_minus: trace jumps at a pre / post spike (Florian's ``A+``, ``-A-``), >= 0.
    learning_rate: ``eta`` (Florian's ``gamma``), weight units per reward unit, >= 0.
    pairing: ``"all"`` (cumulative traces, all-to-all) or ``"nearest"``.
    exact: decay ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    weight_dependence_post, weight_dependence_pre: ``f_post(w)``, ``f_pre(w)`` (None: 1).
    batch_reduction: ``"sum"`` (default), ``"mean"``, ``"amax"``, ... or a callable on dim 0.
    window: most steps the cell may run between two calls.
    """

    tau_plus: float = attrs.field(default=20.0, validator=positive)
    tau_minus: float = attrs.field(default=20.0, validator=positive)
    a_plus: float = attrs.field(default=1.0, validator=non_negative)
    a_minus: float = attrs.field(default=1.0, validator=non_negative)
    learning_rate: float = attrs.field(default=1.0, validator=non_negative)

    def rule(self) -> RewardSTDPParameters:
        """The functional :class:`~plastic.functional.reward.RewardSTDPParameters`."""
        return RewardSTDPParameters(
            tau_plus=self.tau_plus, tau_minus=self.tau_minus, a_plus=self.a_plus, a_minus=self.a_minus,
            learning_rate=self.learning_rate, tau_eligibility=getattr(self, "tau_eligibility", 25.0),
            pairing=self.pairing, exact_decay=self.exact,
        )  # fmt: skip


@attrs.frozen
class MSTDPETParams(MSTDPParams):
    """Hyperparameters of :class:`MSTDPET`: those of :class:`MSTDPParams` and
    tau_eligibility: ``tau_e``, the eligibility trace's time constant (ms)."""

    tau_eligibility: float = attrs.field(default=25.0, validator=positive)


class RewardWindowTrainer(WindowTrainer):
    """A window trainer called with a reward: ``trainer(reward)`` (MSTDP, MSTDP-ET, R-max).

    Subclasses implement ``learn_window(unit, windows, reward)``.
    """

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)

    @staticmethod
    def grouped_like(spikes_pre: Tensor, connection: Connection) -> Tensor:
        """A shape donor for :meth:`carried`: a per-sample ``[B, G, O, K]`` buffer of the weight
        (expanded zeros, ``[1, B, G, O, K]``: no memory)."""
        return spikes_pre.new_zeros(()).expand(1, spikes_pre.shape[1], *connection.weight_grouped().shape)

    def forward(self, reward: float | Tensor) -> None:
        """Learn from the steps since the last call with ``reward`` over them.

        ``reward``: a number, or a tensor ``[]``, ``[B]``, ``[T]``, ``[T, B]``
        (``T``: steps since the last call). It is checked against every
        registered cell before any state changes.
        """
        # cells that ran no step since their monitors were attached are skipped (as in the base)
        units = self.recorded_units()
        for unit in units:
            windows = self.new_steps(unit)
            steps, batch = windows["post"].shape[:2]
            if steps:
                broadcast_reward(
                    reward, steps, batch, dtype=unit.cell.connection.weight.dtype, device=windows["post"].device
                )
        self.warn_stepped_with_grad(units)
        for unit in units:
            self.learn(unit, reward)


class _RewardTrainer(RewardWindowTrainer):
    """Shared machinery of :class:`MSTDP` and :class:`MSTDPET` (``carried_names``: the state's fields)."""

    window_function: ClassVar[Callable[..., Any]]
    state_type: ClassVar[type]

    def learn_window(self, unit: Unit, windows: dict[str, Tensor], reward: float | Tensor) -> None:
        params: MSTDPParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        dtype = weight.dtype
        donors = (spikes_pre, spikes_post, self.grouped_like(spikes_pre, connection))  # the buffers' shapes
        carried = zip(self.carried_names, donors, strict=True)
        state = self.state_type(*(self.carried(unit.state, name, like, dtype) for name, like in carried))
        result = type(self).window_function(
            spikes_pre, spikes_post, reward, state, params.rule(),
            dt=unit.cell.dt, view=connection, weight=weight,
            f_post=params.weight_dependence_post, f_pre=params.weight_dependence_pre,
            batch_reduction=functional_reduction(params.batch_reduction),
        )  # fmt: skip
        self.store_carried(unit.state, result.state)
        potentiation, depression = signed_terms(result.update)
        unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)


class MSTDP(_RewardTrainer):
    """MSTDP (Florian 2007): ``dw_t = eta * sum_b r_{b,t} z_{b,t-1}`` (module docstring).

    Example::

        trainer = MSTDP(learning_rate=1e-3, tau_plus=20.0, tau_minus=20.0)
        trainer.register_cell("out", cell)
        with torch.no_grad():            # plasticity only: no autograd graph
            for t in range(steps):
                cell(spikes[t])
                trainer(reward[t])       # scalar or [B]: the reward of this step
            trainer.update()
    """

    Params = MSTDPParams
    carried_names = MSTDPState._fields
    window_function = staticmethod(mstdp_window)
    state_type = MSTDPState


class MSTDPET(_RewardTrainer):
    """MSTDP-ET (Florian 2007): eligibility trace ``e``, ``dw_t = eta * sum_b r_{b,t} e_{b,t}``.

    As :class:`MSTDP`, with ``tau_eligibility`` (``tau_e``, ms).
    """

    Params = MSTDPETParams
    carried_names = MSTDPETState._fields
    window_function = staticmethod(mstdp_et_window)
    state_type = MSTDPETState
