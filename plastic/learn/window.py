"""Window trainers: rules that learn from the spike trains recorded since their last call.

Monitors with :class:`~plastic.observe.reducers.WindowReducer` keep the last
``window`` steps of presynaptic (``connection.synspike``) and postsynaptic
(``neuron.spike``) spikes. At each call the trainer takes the steps recorded
since its previous call, ``[T, B, *shape]``, runs the rule's window function
once (traces by a recurrence, the update as matrix products over ``T*B``) and
carries whatever state the rule needs (traces, eligibility) to the next call,
so that calling after every step, after every batch or once after a long run
gives the same update. Pooled monitors are never cleared by a trainer: each
trainer counts for itself what it has consumed, so two trainers can share
one recording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, cast

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import one_of, optional_callable
from plastic.functional.bilinear import PAIRINGS
from plastic.learn.base import CellState, IndependentCellTrainer, Unit, carried_buffer, check_batch_reduction
from plastic.neural.buffers import set_plain
from plastic.neural.cell import Cell
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import WindowReducer

__all__ = ["WindowRuleParams", "WindowTrainer", "check_window"]


def check_window(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator for the ``window`` capacity (steps between calls)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name}: expected an int >= 1 (steps kept between calls), got {value!r}")


def _window_reducer(monitor: Monitor) -> WindowReducer:
    # WindowTrainer.make_monitors gives every monitor a WindowReducer; read from the submodule table
    # without nn.Module.__getattr__ (several reads per unit and call)
    return cast(WindowReducer, monitor._modules["reducer"])


@attrs.frozen
class WindowRuleParams:
    """The hyperparameters every trace-window rule shares (keyword-only; subclassed by
    :class:`~plastic.learn.stdp.STDPParams`, :class:`~plastic.learn.reward.MSTDPParams`
    and :class:`~plastic.learn.triplet.TripletSTDPParams`).

    pairing: ``"all"`` (cumulative traces, all-to-all) or ``"nearest"``.
    exact: decay ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    weight_dependence_post, weight_dependence_pre: ``f_post(w)``, ``f_pre(w)`` (None: 1).
    batch_reduction: ``"sum"`` (default), ``"mean"`` or a callable on dim 0 (rules with
        per-sample values also take ``"amax"``, ``"amin"``, ``"median"``).
    window: most steps the cell may run between two calls.
    """

    pairing: str = attrs.field(default="all", validator=one_of(*PAIRINGS), kw_only=True)
    exact: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool), kw_only=True)
    weight_dependence_post: Callable[[Tensor], Tensor] | None = attrs.field(
        default=None, validator=optional_callable, kw_only=True
    )
    weight_dependence_pre: Callable[[Tensor], Tensor] | None = attrs.field(
        default=None, validator=optional_callable, kw_only=True
    )
    batch_reduction: str | Callable[[Tensor], Tensor] = attrs.field(
        default="sum", validator=check_batch_reduction, kw_only=True
    )
    window: int = attrs.field(default=1000, validator=check_window, kw_only=True)


class WindowTrainer(IndependentCellTrainer):
    """Base class of rules computed over recorded spike windows.

    Subclasses give ``recorded`` (monitor key -> target on the cell), a
    ``Params`` class with a ``window`` field, ``carried_names`` (the per-cell
    state carried between calls, as buffers of ``state``: :meth:`carried`
    creates them, :meth:`store_carried` writes them, :meth:`init_carry` drops
    them) and implement :meth:`learn_window`.
    """

    recorded: ClassVar[dict[str, str]] = {"pre": "connection.synspike", "post": "neuron.spike"}
    #: the carried buffers (traces, eligibility), in the order of the rule's state
    carried_names: ClassVar[tuple[str, ...]] = ()

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        if "pre" in self.recorded and isinstance(getattr(cell.connection, "delay", None), Tensor):
            raise ValueError(
                f"cell: {type(self).__name__} learns from presynaptic spike trains; {name!r} has "
                "per-synapse delays (use DelayAdjustedSTDP or KernelSTDP(delayed=True))"
            )

    def make_monitors(self, cell: Cell, params: Any) -> dict[str, Monitor]:
        steps, dt = params.window, cell.dt
        return {
            # only training-mode steps are recorded (an evaluating cell neither fills the window
            # nor leaves steps for the next call)
            key: self.pool.get_or_create(
                cell, target, lambda: WindowReducer(steps, dt=dt), hook="post", train_only="train"
            )
            for key, target in self.recorded.items()
        }

    def init_state(self, state: CellState, cell: Cell) -> None:
        state.consumed = dict.fromkeys(self.recorded, 0)
        self.init_carry(state, cell)

    def init_carry(self, state: CellState, cell: Cell) -> None:
        """Drop the carried buffers (``carried_names``): the next window starts from a fresh state."""
        for name in self.carried_names:
            state._buffers.pop(name, None)

    def reset_state(self, unit: Unit) -> None:
        # a plain dict attribute: object.__setattr__ skips nn.Module's table checks (the same result)
        set_plain(
            unit.state, "consumed", {key: _window_reducer(monitor).total for key, monitor in unit.monitors.items()}
        )
        self.init_carry(unit.state, unit.cell)

    def new_steps(self, unit: Unit) -> dict[str, Tensor]:
        """What each monitor recorded since this trainer's last call, ``[T, B, ...]``."""
        windows: dict[str, Tensor] = {}
        counts = {}
        for key, monitor in unit.monitors.items():
            reducer = _window_reducer(monitor)
            fresh = reducer.total - unit.state.consumed.get(key, 0)
            if fresh < 0:  # the recording was cleared since: start over from it
                fresh = reducer.total
            if fresh > reducer.steps:
                raise RuntimeError(
                    f"{type(self).__name__}: cell {unit.name!r} ran {fresh} steps since the last call, "
                    f"but the window keeps {reducer.steps}; raise `window` or call the trainer more often"
                )
            counts[key] = fresh
            windows[key] = reducer.recent(fresh)  # a view where possible: rules only read it
        if len(set(counts.values())) > 1:
            raise RuntimeError(
                f"{type(self).__name__}: the recordings of cell {unit.name!r} disagree on the steps "
                f"since the last call ({counts}); were some monitors cleared separately?"
            )
        return windows

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """As :meth:`IndependentCellTrainer.forward`; each unit's windows are read once (checked, then learnt)."""
        checked: dict[str, tuple[tuple[int, ...], dict[str, Tensor]]] = {}
        self.__dict__["_checked_windows"] = checked
        try:
            super().forward(*args, **kwargs)
        finally:
            checked.clear()

    @staticmethod
    def _totals(unit: Unit) -> tuple[int, ...]:
        return tuple(_window_reducer(monitor).total for monitor in unit.monitors.values())

    def check_unit(self, unit: Unit) -> None:
        # window overflow or disagreeing recordings, before any cell learns
        windows = self.new_steps(unit)
        checked = self.__dict__.get("_checked_windows")
        if checked is not None:
            # learn() of the same forward() reuses them while nothing was recorded since
            checked[unit.name] = (self._totals(unit), windows)

    def learn(self, unit: Unit, *args: Any, **kwargs: Any) -> None:
        cached = self.__dict__.get("_checked_windows", {}).pop(unit.name, None)
        windows = cached[1] if cached is not None and cached[0] == self._totals(unit) else self.new_steps(unit)
        steps = next(iter(windows.values())).shape[0]
        if steps:
            self.learn_window(unit, windows, *args, **kwargs)
        set_plain(
            unit.state, "consumed", {key: _window_reducer(monitor).total for key, monitor in unit.monitors.items()}
        )

    def learn_window(self, unit: Unit, windows: dict[str, Tensor], *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    # shared helpers -------------------------------------------------------
    @staticmethod
    def carried(state: CellState, name: str, like: Tensor, dtype: torch.dtype) -> Tensor:
        """The carried buffer ``name`` for a batch shaped like ``like[0]`` (zeros if new or resized)."""
        return carried_buffer(state, name, tuple(like.shape[1:]), like, dtype)

    def store_carried(self, state: CellState, values: Iterable[Tensor]) -> None:
        """Copy a rule's new carried state (in the order of ``carried_names``) into the buffers."""
        for name, value in zip(self.carried_names, values, strict=True):
            getattr(state, name).copy_(value)
