"""Rate-based rules on cells: :class:`Oja` and :class:`BCM` (sliding threshold).

The rules of :mod:`plastic.functional.rate_rules`, bound to cells: the
trainer reads the presynaptic and postsynaptic spikes recorded since its last
call, carries the rate EMAs (and BCM's threshold) to the next call, and
writes the window's change into ``cell.updater`` (its positive part as
potentiation, its negative part as depression), so calling after every step
equals calling once per window. Dense and convolutional cells.

References: Oja (1982), J. Math. Biol. 15:267; Bienenstock, Cooper & Munro
(1982), J. Neurosci. 2:32; Intrator & Cooper (1992), Neural Networks 5:3.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, one_of, positive
from plastic.functional.rate_rules import RATE_REDUCTIONS, RateReduction, bcm_window, oja_window
from plastic.learn.base import Unit
from plastic.learn.bilinear import check_bilinear_cell
from plastic.learn.stdp import signed_terms
from plastic.learn.window import WindowTrainer, check_window
from plastic.neural.cell import Cell

__all__ = ["BCM", "BCMParams", "Oja", "OjaParams"]


@attrs.frozen
class OjaParams:
    """Hyperparameters of :class:`Oja` (times in the unit of ``dt``; rates in spikes per step).

    eta: learning rate (>= 0).
    tau_rate: time constant of the rate EMAs.
    batch_reduction: ``"sum"`` (default) or ``"mean"``.
    window: most steps the cell may run between two calls.
    """

    eta: float = attrs.field(default=1e-3, validator=non_negative)
    tau_rate: float = attrs.field(default=20.0, validator=positive)
    batch_reduction: RateReduction = attrs.field(default="sum", validator=one_of(*RATE_REDUCTIONS))
    window: int = attrs.field(default=1000, validator=check_window)


@attrs.frozen
class BCMParams(OjaParams):
    """Hyperparameters of :class:`BCM`: those of :class:`OjaParams` and

    tau_threshold: time constant of the sliding threshold (unit of ``dt``).
    rate_reference: ``y_0`` in ``theta = <y^2> / y_0`` (spikes per step, > 0).
    """

    tau_threshold: float = attrs.field(default=1000.0, validator=positive)
    rate_reference: float = attrs.field(default=1.0, validator=positive)


class _RateRule(WindowTrainer):
    carried_names: ClassVar[tuple[str, ...]] = ("rate_pre", "rate_post")

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)

    def _deliver(self, unit: Unit, delta: Tensor, carried: dict[str, Tensor]) -> None:
        potentiation, depression = signed_terms(delta)
        updater = unit.cell.updater
        if updater is None:
            raise RuntimeError(f"cell {unit.name!r} has no updater; call cell.make_updater() first")
        # the updater first: a refused change leaves the carried state as it was
        updater.accumulate("weight", potentiation=potentiation, depression=depression)
        for name, value in carried.items():
            getattr(unit.state, name).copy_(value)


class Oja(_RateRule):
    """Oja's rule on cells: ``dw = eta * (y x^T - y^2 w)`` per step, rates from spikes.

    Example::

        trainer = Oja(eta=1e-3, tau_rate=20.0)
        trainer.register_cell("layer", cell)
        with torch.no_grad():  # plasticity only: no autograd graph
            cell(spikes); trainer(); trainer.update()
    """

    Params = OjaParams

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: OjaParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        rate_pre = self.carried(unit.state, "rate_pre", windows["pre"], weight.dtype)
        rate_post = self.carried(unit.state, "rate_post", windows["post"], weight.dtype)
        result = oja_window(
            windows["pre"], windows["post"], weight, rate_pre, rate_post,
            eta=params.eta, tau_rate=params.tau_rate, dt=unit.cell.dt, view=connection,
            batch_reduction=params.batch_reduction,
        )  # fmt: skip
        self._deliver(unit, result.delta_weight, {"rate_pre": result.rate_pre, "rate_post": result.rate_post})


class BCM(_RateRule):
    """BCM with a sliding threshold on cells: ``dw = eta * x y (y - theta)``, ``theta`` tracking ``<y^2>/y_0``.

    Example::

        trainer = BCM(eta=1e-3, tau_rate=20.0, tau_threshold=1000.0)
        trainer.register_cell("layer", cell)
        with torch.no_grad():  # plasticity only: no autograd graph
            cell(spikes); trainer(); trainer.update()
    """

    Params = BCMParams
    carried_names = ("rate_pre", "rate_post", "threshold")

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: BCMParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        rate_pre = self.carried(unit.state, "rate_pre", windows["pre"], weight.dtype)
        rate_post = self.carried(unit.state, "rate_post", windows["post"], weight.dtype)
        threshold = self.carried(unit.state, "threshold", windows["post"], weight.dtype)
        result = bcm_window(
            windows["pre"], windows["post"], weight, rate_pre, rate_post, threshold,
            eta=params.eta, tau_rate=params.tau_rate, tau_threshold=params.tau_threshold,
            rate_reference=params.rate_reference, dt=unit.cell.dt, view=connection,
            batch_reduction=params.batch_reduction,
        )  # fmt: skip
        assert result.threshold is not None  # BCM always returns its threshold
        carried = {"rate_pre": result.rate_pre, "rate_post": result.rate_post, "threshold": result.threshold}
        self._deliver(unit, result.delta_weight, carried)
