"""Trainer base classes: cells in, potentiation and depression out.

A trainer owns the monitors that record what its rule needs and per-cell
auxiliary state. An :class:`IndependentCellTrainer` treats every registered
cell on its own: ``register_cell(name, cell, **overrides)`` returns a
:class:`Unit` (the cell, its state, its monitors); ``forward()`` turns each
unit's records into potentiation and depression written into the cell's
updater; ``update()`` applies every distinct updater once.

Hyperparameters are an attrs class per trainer (``Params``): the trainer's
defaults are given at construction, each cell may override any of them at
registration (``attrs.evolve``); unknown names are refused. Tensor-valued
keyword arguments of kernels become buffers of the cell's state, cloned and
detached from the defaults, so ``trainer.to(device)`` moves them.

Monitors come from a :class:`~plastic.observe.MonitorPool`: two trainers that
ask for the same record on the same cell share one monitor. ``train()``
attaches a trainer's monitors, ``eval()`` detaches them.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import torch
from torch import Tensor, nn

from plastic.neural.cell import Cell
from plastic.observe.monitors import Monitor, MonitorPool

if TYPE_CHECKING:
    from plastic.neural.updater import Updater

__all__ = ["BATCH_REDUCTIONS", "CellState", "GradModeWarning", "IndependentCellTrainer", "Unit", "reduce_batch"]

BATCH_REDUCTIONS = ("mean", "sum", "amax", "amin", "median")


class GradModeWarning(UserWarning):
    """A trained cell's neuron state carries an autograd graph (the cell was stepped with grad enabled).

    A :class:`~plastic.neural.cell.Cell` stepped outside ``torch.no_grad()`` records an autograd graph
    through its neuron's state (the connection's weight is a parameter requiring grad; the voltage keeps
    its graph across calls for backpropagation through time, see :mod:`plastic.neural.neurons`). A
    plasticity-only run then pays for a graph it never uses: a 784->400 ``LinearDense`` + ``LIF`` cell
    at B=1 took ~165 instead of ~32 us/step, and its memory grew by ~19 KB per step (38 MB per 2,000
    steps) until ``reset()``/``detach()``. Trainers warn once per trainer and cell. Fix: step under
    ``torch.no_grad()`` or ``cell.connection.weight.requires_grad_(False)``; when training through the
    cell by BPTT is intended, silence it with
    ``warnings.filterwarnings("ignore", category=plastic.GradModeWarning)``.
    """


# frames skipped when pointing a warning at the caller: plastic's own and torch.nn's module calls
_INTERNAL_PATHS = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
    os.path.dirname(os.path.abspath(nn.Module.__call__.__code__.co_filename)) + os.sep,
)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in the calling function) of the first frame outside
    plastic and ``torch.nn.modules``: the user's line that called the trainer."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL_PATHS):
        frame = frame.f_back
        level += 1
    return level


def check_batch_reduction(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a reduction name or a callable reducing dim 0."""
    if callable(value):
        return
    if value not in BATCH_REDUCTIONS:
        raise ValueError(
            f"{attribute.name}: expected one of {list(BATCH_REDUCTIONS)} or a callable "
            f"reducing dimension 0, got {value!r}"
        )


def carried_buffer(
    module: nn.Module, name: str, shape: tuple[int, ...], like: Tensor, dtype: torch.dtype | None = None
) -> Tensor:
    """The state carried between calls as buffer ``name`` of ``module``, on ``like``'s device.

    Shaped ``shape``, of ``dtype`` (default ``like``'s): zeros, registered in its place, when the
    buffer is missing or has another shape or dtype (a new batch size or dtype starts afresh).
    """
    buffer = module._buffers.get(name)
    dtype = like.dtype if dtype is None else dtype
    if buffer is None or tuple(buffer.shape) != shape or buffer.dtype != dtype:
        buffer = torch.zeros(shape, dtype=dtype, device=like.device)
        module.register_buffer(name, buffer)
    return buffer.to(like.device)


def adopt_buffers(module: nn.Module, state_dict: Mapping[str, Any], prefix: str) -> None:
    """Register as buffers of ``module`` the tensors of ``state_dict`` (under ``prefix``) it lacks.

    Carried buffers (traces, eligibility) are created at the first call: a fresh trainer or
    learner takes them over from a checkpoint. Called by ``_load_from_state_dict`` before
    ``nn.Module``'s own loading; submodules' keys and ``_extra_state`` are left to it.
    """
    for key, value in state_dict.items():
        if not key.startswith(prefix) or not isinstance(value, Tensor):
            continue
        name = key[len(prefix) :]
        if "." not in name and name not in module._buffers and name != "_extra_state":
            module.register_buffer(name, value.detach().clone())


def cell_updater(name: str, cell: Cell) -> Updater:
    """The updater of ``cell`` (to be registered as ``name``); ValueError when it has none."""
    updater = cell.updater
    if updater is None:
        raise ValueError(f"cell: {name!r} has no updater; call cell.make_updater() before registering it")
    return updater


def reduce_batch(values: Tensor, reduction: str | Callable[[Tensor], Tensor]) -> Tensor:
    """Reduce per-sample values ``[B, ...]`` over the batch dimension."""
    if callable(reduction):
        return reduction(values)
    if reduction == "mean":
        return values.mean(0)
    if reduction == "sum":
        return values.sum(0)
    if reduction == "amax":
        return values.amax(0)
    if reduction == "amin":
        return values.amin(0)
    if reduction == "median":
        return values.median(0).values
    raise ValueError(f"batch_reduction: expected one of {list(BATCH_REDUCTIONS)}, got {reduction!r}")


class CellState(nn.Module):
    """A trainer's auxiliary state for one cell: hyperparameters and buffers.

    ``params`` is the cell's hyperparameter instance (defaults evolved with the
    cell's overrides). Tensor-valued keyword arguments registered with
    :meth:`register_kwargs` live here as buffers.
    """

    # What the library's trainers keep here; each exists only once the trainer that uses it created it.
    #: window trainers: the steps of each recording consumed so far
    consumed: dict[str, int]
    #: carried buffers: spike traces (pair rules), the rate estimate (homeostasis), the integer threshold
    trace_pre: Tensor
    trace_post: Tensor
    rate: Tensor
    threshold: Tensor
    #: kernel rules: the kernels, their tensor arguments are buffers (see register_kwargs)
    kernel_post_function: Callable[..., Tensor]
    kernel_pre_function: Callable[..., Tensor]

    def __init__(self, params: Any) -> None:
        super().__init__()
        self.params = params
        self._kwarg_names: dict[str, dict[str, str]] = {}
        self._kwarg_values: dict[str, dict[str, Any]] = {}

    def register_kwargs(self, group: str, kwargs: Mapping[str, Any]) -> None:
        """Keep ``kwargs`` for ``group``; tensors become (cloned, detached) buffers."""
        names: dict[str, str] = {}
        plain: dict[str, Any] = {}
        for key, value in kwargs.items():
            if isinstance(value, Tensor):
                buffer = f"{group}__{key}"
                self.register_buffer(buffer, value.detach().clone())
                names[key] = buffer
            else:
                plain[key] = value
        self._kwarg_names[group] = names
        self._kwarg_values[group] = plain

    def kwargs(self, group: str) -> dict[str, Any]:
        """The keyword arguments of ``group`` with buffers in place of tensors."""
        result = dict(self._kwarg_values.get(group, {}))
        for key, buffer in self._kwarg_names.get(group, {}).items():
            result[key] = getattr(self, buffer)
        return result

    def get_extra_state(self) -> Any:
        # the steps each recording had when the trainer last consumed it
        return {"consumed": dict(getattr(self, "consumed", {}) or {})}

    def set_extra_state(self, state: Any) -> None:
        if state.get("consumed"):
            self.consumed = dict(state["consumed"])

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        adopt_buffers(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)


@attrs.frozen
class Unit:
    """A registered cell with the trainer's state and monitors for it."""

    name: str
    cell: Cell
    state: CellState
    monitors: dict[str, Monitor]

    def __iter__(self) -> Iterator[Any]:
        # ``for cell, state, monitors in trainer`` unpacks units
        return iter((self.cell, self.state, self.monitors))

    @property
    def updater(self) -> Updater:
        """The cell's updater; ValueError when ``cell.updater`` was set to None after registration."""
        updater = self.cell.updater
        if updater is None:
            raise ValueError(
                f"cell: {self.name!r} has no updater (cell.updater was set to None after registration); "
                "call cell.make_updater()"
            )
        return updater


class IndependentCellTrainer(nn.Module):
    """Base class of trainers that handle each registered cell independently.

    Subclasses set ``Params`` (an attrs class of hyperparameters), ``requires``
    (the connection parameters the rule writes), and implement
    :meth:`make_monitors` (which monitors a cell needs) and
    :meth:`learn` (turn one unit's records into updater accumulations). They
    may override :meth:`init_state` to add per-cell buffers.
    """

    Params: ClassVar[type]
    requires: ClassVar[tuple[str, ...]] = ("weight",)

    def __init__(self, *, pool: MonitorPool | None = None, **defaults: Any) -> None:
        super().__init__()
        self.defaults = self._make_params(defaults)
        self.pool = pool if pool is not None else MonitorPool()
        self._units: dict[str, Unit] = {}
        self.states = nn.ModuleDict()
        # monitors as submodules: ``trainer.to()`` and ``state_dict`` cover them
        self.monitors = nn.ModuleDict()
        self._attached: set[str] = set()
        # names of the cells already warned about (GradModeWarning, once per trainer and cell)
        self._grad_warned: set[str] = set()

    # hyperparameters -----------------------------------------------------
    def _make_params(self, values: Mapping[str, Any], base: Any | None = None) -> Any:
        known = {field.name for field in attrs.fields(self.Params)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown hyperparameter(s) {unknown}; expected some of {sorted(known)}"
            )
        if base is None:
            return self.Params(**values)
        return attrs.evolve(base, **values)

    # registration --------------------------------------------------------
    def register_cell(self, name: str, cell: Cell, **overrides: Any) -> Unit:
        """Register ``cell`` under ``name`` with per-cell hyperparameter overrides."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name: expected a non-empty string without dots, got {name!r}")
        if name in self._units:
            raise ValueError(f"name: a cell is already registered as {name!r}")
        if not isinstance(cell, Cell):
            raise TypeError(f"cell: expected a plastic Cell, got {type(cell).__name__}")
        updater = cell_updater(name, cell)
        for parameter in self.requires:
            value = getattr(cell.connection, parameter, None)
            if not isinstance(value, Tensor):
                raise ValueError(
                    f"cell: {type(self).__name__} writes connection.{parameter}, "
                    f"which {type(cell.connection).__name__} {name!r} does not have"
                )
            if parameter not in updater.params:
                raise ValueError(
                    f"cell: the updater of {name!r} does not manage {parameter!r}; "
                    f"build it with cell.make_updater(params=[..., {parameter!r}])"
                )
        params = self._make_params(overrides, self.defaults)
        self.check_cell(name, cell, params)
        state = CellState(params)
        self.init_state(state, cell)
        monitors = self.make_monitors(cell, params)
        unit = Unit(name, cell, state, monitors)
        self._units[name] = unit
        self.states[name] = state
        self.monitors[name] = nn.ModuleDict(monitors)
        self._attached.add(name)
        if not self.training:  # an evaluating trainer keeps no hooks until train()
            self._release(unit)
        return unit

    def del_cell(self, name: str) -> None:
        """Unregister a cell; its monitors are released (hooks removed when unused)."""
        unit = self.get_unit(name)
        self._release(unit)
        self._grad_warned.discard(name)
        del self._units[name]
        del self.states[name]
        del self.monitors[name]

    def get_unit(self, name: str) -> Unit:
        try:
            return self._units[name]
        except KeyError:
            raise KeyError(f"name: no cell registered as {name!r}") from None

    def __iter__(self) -> Iterator[Unit]:
        return iter(list(self._units.values()))

    def __len__(self) -> int:
        return len(self._units)

    @property
    def names(self) -> list[str]:
        return list(self._units)

    # hooks for subclasses -----------------------------------------------
    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        """Refuse cells the rule cannot train (raise ValueError naming ``cell``)."""

    def init_state(self, state: CellState, cell: Cell) -> None:
        """Add per-cell buffers to ``state``."""

    def make_monitors(self, cell: Cell, params: Any) -> dict[str, Monitor]:
        raise NotImplementedError

    def learn(self, unit: Unit, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def reset_state(self, unit: Unit) -> None:
        """Restore per-cell auxiliary state (traces carried across calls)."""

    # monitors --------------------------------------------------------------
    def _release(self, unit: Unit) -> None:
        if unit.name in self._attached:
            for monitor in unit.monitors.values():
                self.pool.release(monitor)
            self._attached.discard(unit.name)

    def _acquire(self, unit: Unit) -> None:
        if unit.name not in self._attached:
            fresh = self.make_monitors(unit.cell, unit.state.params)
            unit.monitors.clear()
            unit.monitors.update(fresh)
            self.monitors[unit.name] = nn.ModuleDict(fresh)
            self._attached.add(unit.name)
            self.reset_state(unit)

    def train(self, mode: bool = True) -> IndependentCellTrainer:
        """Training mode attaches the monitors, evaluation mode detaches them."""
        super().train(mode)
        for unit in self._units.values():
            if mode:
                self._acquire(unit)
            else:
                self._release(unit)
        return self

    def clear(self) -> None:
        """Clear every monitor and every carried per-cell state."""
        for unit in self._units.values():
            for monitor in unit.monitors.values():
                monitor.clear()
            self.reset_state(unit)

    # learning ----------------------------------------------------------------
    def active_units(self) -> list[Unit]:
        """Units to process: the trainer and the cell are both in training mode."""
        if not self.training:
            return []
        return [unit for unit in self._units.values() if unit.cell.training]

    @staticmethod
    def has_recorded(unit: Unit) -> bool:
        """Whether every monitor of ``unit`` observed at least one step since its last clear."""
        # the reducer from the submodule table (no nn.Module.__getattr__: read at every call)
        reducers = [monitor._modules["reducer"] for monitor in unit.monitors.values()]
        return all(reducer is not None and reducer.shape is not None for reducer in reducers)

    def recorded_units(self) -> list[Unit]:
        """The active units whose cell ran a step since its monitors were attached or cleared."""
        return [unit for unit in self.active_units() if self.has_recorded(unit)]

    def warn_stepped_with_grad(self, units: list[Unit]) -> None:
        """Warn (:class:`GradModeWarning`, once per trainer and cell) for each of ``units`` whose neuron
        voltage carries an autograd graph: the cell was stepped with grad enabled, which a
        plasticity-only run does not need (one attribute check per unit). :meth:`forward` calls it
        once its checks passed (a refused call does not warn)."""
        for unit in units:
            # the buffer without nn.Module.__getattr__ (a SpikingNeuron's), else any attribute (a wrapper's property)
            neuron = unit.cell._modules["neuron"]
            voltage = neuron._buffers.get("voltage") if neuron is not None else None
            if voltage is None:
                voltage = getattr(neuron, "voltage", None)
            if isinstance(voltage, Tensor) and voltage.requires_grad and unit.name not in self._grad_warned:
                self._grad_warned.add(unit.name)
                self._warn_grad_mode(unit)

    def _warn_grad_mode(self, unit: Unit) -> None:
        warnings.warn(
            f"{type(self).__name__}: cell {unit.name!r} ({type(unit.cell.neuron).__name__} neuron) was stepped "
            "with grad enabled, so each step records an autograd graph through the neuron state: several "
            "times slower, and memory grows with every step until cell.reset() or cell.neuron.detach(). "
            "For a plasticity-only run step the cell under torch.no_grad() or call "
            "cell.connection.weight.requires_grad_(False); if training through the cell (BPTT) is "
            "intended, silence this with warnings.filterwarnings('ignore', category=plastic.GradModeWarning)",
            GradModeWarning,
            stacklevel=_caller_stacklevel(),
        )

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Turn each active unit's records into accumulated updates.

        Units whose cell has not run a step since the monitors were attached
        or cleared are skipped (nothing to learn from: no accumulation, the
        updater is untouched). Extra arguments (e.g. a reward) are passed to
        :meth:`learn`. A cell stepped with grad enabled draws one
        :class:`GradModeWarning` (see :meth:`warn_stepped_with_grad`) once
        the checks passed.
        """
        units = self.recorded_units()
        # every check first: a refused call leaves every updater untouched
        for unit in units:
            self.check_unit(unit)
        self.warn_stepped_with_grad(units)
        for unit in units:
            self.learn(unit, *args, **kwargs)

    def check_unit(self, unit: Unit) -> None:
        """Raise if :meth:`learn` would fail for ``unit`` (called for all units before any learns)."""

    def update(self) -> None:
        """Apply every distinct updater once (shared updaters too), then clear them."""
        seen: set[int] = set()
        for unit in self._units.values():
            updater = unit.cell.updater
            if updater is not None and id(updater) not in seen:
                seen.add(id(updater))
                updater.apply()
