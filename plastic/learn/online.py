"""Online STDP with weight normalisation (Diehl & Cook 2015) on cells.

Pair STDP in trace form, nearest-spike traces (``trace="nearest"``, Diehl &
Cook's choice: a trace is set to 1 at a spike) or cumulative ones
(``trace="cumulative"``), including the current step's spike::

    dw = A_post * (s_post (x) x_pre) - A_pre * (x_post (x) s_pre)

(summed over steps, the batch (``batch_reduction``) and, for a convolution,
output positions). Then each postsynaptic neuron's incoming weights (a row of
a dense weight, an output channel of a conv kernel) are rescaled to
``sum_j |w_ij| = w_norm`` (78.4 for 784 inputs) and clamped to
``[w_min, w_max] = [0, 1]``:

* ``variant="nearest"``: after every update, i.e. every time the updater
  applies the accumulated change. This is done by the **cell's updater**,
  configured with ``normalize=w_norm, clamp=(w_min, w_max),
  normalize_first=True``: build it with :meth:`OnlineSTDP.make_updater`
  (``cell.make_updater(**OnlineSTDP.updater_kwargs(params))`` is the same);
  registering a cell whose updater is configured otherwise is refused.
* ``variant="full"``: the updater only clamps (``clamp=(w_min, w_max)``);
  the normalisation is done once, at the end of a run, by :meth:`OnlineSTDP.finish`
  (normalise each row, then clamp; masked synapses are kept).

The spikes are consumed window by window (:class:`~plastic.learn.window.WindowTrainer`),
so calling the trainer after every step equals calling it once per batch; the
normalisation happens when the updater applies (``trainer.update()``).

Defaults after Diehl & Cook (2015): ``A_post = 1e-2``, ``A_pre = 1e-4``,
``tau_pre = tau_post = 20`` ms, nearest traces, ``w_norm = 78.4``, weights in
``[0, 1]``.

Reference: P. U. Diehl & M. Cook (2015), "Unsupervised learning of digit
recognition using spike-timing-dependent plasticity", Front. Comput.
Neurosci. 9:99.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative, one_of, positive
from plastic.functional.bilinear import check_batch_reduction as check_functional_reduction
from plastic.functional.bounding import clamp_, normalize_rows
from plastic.functional.receptive import grouped_to_weight
from plastic.functional.stdp import stdp_window, stdp_window_net
from plastic.learn.base import Unit, cell_updater, check_batch_reduction
from plastic.learn.bilinear import check_bilinear_cell
from plastic.learn.stdp import TraceWindowArguments
from plastic.learn.window import WindowTrainer, check_window
from plastic.neural.cell import Cell
from plastic.neural.updater import Updater

__all__ = ["OnlineSTDP", "OnlineSTDPParams"]


@attrs.frozen
class OnlineSTDPParams:
    """Hyperparameters of :class:`OnlineSTDP` (times in the unit of ``dt``, ms).

    a_post: potentiation rate ``A_post`` at a post spike (weight units per trace unit), >= 0.
    a_pre: depression rate ``A_pre`` at a pre spike, >= 0.
    tau_pre, tau_post: trace time constants.
    trace: ``"nearest"`` (set to 1 at a spike) or ``"cumulative"`` (add 1).
    exact: decay ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    variant: ``"nearest"`` (normalise after every update) or ``"full"`` (at the end, :meth:`OnlineSTDP.finish`).
    w_norm: target L1 norm of each postsynaptic neuron's incoming weights (> 0).
    w_min, w_max: clamp bounds.
    batch_reduction: ``"sum"`` (default), ``"mean"`` or a callable reducing dim 0.
    window: most steps the cell may run between two calls.
    """

    a_post: float = attrs.field(default=1e-2, validator=non_negative)
    a_pre: float = attrs.field(default=1e-4, validator=non_negative)
    tau_pre: float = attrs.field(default=20.0, validator=positive)
    tau_post: float = attrs.field(default=20.0, validator=positive)
    trace: str = attrs.field(default="nearest", validator=one_of("nearest", "cumulative"))
    exact: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    variant: str = attrs.field(default="nearest", validator=one_of("nearest", "full"))
    w_norm: float = attrs.field(default=78.4, validator=positive)
    w_min: float = attrs.field(default=0.0, validator=finite)
    w_max: float = attrs.field(default=1.0, validator=finite)
    batch_reduction: str | Callable[[Tensor], Tensor] = attrs.field(default="sum", validator=check_batch_reduction)
    window: int = attrs.field(default=1000, validator=check_window)

    def __attrs_post_init__(self) -> None:
        if self.w_min > self.w_max:
            raise ValueError(f"w_min: expected w_min <= w_max ({self.w_max}), got {self.w_min}")


class OnlineSTDP(WindowTrainer):
    """Diehl & Cook online STDP with row normalisation (module docstring).

    Example::

        trainer = OnlineSTDP(variant="nearest")
        OnlineSTDP.make_updater(cell)           # normalize=78.4, clamp=(0, 1), normalize_first=True
        trainer.register_cell("exc", cell)
        with torch.no_grad():                    # plasticity only: no autograd graph
            for batch in data:
                cell(batch)                      # window mode: [T, B, 784]
                trainer()
                trainer.update()                 # apply, normalise rows, clamp
    """

    Params = OnlineSTDPParams
    carried_names = ("trace_pre", "trace_post")

    # ------------------------------------------------------------ updater set-up
    @staticmethod
    def updater_kwargs(params: OnlineSTDPParams | None = None, **overrides: Any) -> dict[str, Any]:
        """The updater configuration a variant needs (``cell.make_updater(**...)``)."""
        params = attrs.evolve(params or OnlineSTDPParams(), **overrides)
        clamp = {"weight": (params.w_min, params.w_max)}
        if params.variant == "nearest":
            return {"normalize": {"weight": params.w_norm}, "clamp": clamp, "normalize_first": True}
        return {"clamp": clamp}

    @classmethod
    def make_updater(cls, cell: Cell, params: OnlineSTDPParams | None = None, **overrides: Any) -> Updater:
        """Build ``cell.updater`` over the weight with the configuration of the variant."""
        return cell.make_updater(params=("weight",), **cls.updater_kwargs(params, **overrides))

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)
        updater = cell_updater(name, cell)
        expected = self.updater_kwargs(params)
        normalize = updater.normalize.get("weight")
        clamp = updater.clamp.get("weight")
        wants_normalize = expected.get("normalize", {}).get("weight")
        good = (
            normalize == wants_normalize
            and clamp == (float(params.w_min), float(params.w_max))
            and (wants_normalize is None or updater.normalize_first)
        )
        if not good:
            shown = ", ".join(f"{key}={value!r}" for key, value in expected.items())
            raise ValueError(
                f"cell: the updater of {name!r} must be configured for the {params.variant!r} variant "
                f"({shown}); build it with OnlineSTDP.make_updater(cell, ...)"
            )

    # ------------------------------------------------------------ learning
    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: OnlineSTDPParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        trace_pre = self.carried(unit.state, "trace_pre", spikes_pre, weight.dtype)
        trace_post = self.carried(unit.state, "trace_post", spikes_post, weight.dtype)
        common: TraceWindowArguments = {
            "tau_pre": params.tau_pre, "tau_post": params.tau_post, "dt": unit.cell.dt, "exact": params.exact,
            # the rules take "sum", "mean" or a callable and refuse the other names with this ValueError
            "view": connection, "batch_reduction": check_functional_reduction(params.batch_reduction),
        }  # fmt: skip
        updater = unit.updater
        # the updater first: it validates what it receives, and a refused change leaves the carried
        # traces as they were
        if params.trace == "cumulative" and isinstance(params.batch_reduction, str):
            # all-to-all pairing: one product per window, one signed net change that the updater
            # splits into its accumulators (in place when they are empty)
            net = stdp_window_net(
                spikes_pre, spikes_post, trace_pre, trace_post, eta_post=params.a_post, eta_pre=params.a_pre, **common
            )
            updater.accumulate_signed("weight", grouped_to_weight(net.delta_weight, weight.shape))
            traces = net.trace_pre, net.trace_post
        else:
            pairing: Literal["all", "nearest"] = "all" if params.trace == "cumulative" else "nearest"
            result = stdp_window(spikes_pre, spikes_post, trace_pre, trace_post, pairing=pairing, **common)
            potentiation = params.a_post * grouped_to_weight(result.potentiation, weight.shape)
            depression = params.a_pre * grouped_to_weight(result.depression, weight.shape)
            updater.accumulate("weight", potentiation=potentiation, depression=depression)
            traces = result.trace_pre, result.trace_post
        unit.state.trace_pre.copy_(traces[0])
        unit.state.trace_post.copy_(traces[1])

    # ------------------------------------------------------------ normalisation
    def normalize(self, name: str | None = None) -> None:
        """Rescale each row of the weight to ``w_norm``, then clamp to ``[w_min, w_max]``.

        Every registered cell (or the one called ``name``); masked synapses
        (``connection.weight_mask``) keep their value. Works for both variants.
        """
        units = list(self) if name is None else [self.get_unit(name)]
        for unit in units:
            params: OnlineSTDPParams = unit.state.params
            weight = unit.cell.connection.weight
            mask = getattr(unit.cell.connection, "weight_mask", None)
            with torch.no_grad():
                rescaled = normalize_rows(weight.detach(), params.w_norm)
                clamp_(rescaled, params.w_min, params.w_max)
                if isinstance(mask, Tensor):
                    rescaled = torch.where(mask.to(weight.device) != 0, rescaled, weight.detach())
                weight.copy_(rescaled)

    def finish(self) -> None:
        """End of a run: apply what is pending, then (``variant="full"`` cells) normalise and clamp."""
        self.update()
        for unit in self:
            if unit.state.params.variant == "full":
                self.normalize(unit.name)
