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

The modules: :mod:`~plastic.observe.reducers.base` (:class:`Reducer`),
:mod:`~plastic.observe.reducers.event_times`, :mod:`~plastic.observe.reducers.values`
(passthrough and window), :mod:`~plastic.observe.reducers.traces` and
:mod:`~plastic.observe.reducers.averages` (EMA, cumulative average).
"""

from __future__ import annotations

from plastic.functional.interpolation import INTERPOLATIONS, snap_lags  # noqa: F401
from plastic.functional.traces import (  # noqa: F401
    decay_factor,
    trace_cumulative_step,
    trace_cumulative_window,
    trace_nearest_step,
    trace_nearest_window,
)
from plastic.functional.validation import (  # noqa: F401
    check_choice,
    check_greater,
    check_in_range,
    check_non_negative,
    check_positive,
    check_spikes,
    check_tensor,
)
from plastic.neural.buffers import set_plain  # noqa: F401
from plastic.neural.history import RingBuffer  # noqa: F401
from plastic.observe.reducers.averages import CumulativeAverageReducer, EMAReducer

# importable from plastic.observe.reducers before it became a package
from plastic.observe.reducers.base import (
    Criterion,  # noqa: F401
    Reducer,
)
from plastic.observe.reducers.event_times import (
    EVENT_TIME_INITIAL,  # noqa: F401
    EventTimeReducer,
)
from plastic.observe.reducers.traces import CumulativeTraceReducer, NearestTraceReducer
from plastic.observe.reducers.values import PassthroughReducer, WindowReducer

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
