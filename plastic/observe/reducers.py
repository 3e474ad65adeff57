"""Reducers: fold a stream of observations into bounded state.

A monitor hands a reducer what it reads from a module at every forward, one
step ``[*shape]`` or one window ``[T, *shape]`` (time first) at a time; the
reducer keeps what a learning rule needs in tensors whose size is fixed by the
first observation, never by the number of calls.

=========================  =====================================================
reducer                    state after step ``t`` (``v_t`` the observation)
=========================  =====================================================
:class:`EventTimeReducer`  ``e_t = dt * (t - last event at or before t)``
:class:`PassthroughReducer` ``v_t`` (and the last ``duration`` of history)
:class:`CumulativeTraceReducer` ``x_t = a x_{t-1} + A s_t``
:class:`NearestTraceReducer` ``x_t = A`` where ``s_t``, else ``a x_{t-1}``
:class:`EMAReducer`        ``m_t = (1 - alpha) m_{t-1} + alpha v_t``
:class:`CumulativeAverageReducer` ``mean_n = mean_{n-1} + (v_n - mean_{n-1}) / n``
:class:`WindowReducer`     the last ``steps`` observations
=========================  =====================================================

``a = exp(-dt/tau)`` (``exact=False``: ``1 - dt/tau``), from
:func:`plastic.functional.traces.decay_factor`; the trace recurrences are those
of :mod:`plastic.functional.traces`, called, not rewritten.

Common behaviour:

* ``reducer(value)`` observes one step, ``reducer(value, window=True)`` a
  window; a window gives exactly the state of ``T`` single calls.
* The sample shape (batch included) is fixed by the first call; another shape
  raises ``ValueError`` naming ``value`` until :meth:`Reducer.clear`.
  State is created on the first observation's device. Float state takes the
  dtype of a floating-point observation, and otherwise (bool spikes) the
  module's float dtype (the default dtype, or what ``.to(dtype)`` set); once
  created it keeps its dtype and later observations are cast to it.
* :meth:`Reducer.peek` returns the reduced value (a copy), :meth:`Reducer.clear`
  (alias :meth:`Reducer.reset`) restores the initial state.
* State lives in buffers and :class:`~plastic.neural.history.RingBuffer`
  children: ``state_dict`` round-trips (also into a fresh reducer that has not
  seen any data), ``.to(device, dtype)`` moves it.
* Observations are detached: reducers never keep autograd graphs.
* A ``criterion`` (``value -> bool tensor`` of events) must work elementwise:
  a window is passed to it whole, ``[T, *shape]``.
* Reducers with a ``duration`` keep that much history and answer delayed reads
  with ``view(delay)`` (``delay`` in the unit of ``dt``).
* ``config_key()`` is a hashable ``(class name, parameters...)`` that
  :class:`plastic.observe.monitors.MonitorPool` uses to share monitors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor, nn

from plastic.functional.interpolation import INTERPOLATIONS, snap_lags
from plastic.functional.traces import (
    decay_factor,
    trace_cumulative_step,
    trace_cumulative_window,
    trace_nearest_step,
    trace_nearest_window,
)
from plastic.functional.validation import (
    check_choice,
    check_greater,
    check_in_range,
    check_non_negative,
    check_positive,
    check_spikes,
    check_tensor,
)
from plastic.neural.buffers import set_plain
from plastic.neural.history import RingBuffer

__all__ = [
    "CumulativeAverageReducer",
    "CumulativeTraceReducer",
    "EMAReducer",
    "EventTimeReducer",
    "NearestTraceReducer",
    "PassthroughReducer",
    "Reducer",
    "WindowReducer",
]

Criterion = Callable[[Tensor], Tensor]

EVENT_TIME_INITIAL = {"nan": math.nan, "inf": math.inf, "zero": 0.0}


def _check_finite_real(value: object, name: str) -> float:
    result = check_in_range(value, name, -math.inf, math.inf)
    if not math.isfinite(result):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    return result


def _history_capacity(duration: float, dt: float) -> int:
    # lags 0 .. ceil(duration/dt) are readable; the rounding guards against
    # 0.3 / 0.1 = 2.9999999999999996 style quotients
    return math.ceil(round(duration / dt, 9)) + 1


def _float_dtype(value: Tensor) -> torch.dtype:
    return value.dtype if value.is_floating_point() else torch.get_default_dtype()


class Reducer(nn.Module):
    """Base class: shape fixing, validation before mutation, lazy state, ``view``.

    Subclasses implement ``_prepare`` (validate and convert an observation,
    no state change), ``_allocate`` (create the state for a sample shape, on
    the device of the raw observation given to it),
    ``_update_step``/``_update_window``, ``_reset_state``, ``_peek`` and
    ``_config``.

    Args:
        dt: time step (> 0, the unit of every time constant and delay).
    """

    def __init__(self, dt: float = 1.0) -> None:
        super().__init__()
        self._dt = check_positive(dt, "dt")
        self._shape: tuple[int, ...] | None = None
        self._shape_fixed = False
        self.history: RingBuffer | None = None

    # ---------------------------------------------------------------- public
    @property
    def dt(self) -> float:
        """Time step (read-only: the history capacity depends on it)."""
        return self._dt

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Sample shape fixed by the first observation (``None`` before)."""
        return self._shape

    def config_key(self) -> tuple[Hashable, ...]:
        """``(class name, parameters...)``: equal keys mean interchangeable reducers."""
        return (type(self).__name__, self._dt, *self._config().values())

    def forward(self, value: Tensor, window: bool = False) -> None:
        """Observe one step ``[*shape]`` or, with ``window=True``, ``[T, *shape]``.

        Returns nothing (so that a monitored run does not build a copy per
        step); read the result with :meth:`peek` or :meth:`view`.
        """
        value = check_tensor(value, "value")
        if (
            window is False
            and self._shape_fixed
            and value.shape == self._shape
            and value.device == self._state_device()
        ):
            # a step of the fixed shape on the state's device (a monitor's every step): every check
            # below passes and nothing is allocated; a value without a graph needs no detach
            self._update_step(self._prepare(value.detach() if value.requires_grad else value, False))
            return
        if not isinstance(window, bool):
            raise TypeError(f"window: expected a bool, got {window!r}")
        if window and value.ndim == 0:
            raise ValueError("value: a window needs a leading time dimension, got a 0-d tensor")
        shape = tuple(value.shape[1:] if window else value.shape)
        state_device = self._state_device()
        if self._shape is not None and self._shape_fixed:
            if shape != self._shape:
                expected = ("T", *self._shape) if window else self._shape
                raise ValueError(
                    f"value: expected shape {tuple(expected)} (fixed by the first call; "
                    f"clear() to change it), got {tuple(value.shape)}"
                )
            if value.device != state_device:
                raise ValueError(f"value: expected a tensor on {state_device}, got {value.device}")
        prepared = self._prepare(value.detach(), window)  # validates; touches no state
        if self._shape is None or shape != self._shape or value.device != state_device:
            self._allocate(shape, value)
            self._shape = shape
        set_plain(self, "_shape_fixed", True)  # a plain bool: skips nn.Module.__setattr__
        if window:
            if prepared.shape[0]:
                self._update_window(prepared)
        else:
            self._update_step(prepared)

    def peek(self) -> Tensor:
        """The reduced value now (a new tensor, safe to keep)."""
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.peek: nothing observed yet")
        return self._peek()

    def clear(self) -> None:
        """Restore the initial state; the next call may fix another shape."""
        set_plain(self, "_shape_fixed", False)
        if self._shape is not None:
            self._reset_state()
        if self.history is not None:
            self.history.clear()

    def reset(self) -> None:
        """Same as :meth:`clear`."""
        self.clear()

    def view(self, delay: float | Tensor, tolerance: float | None = None) -> Tensor:
        """The reduced value as it was ``delay`` ago (time units), per element.

        The sample is ``[B, *rest]``; ``delay`` broadcasts against ``rest``
        (aligned on the right, never against the batch) and the result is
        ``[B, *broadcast(delay.shape, rest)]``: a ``[N_out, N_in]`` delay per
        synapse against a ``[B, N_in]`` presynaptic sample gives ``[B, N_out,
        N_in]``; a scalar delay gives ``[B, *rest]``. Needs ``0 <= delay <=
        duration``. ``tolerance`` (in steps, as in
        :mod:`plastic.functional.interpolation`; default: the constructor's)
        snaps a delay within ``tolerance * dt`` of a multiple of ``dt`` onto
        that multiple.
        """
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.view: nothing observed yet")
        tolerance = self._tolerance if tolerance is None else check_non_negative(tolerance, "tolerance")
        lags = self._delay_lags(delay, tolerance)
        if self.history is None:
            return self._expand_sample(self._peek(), lags.shape).clone()
        return self._view(lags, tolerance)

    # ----------------------------------------------------------- subclasses
    _tolerance: float = 1e-7
    _duration: float = 0.0

    def _config(self) -> dict[str, Hashable]:
        """Named parameters, in the order of :meth:`config_key`."""
        return {}

    def _state_device(self) -> torch.device:
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        raise NotImplementedError

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        raise NotImplementedError

    def _update_step(self, value: Tensor) -> None:
        raise NotImplementedError

    def _update_window(self, values: Tensor) -> None:
        raise NotImplementedError

    def _reset_state(self) -> None:
        raise NotImplementedError

    def _peek(self) -> Tensor:
        raise NotImplementedError

    def _view(self, lags: Tensor, tolerance_steps: float) -> Tensor:
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def _make_history(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, fill: float) -> None:
        if self._duration > 0:
            self.history = RingBuffer(
                _history_capacity(self._duration, self._dt), shape, dtype=dtype, device=device, fill=fill
            )

    def _delay_lags(self, delay: float | Tensor, tolerance: float) -> Tensor:
        """Delays (time) as snapped lags (steps, float64), validated against the history."""
        device = self._state_device()
        if isinstance(delay, Tensor):
            check_tensor(delay, "delay")
            if delay.device != device:
                raise ValueError(f"delay: expected a tensor on {device}, got {delay.device}")
            if delay.dtype == torch.bool or delay.is_complex():
                raise TypeError(f"delay: expected real delays, got dtype {delay.dtype}")
            delay_tensor = delay.detach().to(torch.float64)
        else:
            delay_tensor = torch.tensor(_check_finite_real(delay, "delay"), dtype=torch.float64, device=device)
        rest = (self._shape or ())[1:]
        try:
            torch.broadcast_shapes(rest, delay_tensor.shape)
        except RuntimeError:
            raise ValueError(
                f"delay: shape {tuple(delay_tensor.shape)} does not broadcast with the sample "
                f"without its batch dimension, {tuple(rest)}"
            ) from None
        lags = snap_lags(delay_tensor / self._dt, tolerance)
        longest = self.history.capacity - 1 if self.history is not None else 0
        if delay_tensor.numel() and (
            not bool(torch.isfinite(lags).all()) or bool((lags < 0).any()) or bool((torch.ceil(lags) > longest).any())
        ):
            raise ValueError(
                f"delay: expected finite values in [0, duration={self._duration}] "
                f"(history of {longest} steps of dt={self._dt})"
            )
        return lags

    def _per_sample_shape(self, delay_shape: torch.Size) -> tuple[int, ...]:
        """The sample shape with singleton dimensions after the batch, one per extra delay dimension."""
        shape = self._shape or ()
        rest = shape[1:]
        extra = len(torch.broadcast_shapes(rest, delay_shape)) - len(rest)
        return (*shape[:1], *(1,) * extra, *rest)

    def _expand_sample(self, sample: Tensor, delay_shape: torch.Size) -> Tensor:
        shape = self._per_sample_shape(delay_shape)
        out_shape = (*shape[:1], *torch.broadcast_shapes(shape[1:], delay_shape))
        return sample.reshape(shape).expand(out_shape)

    def _read_history(self, lags: Tensor, interpolation: str, tolerance_steps: float, **kwargs: Any) -> Tensor:
        """``history.read`` with the delay dimensions placed after the batch."""
        assert self.history is not None
        shape = self._per_sample_shape(lags.shape)
        history = self.history
        if shape != self._shape:
            # delays add dimensions: read from a copy of the history shaped
            # [B, 1, ..., *rest] (same samples, same count; a per-call temporary)
            history = RingBuffer(
                self.history.capacity,
                shape,
                dtype=self.history.data.dtype,
                device=self.history.data.device,
                fill=self.history.fill,
            )
            held = self.history.window(self.history.count)
            history.push_window(held.reshape(held.shape[0], *shape))
        return history.read(lags, interpolation, tolerance_steps, **kwargs)

    # ------------------------------------------------------ state_dict
    def get_extra_state(self) -> Any:
        return {"shape": self._shape, "shape_fixed": self._shape_fixed}

    def set_extra_state(self, state: Any) -> None:
        self._shape = None if state["shape"] is None else tuple(state["shape"])
        self._shape_fixed = bool(state["shape_fixed"])

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # State is allocated lazily at the first observation: a fresh reducer
        # first takes the saved shapes (and dtypes) so that loading fills it.
        device = self._state_device()
        for name, buffer in list(self._buffers.items()):
            saved = state_dict.get(prefix + name)
            if isinstance(saved, Tensor) and buffer is not None and saved.shape != buffer.shape:
                self._buffers[name] = torch.empty(saved.shape, dtype=saved.dtype, device=device)
        saved = state_dict.get(prefix + "history.data")
        if (
            isinstance(saved, Tensor)
            and self._duration > 0
            and (self.history is None or self.history.data.shape != saved.shape)
        ):
            self._make_history(tuple(saved.shape[1:]), saved.dtype, device, self._history_fill())
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _history_fill(self) -> float:
        return 0.0

    def _float_state_dtype(self, value: Tensor, buffer: Tensor) -> torch.dtype:
        """dtype of float state: kept once allocated; else a floating value's
        dtype; else the placeholder's (the default dtype, or what ``.to()`` set)."""
        if self._shape is not None:
            return buffer.dtype
        if value.is_floating_point():
            return value.dtype
        return buffer.dtype if buffer.is_floating_point() else torch.get_default_dtype()

    def extra_repr(self) -> str:
        settings = {"dt": self._dt, **self._config()}
        return ", ".join(f"{name}={value!r}" for name, value in settings.items())


def _apply_criterion(criterion: Criterion, value: Tensor) -> Tensor:
    events = criterion(value)
    if not isinstance(events, Tensor) or events.dtype != torch.bool:
        raise TypeError(
            f"criterion: expected a function returning a bool tensor, got {type(events).__name__}"
            + (f" of dtype {events.dtype}" if isinstance(events, Tensor) else "")
        )
    if events.shape != value.shape:
        raise ValueError(f"criterion: expected a result of shape {tuple(value.shape)}, got {tuple(events.shape)}")
    return events


class EventTimeReducer(Reducer):
    """Time since the most recent event, per element.

    After step ``t``::

        e_t = dt * (t - s_t),   s_t = the last step <= t with an event

    so ``e = 0`` on the step of an event and grows by ``dt`` per step without
    one. Before any event ``e`` is ``initial`` (NaN by default: kernel STDP adds
    nothing for a neuron that never fired; ``inf`` or ``0`` on request); it
    stays at that value until the first event.

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
        initial: value before any event: ``"nan"``, ``"inf"`` or ``"zero"``.
        duration: longest delay readable with :meth:`view` (time units, >= 0).
        criterion: ``value -> bool tensor`` of events (default: spikes).
        interpolation: ``"previous"`` (exact arrival times) or ``"nearest"``.
        tolerance: snapping tolerance for delays (in steps, >= 0).

    Reference: the event-time form of kernel STDP in DESIGN.md (``delta =
    e_pre - e_post``, minus the delay in delay-adjusted rules).
    """

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
        return _apply_criterion(self.criterion, value)

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


class PassthroughReducer(Reducer):
    """The latest observation, unchanged: ``peek() = v_t``.

    With ``duration > 0`` the last ``ceil(duration/dt) + 1`` observations are
    kept and ``view(d)`` reads the value ``d`` ago (time units) with the ring
    buffer's interpolation (:mod:`plastic.functional.interpolation`):
    ``previous`` (the sample at or before ``t - d``), ``nearest``, ``linear``
    or ``exp_decay`` (needs ``tau``). Values before the run read as 0.

    Any values are accepted (NaN included: this is a recorder). State keeps
    the observation's dtype, except that ``linear``/``exp_decay`` store
    non-floating values in the default float dtype.

    Args:
        dt: time step (> 0).
        duration: longest readable delay (time units, >= 0).
        interpolation: one of ``previous``, ``nearest``, ``linear``, ``exp_decay``.
        tolerance: snapping tolerance for delays (in steps, >= 0).
        tau: time constant of ``exp_decay`` reads (time units, > 0).
    """

    def __init__(
        self,
        dt: float = 1.0,
        duration: float = 0.0,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
        tau: float | None = None,
    ) -> None:
        super().__init__(dt)
        self._duration = check_non_negative(duration, "duration")
        self.interpolation = str(check_choice(interpolation, "interpolation", INTERPOLATIONS))
        self._tolerance = check_non_negative(tolerance, "tolerance")
        if interpolation == "exp_decay" and tau is None:
            raise ValueError("tau: exp_decay interpolation needs a time constant > 0")
        self.tau = None if tau is None else check_positive(tau, "tau")
        self.register_buffer("latest", torch.empty(0))

    def _config(self) -> dict[str, Hashable]:
        return {
            "duration": self._duration,
            "interpolation": self.interpolation,
            "tolerance": self._tolerance,
            "tau": self.tau,
        }

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        return value

    def _state_dtype(self, value: Tensor) -> torch.dtype:
        if self._shape is not None:
            return self.latest.dtype
        if self.interpolation in ("linear", "exp_decay"):
            return _float_dtype(value)
        return value.dtype

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        dtype = self._state_dtype(value)
        self.latest = torch.zeros(shape, dtype=dtype, device=value.device)
        self._make_history(shape, dtype, value.device, 0.0)

    def _update_step(self, value: Tensor) -> None:
        self.latest.copy_(value)
        if self.history is not None:
            self.history.push(value.to(self.latest.dtype))

    def _update_window(self, values: Tensor) -> None:
        self.latest.copy_(values[-1])
        if self.history is not None:
            self.history.push_window(values.to(self.latest.dtype))

    def _reset_state(self) -> None:
        self.latest.zero_()

    def _peek(self) -> Tensor:
        return self.latest.clone()

    def _view(self, lags: Tensor, tolerance_steps: float) -> Tensor:
        assert self.history is not None
        return self._read_history(lags, self.interpolation, tolerance_steps, dt=self._dt, tau=self.tau)


class _TraceReducer(Reducer):
    """Shared parts of the trace reducers (decay, history, validation)."""

    def __init__(
        self,
        dt: float,
        tau: float,
        amplitude: float,
        criterion: Criterion | None,
        exact: bool,
        duration: float,
        interpolation: str,
        tolerance: float,
    ) -> None:
        super().__init__(dt)
        if not isinstance(exact, bool):
            raise TypeError(f"exact: expected a bool, got {exact!r}")
        self.tau = check_positive(tau, "tau")
        self.decay = float(decay_factor(self._dt, self.tau, exact=exact))
        self.exact = exact
        self.amplitude = _check_finite_real(amplitude, "amplitude")
        if criterion is not None and not callable(criterion):
            raise TypeError(f"criterion: expected a callable or None, got {type(criterion).__name__}")
        self.criterion = criterion
        self._duration = check_non_negative(duration, "duration")
        self.interpolation = str(check_choice(interpolation, "interpolation", INTERPOLATIONS))
        self._tolerance = check_non_negative(tolerance, "tolerance")
        self.register_buffer("trace", torch.empty(0))

    def _config(self) -> dict[str, Hashable]:
        return {
            "tau": self.tau,
            "exact": self.exact,
            "amplitude": self.amplitude,
            "criterion": self.criterion,
            "duration": self._duration,
            "interpolation": self.interpolation,
            "tolerance": self._tolerance,
        }

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        dtype = self._float_state_dtype(value, self.trace)
        self.trace = torch.zeros(shape, dtype=dtype, device=value.device)
        self._make_history(shape, dtype, value.device, 0.0)

    def _reset_state(self) -> None:
        self.trace.zero_()

    def _peek(self) -> Tensor:
        return self.trace.clone()

    def _view(self, lags: Tensor, tolerance_steps: float) -> Tensor:
        assert self.history is not None
        return self._read_history(lags, self.interpolation, tolerance_steps, dt=self._dt, tau=self.tau)

    #: the trace's recurrence (``plastic.functional.traces``): one step, and a window
    #: with its last trace, both ``(..., decay, amplitude)``
    trace_step: Callable[..., Tensor]
    trace_window: Callable[..., tuple[Tensor, Tensor]]

    def _update_step(self, value: Tensor) -> None:
        self.trace = self.trace_step(self.trace, value, self.decay, self.amplitude)
        self._push(self.trace, window=False)

    def _update_window(self, values: Tensor) -> None:
        traces, last = self.trace_window(values, self.decay, self.amplitude, initial=self.trace)
        self.trace = last
        self._push(traces, window=True)

    def _push(self, value: Tensor, window: bool) -> None:
        if self.history is not None:
            (self.history.push_window if window else self.history.push)(value)


class CumulativeTraceReducer(_TraceReducer):
    """Cumulative (all-to-all) trace of the observations.

    With spikes (a bool value) or a criterion::

        x_t = a * x_{t-1} + A * s_t,       s_t = value_t  or  criterion(value_t)

    With a numeric value and no criterion, the value itself, times ``scale``::

        x_t = a * x_{t-1} + A * scale * v_t

    (float {0, 1} spikes with ``scale = 1`` give the spike trace). ``a =
    exp(-dt/tau)``, or ``1 - dt/tau`` with ``exact=False``; ``x_{-1} = 0``.
    Closed form: ``x_t = sum_{u <= t} a^(t-u) * A * s_u``. Non-finite values
    are rejected. With ``duration > 0``, ``view(d)`` reads the trace ``d`` ago
    (``exp_decay`` by default: the earlier sample decayed over the gap).

    Args:
        dt: time step (> 0).
        tau: time constant (time units, > 0; ``>= dt`` with ``exact=False``).
        amplitude: ``A``, added per event.
        scale: multiplier of numeric (non-bool) observations without criterion.
        criterion: ``value -> bool tensor`` of events.
        exact: exponential (True) or Euler (False) decay.
        duration, interpolation, tolerance: delayed reads (see :meth:`Reducer.view`).

    Reference: DESIGN.md, Traces; Morrison, Diesmann & Gerstner (2008), Biol.
    Cybern. 98:459 (all-to-all pairing).
    """

    def __init__(
        self,
        dt: float = 1.0,
        tau: float = 20.0,
        amplitude: float = 1.0,
        scale: float = 1.0,
        criterion: Criterion | None = None,
        exact: bool = True,
        duration: float = 0.0,
        interpolation: str = "exp_decay",
        tolerance: float = 1e-7,
    ) -> None:
        super().__init__(dt, tau, amplitude, criterion, exact, duration, interpolation, tolerance)
        self.scale = _check_finite_real(scale, "scale")

    def _config(self) -> dict[str, Hashable]:
        return {**super()._config(), "scale": self.scale}

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if self.criterion is not None:
            check_tensor(value, "value", finite=True)
            return _apply_criterion(self.criterion, value)
        if value.dtype == torch.bool:
            return value
        if value.is_complex():
            raise TypeError(f"value: expected real values, got dtype {value.dtype}")
        check_tensor(value, "value", finite=True)
        values = value.to(self._float_state_dtype(value, self.trace))
        return values * self.scale if self.scale != 1.0 else values

    trace_step = staticmethod(trace_cumulative_step)
    trace_window = staticmethod(trace_cumulative_window)


class NearestTraceReducer(_TraceReducer):
    """Nearest-spike trace of the events::

        x_t = A               where s_t
        x_t = a * x_{t-1}     elsewhere

    ``s_t`` is the value (spikes: bool or {0, 1}) or ``criterion(value)``;
    closed form ``x_t = A * a^(t - last event)`` (0 before any event).
    Non-finite values are rejected.

    Args:
        dt: time step (> 0).
        tau: time constant (time units, > 0; ``>= dt`` with ``exact=False``).
        amplitude: ``A``, the value the trace is set to at an event.
        criterion: ``value -> bool tensor`` of events.
        exact: exponential (True) or Euler (False) decay.
        duration, interpolation, tolerance: delayed reads (see :meth:`Reducer.view`).

    Reference: DESIGN.md, Traces; Morrison, Diesmann & Gerstner (2008)
    (nearest-spike pairing).
    """

    def __init__(
        self,
        dt: float = 1.0,
        tau: float = 20.0,
        amplitude: float = 1.0,
        criterion: Criterion | None = None,
        exact: bool = True,
        duration: float = 0.0,
        interpolation: str = "exp_decay",
        tolerance: float = 1e-7,
    ) -> None:
        super().__init__(dt, tau, amplitude, criterion, exact, duration, interpolation, tolerance)

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if self.criterion is None:
            return check_spikes(value, "value")
        check_tensor(value, "value", finite=True)
        return _apply_criterion(self.criterion, value)

    trace_step = staticmethod(trace_nearest_step)
    trace_window = staticmethod(trace_nearest_window)


class EMAReducer(Reducer):
    """Exponential moving average (a rate estimate for spikes)::

        m_0 = v_0,     m_t = (1 - alpha) * m_{t-1} + alpha * v_t

    It is the cumulative-trace recurrence with decay ``1 - alpha`` and
    amplitude ``alpha`` (:func:`plastic.functional.traces.trace_cumulative_step`).
    Bool values count as 0/1; non-finite values are rejected.

    Args:
        alpha: smoothing factor in ``(0, 1]`` (1 keeps only the latest value).
        dt: time step (> 0; kept for a uniform interface).
    """

    def __init__(self, alpha: float = 0.1, *, dt: float = 1.0) -> None:
        super().__init__(dt)
        self.alpha = check_in_range(check_greater(alpha, "alpha", 0.0), "alpha", 0.0, 1.0)
        self.register_buffer("average", torch.empty(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def _config(self) -> dict[str, Hashable]:
        return {"alpha": self.alpha}

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if value.is_complex():
            raise TypeError(f"value: expected real values, got dtype {value.dtype}")
        check_tensor(value, "value", finite=True)
        return value.to(self._float_state_dtype(value, self.average))

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        self.average = torch.zeros(shape, dtype=self._float_state_dtype(value, self.average), device=value.device)
        self.count = torch.zeros((), dtype=torch.int64, device=value.device)

    def _update_step(self, value: Tensor) -> None:
        moved = trace_cumulative_step(self.average, value, 1.0 - self.alpha, self.alpha)
        self.average.copy_(torch.where(self.count == 0, value, moved))  # no host sync
        self.count.add_(1)

    def _update_window(self, values: Tensor) -> None:
        if int(self.count) == 0:
            self.average.copy_(values[0])
            self.count.add_(1)
            values = values[1:]
        if values.shape[0]:
            _, last = trace_cumulative_window(values, 1.0 - self.alpha, self.alpha, initial=self.average)
            self.average.copy_(last)
            self.count.add_(values.shape[0])

    def _reset_state(self) -> None:
        self.average.zero_()
        self.count.zero_()

    def _peek(self) -> Tensor:
        return self.average.clone()


class CumulativeAverageReducer(Reducer):
    """Running mean over every observation since the last clear::

        mean_n = mean_{n-1} + (v_n - mean_{n-1}) / n

    O(1) memory: the mean and the count ``n``. Bool values count as 0/1;
    non-finite values are rejected.

    Args:
        dt: time step (> 0; kept for a uniform interface).
    """

    def __init__(self, *, dt: float = 1.0) -> None:
        super().__init__(dt)
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if value.is_complex():
            raise TypeError(f"value: expected real values, got dtype {value.dtype}")
        check_tensor(value, "value", finite=True)
        return value.to(self._float_state_dtype(value, self.mean))

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        self.mean = torch.zeros(shape, dtype=self._float_state_dtype(value, self.mean), device=value.device)
        self.count = torch.zeros((), dtype=torch.int64, device=value.device)

    def _update_step(self, value: Tensor) -> None:
        self.count.add_(1)
        self.mean.add_((value - self.mean) / self.count)

    def _update_window(self, values: Tensor) -> None:
        # a loop over time, so that the result is bit-identical to single calls
        for step in values:
            self._update_step(step)

    def _reset_state(self) -> None:
        self.mean.zero_()
        self.count.zero_()

    def _peek(self) -> Tensor:
        return self.mean.clone()


class WindowReducer(Reducer):
    """The last ``steps`` observations, for the vectorized (window) trainers.

    ``peek()`` is ``[steps, *shape]`` in time order, the newest last; rows
    before the first observation are zeros (``False`` for bool). Values are
    kept as observed (dtype included, NaN allowed). ``count`` is the number
    of rows holding observations (at most ``steps``), ``total`` the number of
    steps observed since the last clear.

    Args:
        steps: rows kept (int >= 1).
        dt: time step (> 0; kept for a uniform interface).
    """

    def __init__(self, steps: int, *, dt: float = 1.0) -> None:
        super().__init__(dt)
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps: expected an int >= 1, got {steps!r}")
        if steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        self.steps = steps
        self._total = 0
        self.history = RingBuffer(steps, (0,))
        self._duration = 0.0  # no delayed reads: the window itself is the record

    def _config(self) -> dict[str, Hashable]:
        return {"steps": self.steps}

    @property
    def count(self) -> int:
        """Rows holding observations (``min(total, steps)``)."""
        assert self.history is not None
        return self.history.count if self._shape is not None else 0

    @property
    def total(self) -> int:
        """Steps observed since the last clear (not capped: trainers count what is new)."""
        return self._total

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if self._shape is None:
            return value
        dtype = self._modules["history"]._buffers["data"].dtype  # without nn.Module.__getattr__
        return value if value.dtype == dtype else value.to(dtype)

    def _state_device(self) -> torch.device:
        # the history holds the only buffer: no walk over the module tree at every step
        return self._modules["history"]._buffers["data"].device

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        self.history = RingBuffer(self.steps, shape, dtype=value.dtype, device=value.device, fill=0)

    def _update_step(self, value: Tensor) -> None:
        self._modules["history"].push(value)
        set_plain(self, "_total", self._total + 1)  # a plain int: skips nn.Module.__setattr__

    def _update_window(self, values: Tensor) -> None:
        assert self.history is not None
        self.history.push_window(values)
        set_plain(self, "_total", self._total + values.shape[0])

    def _reset_state(self) -> None:
        set_plain(self, "_total", 0)  # the base class clears the history

    def get_extra_state(self) -> Any:
        return {**super().get_extra_state(), "total": self._total}

    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self._total = int(state.get("total", 0))

    def _peek(self) -> Tensor:
        assert self.history is not None
        return self.history.window(self.steps)

    def recent(self, steps: int) -> Tensor:
        """The last ``steps`` observations ``[steps, *shape]``, time order, newest last.

        Unlike :meth:`peek` it may be a view of the storage (no copy: the
        window trainers' read); it changes with the next observation.
        """
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.recent: nothing observed yet")
        assert self.history is not None
        return self.history.recent(steps)

    def view(self, delay: float | Tensor, tolerance: float | None = None) -> Tensor:
        raise NotImplementedError("WindowReducer keeps whole windows: read them with peek()")

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        saved = state_dict.get(prefix + "history.data")
        assert self.history is not None
        if isinstance(saved, Tensor) and saved.shape != self.history.data.shape:
            self.history = RingBuffer(
                self.steps, tuple(saved.shape[1:]), dtype=saved.dtype, device=self._state_device(), fill=0
            )
        super()._load_from_state_dict(state_dict, prefix, *args)
