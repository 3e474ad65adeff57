"""Time since the most recent event, per element."""

from __future__ import annotations

import math
from collections.abc import Hashable

import torch
from torch import Tensor

from plastic.functional.validation import (
    check_choice,
    check_non_negative,
    check_spikes,
    check_tensor,
)
from plastic.observe.reducers.base import Criterion, Reducer, apply_criterion

EVENT_TIME_INITIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "zero": 0.0}


class EventTimeReducer(Reducer):
    """Time since the most recent event, per element.

    After step ``t``::

        e_t = dt * (t - s_t),   s_t = the last step <= t with an event

    so ``e = 0`` on the step of an event and grows by ``dt`` per step without
    one. Before any event ``e`` is ``initial`` (NaN by default: kernel STDP adds
    nothing for a neuron that never fired; ``inf`` or ``0`` on request, or
    ``-inf``: the event is still to come, after every other one, so that
    ``delta = e_pre - e_post = -inf`` takes the acausal branch of kernel STDP);
    it stays at that value until the first event.

    An event is ``criterion(value)`` (a bool tensor of the value's shape,
    applied elementwise; a window is passed whole). By default the value must
    be spikes (bool or {0, 1}) and an event is a spike. Non-finite values are
    rejected.

    Delayed reads (``duration > 0``): a history of ``ceil(duration/dt) + 1``
    steps of event times lets :meth:`view` answer what a synapse with delay
    ``d`` (time units, ``0 <= d <= duration``) sees now: the time since the
    most recent event *arrived* at it, an event at step ``s`` arriving at
    ``s*dt + d``::

        view(d)_t = t*dt - (s*dt + d),   s = the last event step with s*dt + d <= t*dt

    (``initial`` if no event has arrived). Whenever the latest event has
    already arrived, ``view(d) = peek() - d``. With ``interpolation="nearest"``
    the delay is first rounded to whole steps (halves up: the longer delay),
    ``view(d) = view(dt * round(d/dt))``. Delays within ``tolerance`` steps
    of a multiple of ``dt`` are read at that multiple, so a delay of
    ``2.9999999`` steps is not taken as "not yet arrived".

    Args:
        dt: time step (> 0).
        initial: value before any event: ``"nan"``, ``"inf"``, ``"-inf"`` or ``"zero"``.
        duration: longest delay readable with :meth:`view` (time units, >= 0).
        criterion: ``value -> bool tensor`` of events (default: spikes).
        interpolation: ``"previous"`` (exact arrival times) or ``"nearest"``.
        tolerance: snapping tolerance for delays (in steps, >= 0).

    Reference: the event-time form of kernel STDP in DESIGN.md (``delta =
    e_pre - e_post``, minus the delay in delay-adjusted rules).
    """

    steps_since: Tensor  # a buffer, reassigned at the first observation

    def __init__(
        self,
        dt: float = 1.0,
        initial: str = "nan",
        duration: float = 0.0,
        criterion: Criterion | None = None,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
    ) -> None:
        super().__init__(dt)
        self.initial = str(check_choice(initial, "initial", tuple(EVENT_TIME_INITIAL)))
        self._duration = check_non_negative(duration, "duration")
        if criterion is not None and not callable(criterion):
            raise TypeError(f"criterion: expected a callable or None, got {type(criterion).__name__}")
        self.criterion = criterion
        self.interpolation = str(check_choice(interpolation, "interpolation", ("previous", "nearest")))
        self._tolerance = check_non_negative(tolerance, "tolerance")
        # steps since the last event; NaN where none happened yet
        self.register_buffer("steps_since", torch.empty(0))

    def _config(self) -> dict[str, Hashable]:
        return {
            "initial": self.initial,
            "duration": self._duration,
            "criterion": self.criterion,
            "interpolation": self.interpolation,
            "tolerance": self._tolerance,
        }

    def _history_fill(self) -> float:
        return math.nan  # nothing happened before the run

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if self.criterion is None:
            return check_spikes(value, "value")
        check_tensor(value, "value", finite=True)
        return apply_criterion(self.criterion, value)

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        dtype = self._float_state_dtype(value, self.steps_since)
        self.steps_since = torch.full(shape, math.nan, dtype=dtype, device=value.device)
        self._make_history(shape, dtype, value.device, math.nan)

    def _update_step(self, events: Tensor) -> None:
        # NaN + 1 stays NaN: elements without any event keep "never"
        self.steps_since.add_(1).masked_fill_(events, 0)
        if self.history is not None:
            self.history.push(self.steps_since)

    def _update_window(self, events: Tensor) -> None:
        steps = events.shape[0]
        index = torch.arange(steps, device=events.device).reshape((steps,) + (1,) * (events.ndim - 1))
        # index of the latest event at or before each step of the window (-1: none yet)
        last = torch.where(events, index, torch.full_like(index, -1)).cummax(dim=0).values
        carried = self.steps_since + (index + 1).to(self.steps_since.dtype)
        per_step = torch.where(last >= 0, (index - last).to(self.steps_since.dtype), carried)
        self.steps_since.copy_(per_step[-1])
        if self.history is not None:
            self.history.push_window(per_step)

    def _reset_state(self) -> None:
        self.steps_since.fill_(math.nan)

    def _as_time(self, steps: Tensor, offset: Tensor | float = 0.0) -> Tensor:
        initial = torch.tensor(EVENT_TIME_INITIAL[self.initial], dtype=steps.dtype, device=steps.device)
        return torch.where(torch.isnan(steps), initial, steps * self._dt + offset)

    def _peek(self) -> Tensor:
        return self._as_time(self.steps_since)

    def _view(self, lags: Tensor, tolerance_steps: float) -> Tensor:
        assert self.history is not None
        if self.interpolation == "nearest":
            steps = self._read_history(lags, "nearest", tolerance_steps)
            return self._as_time(steps)
        read_lags = torch.ceil(lags)
        steps = self._read_history(read_lags, "previous", tolerance_steps)
        # the event arrived (ceil(k) - k) steps before the sample we read was taken
        offset = ((read_lags - lags) * self._dt).to(steps.dtype)
        return self._as_time(steps, offset)
