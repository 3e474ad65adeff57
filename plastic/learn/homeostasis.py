"""Rate homeostasis on cells: move a parameter so that the firing rate approaches a target.

Rate estimate, an exponential moving average of each sample's postsynaptic
spikes, carried between calls (spikes per step)::

    rate_t = rate_{t-1} + alpha * (s_t - rate_{t-1}),      alpha = 1 - exp(-dt/tau_rate)

then reduced over the batch (``batch_reduction``, mean by default) and, where
the parameter is per output channel (conv weight rows and bias), over output
positions (mean). Every step ``t`` contributes the homeostatic change of
:func:`plastic.functional.homeostasis.homeostatic_change`::

    weight, bias:  dp_i += eta * (rate_target - rate_{t,i})
    threshold:     dp_i += eta * (rate_{t,i} - rate_target)

so the change of a call is the sum over the steps since the last call (and
calling after every step equals calling once per window). ``eta``
(``learning_rate``) is in parameter units per step and per (spike per step)
of rate error.

Targets (``target``):

* ``"weight"``: each postsynaptic neuron's incoming weights (its row; a conv
  output channel) get ``dp_i`` added (``weight_mode="additive"``) or are scaled,
  ``dw_ij = w_ij * dp_i`` (``"multiplicative"``, synaptic scaling, Turrigiano
  1998). Written into ``cell.updater`` (applied by ``trainer.update()``).
* ``"bias"``: the connection's bias (``[N_out]`` or ``[C_out]``), through the
  updater; build it with ``cell.make_updater(params=("weight", "bias"))``.
* ``"threshold"``: the neuron's adaptive threshold buffer (``theta`` of
  :class:`~plastic.neural.neurons.AdaptiveLIF`, ``[*out_shape]``, or the
  attribute named by ``threshold_attribute``). Neuron state is not a
  connection parameter, so the trainer writes it **directly, at the call**
  (in place, no gradient), not through the updater.

References: G. G. Turrigiano (2008), "The self-tuning neuron: synaptic scaling
of excitatory synapses", Cell 135(3):422-435; G. G. Turrigiano et al. (1998),
Nature 391:892-896; P. U. Diehl & M. Cook (2015), Front. Comput. Neurosci.
9:99 (adaptive thresholds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, one_of, positive
from plastic.functional.homeostasis import homeostatic_change, rate_ema_alpha, rate_ema_window
from plastic.learn.base import Unit, cell_updater, check_batch_reduction, reduce_batch
from plastic.learn.stdp import signed_terms
from plastic.learn.window import WindowTrainer, check_window
from plastic.neural.cell import Cell

__all__ = ["Homeostasis", "HomeostasisParams"]


@attrs.frozen
class HomeostasisParams:
    """Hyperparameters of :class:`Homeostasis`.

    target: ``"weight"``, ``"bias"`` or ``"threshold"``.
    rate_target: target rate in spikes per step (>= 0; ``Hz * dt / 1000`` for ``dt`` in ms).
    learning_rate: ``eta`` >= 0, parameter units per step per (spike per step).
    tau_rate: time constant of the rate EMA (unit of ``dt``).
    weight_mode: ``"additive"`` or ``"multiplicative"`` (``target="weight"`` only).
    threshold_attribute: the neuron buffer moved by ``target="threshold"`` (``"theta"``).
    batch_reduction: how per-sample rates combine: ``"mean"`` (default), ``"sum"``, ``"amax"``, ... or a callable.
    window: most steps the cell may run between two calls.
    """

    target: str = attrs.field(default="threshold", validator=one_of("weight", "bias", "threshold"))
    rate_target: float = attrs.field(default=0.02, validator=non_negative)
    learning_rate: float = attrs.field(default=1e-3, validator=non_negative)
    tau_rate: float = attrs.field(default=100.0, validator=positive)
    weight_mode: str = attrs.field(default="additive", validator=one_of("additive", "multiplicative"))
    threshold_attribute: str = attrs.field(default="theta", validator=attrs.validators.instance_of(str))
    batch_reduction: str | Callable[[Tensor], Tensor] = attrs.field(default="mean", validator=check_batch_reduction)
    window: int = attrs.field(default=1000, validator=check_window)


class Homeostasis(WindowTrainer):
    """Moves weight rows, bias or threshold toward a target rate (module docstring).

    Example::

        trainer = Homeostasis(target="threshold", rate_target=0.05, learning_rate=0.01)
        trainer.register_cell("exc", cell)   # cell.neuron is an AdaptiveLIF
        with torch.no_grad():                # plasticity only: no autograd graph
            cell(spikes); trainer()          # theta moved in place
    """

    Params = HomeostasisParams
    recorded: ClassVar[dict[str, str]] = {"post": "neuron.spike"}
    requires: ClassVar[tuple[str, ...]] = ()
    carried_names = ("rate",)

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        connection = cell.connection
        if params.target in ("weight", "bias"):
            value = getattr(connection, params.target, None)
            if not isinstance(value, Tensor):
                raise ValueError(f"cell: {type(connection).__name__} {name!r} has no {params.target}")
            if params.target not in cell_updater(name, cell).params:
                raise ValueError(
                    f"cell: the updater of {name!r} does not manage {params.target!r}; build it with "
                    f"cell.make_updater(params=[..., {params.target!r}])"
                )
            if value.shape[0] != connection.out_shape[0]:
                raise ValueError(
                    f"cell: the {params.target} of {name!r} has {value.shape[0]} rows, expected one per "
                    f"output channel ({connection.out_shape[0]})"
                )
        else:
            threshold = getattr(cell.neuron, params.threshold_attribute, None)
            if not isinstance(threshold, Tensor) or tuple(threshold.shape) != tuple(connection.out_shape):
                raise ValueError(
                    f"cell: threshold homeostasis moves neuron.{params.threshold_attribute} "
                    f"[*out_shape] (e.g. AdaptiveLIF's theta); the neuron of {name!r} has none"
                )

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: HomeostasisParams = unit.state.params
        cell = unit.cell
        spikes = windows["post"]
        if params.target == "threshold":
            parameter = getattr(cell.neuron, params.threshold_attribute)
        else:
            parameter = getattr(cell.connection, params.target)
        dtype = parameter.dtype if parameter.is_floating_point() else torch.get_default_dtype()
        rate = self.carried(unit.state, "rate", spikes, dtype)
        rates, last = rate_ema_window(rate, spikes, rate_ema_alpha(cell.dt, params.tau_rate))
        # one change per step, summed: [T, B, *out] -> [B, *out] -> [*out]
        steps = rates.shape[0]
        per_step_target = steps * params.rate_target
        observed = reduce_batch(rates.sum(0), params.batch_reduction)
        change = homeostatic_change(observed, per_step_target, params.learning_rate, target=params.target)
        unit.state.rate.copy_(last)
        if params.target == "threshold":
            with torch.no_grad():
                parameter.add_(change.to(parameter.dtype))
            return
        per_row = change.reshape(change.shape[0], -1).mean(1)  # conv: mean over positions
        if params.target == "bias":
            delta = per_row
        else:
            per_row = per_row.reshape(-1, *([1] * (parameter.ndim - 1)))
            if params.weight_mode == "multiplicative":
                delta = parameter.detach() * per_row
            else:
                delta = per_row.expand_as(parameter)
        potentiation, depression = signed_terms(delta.to(dtype))
        unit.updater.accumulate(params.target, potentiation=potentiation, depression=depression)
