"""Triplet STDP (Pfister & Gerstner 2006) on cells: dense and convolutional, window by window.

Four traces per connection, carried between calls. Presynaptic ``r1``
(``tau_plus``) and ``r2`` (``tau_x``), postsynaptic ``o1`` (``tau_minus``) and
``o2`` (``tau_y``); each decays by ``exp(-dt/tau)`` per step and, at a spike,
is incremented by 1 (``pairing="all"``, all-to-all) or set to 1
(``pairing="nearest"``). Traces include the current step's spike::

    at a post spike:  dw_ij += f_post(w_ij) * r1_j(t) * (A2+ + A3+ * o2_i(t-))
    at a pre spike:   dw_ij -= f_pre(w_ij)  * o1_i(t) * (A2- + A3- * r2_j(t-))

``o2(t-)``, ``r2(t-)`` are the values just before the current spike. Summed over
the batch (``batch_reduction``) and, for a convolution, over output positions.
The math is :func:`plastic.functional.triplet.triplet_stdp_window` (traces by
their recurrence, then one product over ``T*B*P`` per term); this module binds
it to cells: it reads the spikes recorded since the last call, carries the four
traces, and writes potentiation and depression into ``cell.updater``.

Defaults: the paper's visual-cortex fit, all-to-all, full model
(``tau_plus=16.8, tau_minus=33.7, tau_x=101, tau_y=125`` ms,
``A2+=5e-10, A3+=6.2e-3, A2-=7e-3, A3-=2.3e-4``).

Reference: J.-P. Pfister & W. Gerstner (2006), "Triplets of spikes in a model
of spike timing-dependent plasticity", J. Neurosci. 26(38):9673-9682.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, positive
from plastic.functional.triplet import TripletParameters, TripletTraces, triplet_stdp_window
from plastic.learn.base import Unit
from plastic.learn.bilinear import check_bilinear_cell, functional_reduction
from plastic.learn.stdp import signed_terms
from plastic.learn.window import WindowRuleParams, WindowTrainer
from plastic.neural.cell import Cell

__all__ = ["TripletSTDP", "TripletSTDPParams"]


# ------------------------------------------------------------------------- trainer


@attrs.frozen
class TripletSTDPParams(WindowRuleParams):
    """Hyperparameters of :class:`TripletSTDP` (times in the unit of ``dt``, ms).

    tau_plus, tau_x: presynaptic pair (``r1``) and triplet (``r2``) traces.
    tau_minus, tau_y: postsynaptic pair (``o1``) and triplet (``o2``) traces.
    a2_plus, a3_plus: pair and triplet potentiation amplitudes (weight units, >= 0).
    a2_minus, a3_minus: pair and triplet depression amplitudes (weight units, >= 0).
    pairing: ``"all"`` (cumulative traces, all-to-all) or ``"nearest"`` (traces set to 1).
    exact: decay ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    weight_dependence_post, weight_dependence_pre: ``f_post(w)``, ``f_pre(w)`` (None: 1).
    batch_reduction: ``"sum"`` (default), ``"mean"``, ``"amax"``, ... or a callable on dim 0.
    window: most steps the cell may run between two calls.
    """

    tau_plus: float = attrs.field(default=16.8, validator=positive)
    tau_minus: float = attrs.field(default=33.7, validator=positive)
    tau_x: float = attrs.field(default=101.0, validator=positive)
    tau_y: float = attrs.field(default=125.0, validator=positive)
    a2_plus: float = attrs.field(default=5e-10, validator=non_negative)
    a3_plus: float = attrs.field(default=6.2e-3, validator=non_negative)
    a2_minus: float = attrs.field(default=7e-3, validator=non_negative)
    a3_minus: float = attrs.field(default=2.3e-4, validator=non_negative)

    def rule(self) -> TripletParameters:
        """The functional :class:`~plastic.functional.triplet.TripletParameters`."""
        return TripletParameters(
            tau_plus=self.tau_plus, tau_minus=self.tau_minus, tau_x=self.tau_x, tau_y=self.tau_y,
            a2_plus=self.a2_plus, a3_plus=self.a3_plus, a2_minus=self.a2_minus, a3_minus=self.a3_minus,
            pairing=self.pairing, exact_decay=self.exact,
        )  # fmt: skip


TRIPLET_TRACES = ("trace_pre_pair", "trace_pre_triplet", "trace_post_pair", "trace_post_triplet")


class TripletSTDP(WindowTrainer):
    """Triplet STDP on cells (see the module docstring).

    Example::

        trainer = TripletSTDP(pairing="all")     # visual-cortex defaults
        trainer.register_cell("exc", cell, a3_plus=1e-2)
        cell.step_mode = "window"
        with torch.no_grad():   # plasticity only: no autograd graph
            cell(spikes)        # [T, B, *in_shape]
            trainer()           # potentiation/depression of the window into cell.updater
            trainer.update()    # apply every updater
    """

    Params = TripletSTDPParams
    carried_names = TRIPLET_TRACES

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: TripletSTDPParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        dtype = weight.dtype
        traces = TripletTraces(
            self.carried(unit.state, "trace_pre_pair", spikes_pre, dtype),
            self.carried(unit.state, "trace_pre_triplet", spikes_pre, dtype),
            self.carried(unit.state, "trace_post_pair", spikes_post, dtype),
            self.carried(unit.state, "trace_post_triplet", spikes_post, dtype),
        )
        dependence = params.weight_dependence_post is not None or params.weight_dependence_pre is not None
        result = triplet_stdp_window(
            spikes_pre, spikes_post, traces, params.rule(),
            dt=unit.cell.dt, view=connection,
            weight=weight if dependence else None,
            f_post=params.weight_dependence_post, f_pre=params.weight_dependence_pre,
            batch_reduction=functional_reduction(params.batch_reduction),
        )  # fmt: skip
        # a weight dependence may be negative outside its range: sort signs out
        potentiation, depression = signed_terms(result.potentiation, -result.depression)
        self.store_carried(unit.state, result.traces)
        unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)
