"""Inhibitory STDP (Vogels et al. 2011) on cells: dense and convolutional, window by window.

The rule of :mod:`plastic.functional.inhibitory`::

    at a presynaptic spike:   w += eta * (x_post - alpha),   alpha = 2 * rho_0 * tau
    at a postsynaptic spike:  w += eta * x_pre

Two traces (``tau``), carried between calls; the potentiation and the
constant depression go into ``cell.updater`` as two magnitudes, so the
updater's bounds and clamp apply as for every rule (the paper keeps
``w >= 0``: ``clamp=(0.0, None)``).

``weight_sign`` says how the connection carries inhibition: ``+1`` when the
weight is the inhibitory strength itself (a current subtracted elsewhere),
``-1`` when inhibitory weights are negative numbers in a connection that
adds its current (the usual case in one plastic cell with excitatory and
inhibitory inputs): then potentiation makes the weight more negative, and
the roles of the updater's two accumulators swap.

Defaults: the paper's ``tau = 20`` ms, ``eta = 1e-4``, ``rho_0 = 5`` Hz.

Reference: T. P. Vogels, H. Sprekeler, F. Zenke, C. Clopath and W. Gerstner
(2011), Science 334:1569-1573.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, one_of, positive
from plastic.functional.inhibitory import inhibitory_stdp_window
from plastic.functional.receptive import grouped_to_weight
from plastic.learn.base import Unit
from plastic.learn.bilinear import check_bilinear_cell, functional_reduction
from plastic.learn.window import WindowRuleParams, WindowTrainer
from plastic.neural.cell import Cell

__all__ = ["InhibitorySTDP", "InhibitorySTDPParams"]


@attrs.frozen
class InhibitorySTDPParams(WindowRuleParams):
    """Hyperparameters of :class:`InhibitorySTDP` (times in ms, the unit of ``dt``).

    eta: learning rate (weight units, >= 0).
    tau: the time constant of both traces (ms).
    target_rate: the postsynaptic target rate ``rho_0`` (Hz, >= 0).
    weight_sign: ``+1`` (the weight is the inhibitory strength) or ``-1``
        (inhibitory weights are negative; see the module docstring).
    pairing: ``"all"`` only (the rule is written with cumulative traces).
    exact, weight_dependence_post (scales the potentiation), weight_dependence_pre
    (scales the depression), batch_reduction, window: as every window rule.
    """

    eta: float = attrs.field(default=1e-4, validator=non_negative)
    tau: float = attrs.field(default=20.0, validator=positive)
    target_rate: float = attrs.field(default=5.0, validator=non_negative)
    weight_sign: int = attrs.field(default=1, validator=one_of(1, -1))

    def __attrs_post_init__(self) -> None:
        if self.pairing != "all":
            raise ValueError(f"pairing: InhibitorySTDP is defined with all-to-all traces ('all'), got {self.pairing!r}")


class InhibitorySTDP(WindowTrainer):
    """Inhibitory STDP of Vogels et al. (2011) on cells (see the module docstring).

    Example::

        trainer = InhibitorySTDP(eta=1e-3, target_rate=5.0, weight_sign=-1)
        trainer.register_cell("inhibition", cell)
        cell.step_mode = "window"
        with torch.no_grad():   # plasticity only: no autograd graph
            cell(spikes)        # [T, B, *in_shape]
            trainer()           # the window's update into cell.updater
            trainer.update()
    """

    Params = InhibitorySTDPParams
    carried_names = ("trace_pre", "trace_post")

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: InhibitorySTDPParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        trace_pre = self.carried(unit.state, "trace_pre", spikes_pre, weight.dtype)
        trace_post = self.carried(unit.state, "trace_post", spikes_post, weight.dtype)
        result = inhibitory_stdp_window(
            spikes_pre, spikes_post, trace_pre, trace_post,
            eta=params.eta, tau=params.tau, target_rate=params.target_rate, dt=unit.cell.dt, exact=params.exact,
            view=connection, batch_reduction=functional_reduction(params.batch_reduction),
        )  # fmt: skip
        potentiation = grouped_to_weight(result.potentiation, weight.shape)
        depression = grouped_to_weight(result.depression, weight.shape)
        if params.weight_dependence_post is not None:
            potentiation = potentiation * params.weight_dependence_post(weight)
        if params.weight_dependence_pre is not None:
            depression = depression * params.weight_dependence_pre(weight)
        if params.weight_sign < 0:
            # stronger inhibition is a more negative weight
            potentiation, depression = depression, potentiation
        # the updater first: a refused change leaves the carried traces as they were
        unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)
        getattr(unit.state, "trace_pre").copy_(result.trace_pre)  # noqa: B009 (nn.Module buffers type as Tensor | Module)
        getattr(unit.state, "trace_post").copy_(result.trace_post)  # noqa: B009
