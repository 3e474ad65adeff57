"""Integer (fixed-point) STDP on cells, reproducible with a ``torch.Generator``.

Integer traces decay by multiply-and-shift, ``x <- (d * x) >> shift``, and are
set to ``trace_scale`` at a spike (the current step's spike included).
Depression at pre spikes ``round_s(nu_pre * x_post)``, potentiation at post
spikes ``round_s(nu_post * x_pre)``, with the stochastic rounding
``round_s(v) = (v >> k) + [U < (v mod 2^k) / 2^k]`` (``k = rounding_shift``,
``U`` drawn from the trainer's ``generator``), summed over the batch and (conv)
output positions: :func:`plastic.functional.integer.integer_stdp_window`.

Each call of the trainer consumes the steps since its last call and adds the
integer potentiation and depression to ``cell.updater``; the integer traces
``[B, *shape]`` (int64) are carried. :meth:`IntegerSTDP.update` then, for each
cell:

1. applies the updater: ``w <- w + potentiation - depression``;
2. halves the rows (``floor(w / 2)``) of the postsynaptic neurons whose
   threshold exceeds ``max_threshold`` (a conv output channel is halved when
   any of its positions exceeds it);
3. clamps to ``[w_min, w_max]``.

Call ``trainer.update()`` rather than ``cell.updater.apply()``: steps 2 and 3
are the trainer's. The updater must add the change as it is (``bounding``
none, ``reduction="sum"``, no clamp or normalisation on the weight; the
trainer refuses other updaters).

The threshold (``threshold`` hyperparameter): ``None`` reads the neuron at
update time, ``v_threshold + theta`` for an adaptive neuron (``theta``
``[*out_shape]``) and ``v_threshold`` otherwise; a tensor ``[N_out]`` (one
value per weight row) or ``[*out_shape]`` is used as given (kept as a buffer
of the cell's state). ``max_threshold=None`` never halves.

Weights: the connection's weight is a floating tensor holding integers (as
the connections create it; float64 is exact up to ``2^53``, float32 up to
``2^24``) or an integer tensor the user put there (a non-trainable
``nn.Parameter``; the updater rounds its change). Either way the weights stay
integral.

Reproducibility: the draws come from the ``generator`` given to the trainer
(on the weight's device), in a fixed order per call and cell (registration
order; per call, the depression values first, then potentiation). The same
seed, spikes and call pattern give bit-identical weights; a different call
pattern (per step instead of per window) draws the same numbers in a
different arrangement, so only ``rounding_shift=0`` makes it pattern-free.

References: M. Davies et al. (2018), "Loihi: a neuromorphic manycore processor
with on-chip learning", IEEE Micro 38(1):82-99; S. Gupta et al. (2015), "Deep
learning with limited numerical precision", ICML (stochastic rounding).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import attrs
import torch
from torch import Tensor

from plastic.functional.bounding import Bounding
from plastic.functional.integer import IntegerSTDPParameters, IntegerTraces, integer_stdp_window
from plastic.learn.base import CellState, Unit, cell_updater
from plastic.learn.bilinear import check_bilinear_cell
from plastic.learn.window import WindowTrainer, check_window
from plastic.neural.cell import Cell
from plastic.observe.monitors import MonitorPool

__all__ = ["IntegerSTDP", "IntegerSTDPParams"]


class _ThresholdNeuron(Protocol):
    v_threshold: float | Tensor


def _int_field(default: int, low: int | None = None) -> Any:
    def validate(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{attribute.name}: expected an int, got {value!r}")
        if low is not None and value < low:
            raise ValueError(f"{attribute.name}: expected an int >= {low}, got {value}")

    return attrs.field(default=default, validator=validate)


def _optional_tensor(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Tensor):
        raise TypeError(f"{attribute.name}: expected None (read the neuron) or a tensor, got {type(value).__name__}")
    if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{attribute.name}: expected finite values")


@attrs.frozen
class IntegerSTDPParams:
    """Hyperparameters of :class:`IntegerSTDP` (integers unless said otherwise).

    trace_scale: trace value right after a spike (e.g. 127).
    trace_decay_pre, trace_decay_post: decay multipliers ``d < 2^trace_decay_shift``.
    trace_decay_shift: the shift of the multiply-and-shift decay.
    nu_pre, nu_post: depression and potentiation multipliers (>= 0).
    rounding_shift: ``k`` of the stochastic rounding (0 to 24); rate ``nu / 2^k`` per trace unit.
    w_min, w_max: weight bounds.
    max_threshold: float or None; rows whose threshold exceeds it are halved at each update.
    threshold: None (read ``v_threshold + theta`` from the neuron) or a tensor ``[N_out]``/``[*out_shape]``.
    window: most steps the cell may run between two calls.
    """

    trace_scale: int = _int_field(127, 0)
    trace_decay_pre: int = _int_field(240, 0)
    trace_decay_post: int = _int_field(240, 0)
    trace_decay_shift: int = _int_field(8, 0)
    nu_pre: int = _int_field(1, 0)
    nu_post: int = _int_field(1, 0)
    rounding_shift: int = _int_field(4, 0)
    w_min: int = _int_field(0)
    w_max: int = _int_field(255)
    max_threshold: float | None = attrs.field(default=None)
    threshold: Tensor | None = attrs.field(default=None, validator=_optional_tensor, eq=False)
    window: int = attrs.field(default=1000, validator=check_window)

    def __attrs_post_init__(self) -> None:
        self.rule()  # the functional parameters check ranges and relations

    def rule(self) -> IntegerSTDPParameters:
        """The functional :class:`~plastic.functional.integer.IntegerSTDPParameters`."""
        return IntegerSTDPParameters(
            trace_scale=self.trace_scale, trace_decay_pre=self.trace_decay_pre,
            trace_decay_post=self.trace_decay_post, trace_decay_shift=self.trace_decay_shift,
            nu_pre=self.nu_pre, nu_post=self.nu_post, rounding_shift=self.rounding_shift,
            w_min=self.w_min, w_max=self.w_max, max_threshold=self.max_threshold,
        )  # fmt: skip


class IntegerSTDP(WindowTrainer):
    """Integer STDP on cells (module docstring).

    Args:
        generator: ``torch.Generator`` for the stochastic rounding (on the
            weights' device); None uses torch's global generator.
        pool: monitor pool (shared monitors between trainers).
        **defaults: :class:`IntegerSTDPParams` fields.

    Example::

        generator = torch.Generator().manual_seed(0)
        trainer = IntegerSTDP(generator=generator, nu_post=4, w_max=255, max_threshold=30.0)
        trainer.register_cell("exc", cell)     # cell.make_updater() with the defaults
        with torch.no_grad():                  # plasticity only: no autograd graph
            cell(spikes); trainer(); trainer.update()
    """

    Params = IntegerSTDPParams
    carried_names = ("trace_pre", "trace_post")

    def __init__(
        self, *, generator: torch.Generator | None = None, pool: MonitorPool | None = None, **defaults: Any
    ) -> None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
        super().__init__(pool=pool, **defaults)
        self.generator = generator

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        super().check_cell(name, cell, params)
        check_bilinear_cell(name, cell, type(self).__name__)
        updater = cell_updater(name, cell)
        bounding = updater.bounding.get("weight")
        if (
            updater.reduction != "sum"
            # the updater holds Bounding instances (it checks them at construction)
            or (isinstance(bounding, Bounding) and bounding.kind != "none")
            or "weight" in updater.clamp
            or "weight" in updater.normalize
        ):
            raise ValueError(
                f"cell: IntegerSTDP adds the integer change itself, then halves and clamps; the updater of "
                f"{name!r} must be plain (reduction='sum', no bounding, clamp or normalize on the weight)"
            )
        weight = cell.connection.weight
        if weight.is_floating_point() and not bool((weight == torch.round(weight)).all()):
            raise ValueError(f"cell: the weight of {name!r} must hold integers (e.g. weight.data.round_())")
        if params.threshold is not None:
            rows = weight.shape[0]
            shape = tuple(params.threshold.shape)
            if shape not in ((rows,), tuple(cell.connection.out_shape)):
                raise ValueError(
                    f"threshold: expected shape ({rows},) or {tuple(cell.connection.out_shape)}, got {shape}"
                )
        elif params.max_threshold is not None and not hasattr(cell.neuron, "v_threshold"):
            raise ValueError(f"cell: the neuron of {name!r} has no v_threshold; give threshold=")

    def init_state(self, state: CellState, cell: Cell) -> None:
        super().init_state(state, cell)
        if state.params.threshold is not None:
            state.register_buffer("threshold", state.params.threshold.detach().clone())

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params: IntegerSTDPParams = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight.detach()
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        traces = IntegerTraces(
            self.carried(unit.state, "trace_pre", spikes_pre, torch.int64),
            self.carried(unit.state, "trace_post", spikes_post, torch.int64),
        )
        rule = attrs.evolve(params.rule(), max_threshold=None)  # halving is done at update time
        result = integer_stdp_window(
            spikes_pre, spikes_post, weight, traces, rule,
            view=connection, generator=self.generator,
        )  # fmt: skip
        unit.state.trace_pre.copy_(result.traces.trace_pre)
        unit.state.trace_post.copy_(result.traces.trace_post)
        magnitude_dtype = weight.dtype if weight.is_floating_point() else torch.int64
        unit.updater.accumulate(
            "weight",
            potentiation=result.potentiation.to(magnitude_dtype),
            depression=result.depression.to(magnitude_dtype),
        )

    # ------------------------------------------------------------ update
    def row_threshold(self, unit: Unit) -> Tensor:
        """The threshold per weight row ``[N_out]`` (conv: the maximum over positions)."""
        state = unit.state
        neuron = unit.cell.neuron
        if "threshold" in state._buffers:
            threshold = state.threshold
        else:
            # with max_threshold and no threshold given, check_cell refused neurons without v_threshold
            v_threshold = cast(_ThresholdNeuron, neuron).v_threshold
            threshold = torch.as_tensor(float(v_threshold), device=unit.cell.connection.weight.device)
            theta = getattr(neuron, "theta", None)
            # the cell checked that the neuron's shape is its out_shape
            threshold = threshold + theta if isinstance(theta, Tensor) else threshold.expand(unit.cell.out_shape)
        rows = unit.cell.connection.weight.shape[0]
        return threshold.reshape(rows, -1).amax(1)

    def update(self) -> None:
        """Apply every updater, then halve rows over ``max_threshold`` and clamp, per cell."""
        super().update()
        for unit in self:
            params: IntegerSTDPParams = unit.state.params
            weight = unit.cell.connection.weight
            with torch.no_grad():
                if params.max_threshold is not None:
                    over = (self.row_threshold(unit) > params.max_threshold).to(weight.device)
                    over = over.reshape(-1, *([1] * (weight.ndim - 1)))
                    halved = torch.floor(weight / 2) if weight.is_floating_point() else weight >> 1
                    weight.copy_(torch.where(over, halved, weight))
                weight.clamp_(params.w_min, params.w_max)
