"""Spike traces (cumulative and nearest), the recurrences of plastic.functional.traces."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch
from torch import Tensor

from plastic.functional.interpolation import INTERPOLATIONS
from plastic.functional.traces import (
    decay_factor,
    trace_cumulative_step,
    trace_cumulative_window,
    trace_nearest_step,
    trace_nearest_window,
)
from plastic.functional.validation import (
    check_choice,
    check_non_negative,
    check_positive,
    check_spikes,
    check_tensor,
)
from plastic.observe.reducers.base import Criterion, Reducer, apply_criterion, check_finite_real


class _TraceReducer(Reducer):
    """Shared parts of the trace reducers (decay, history, validation)."""

    trace: Tensor  # a buffer, reassigned at the first observation

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
        self.amplitude = check_finite_real(amplitude, "amplitude")
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
        self.scale = check_finite_real(scale, "scale")

    def _config(self) -> dict[str, Hashable]:
        return {**super()._config(), "scale": self.scale}

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if self.criterion is not None:
            check_tensor(value, "value", finite=True)
            return apply_criterion(self.criterion, value)
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
    (nearest-spike pairing: read at the partner's spikes, the trace of the
    symmetric nearest-neighbour scheme, Fig. 7A; the presynaptic-centred and
    restricted schemes need more than a per-neuron trace, see
    :mod:`plastic.functional.pairing_schemes`).
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
        return apply_criterion(self.criterion, value)

    trace_step = staticmethod(trace_nearest_step)
    trace_window = staticmethod(trace_nearest_window)
