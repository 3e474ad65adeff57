"""Observation: monitors (forward hooks) and reducers over bounded state.

See :mod:`plastic.observe.reducers` and :mod:`plastic.observe.monitors`;
the ring buffer they keep history in is :class:`plastic.neural.history.RingBuffer`.
"""

from plastic.neural.history import RingBuffer
from plastic.observe.monitors import Monitor, MonitorPool, Target, parse_target
from plastic.observe.reducers import (
    CumulativeAverageReducer,
    CumulativeTraceReducer,
    EMAReducer,
    EventTimeReducer,
    NearestTraceReducer,
    PassthroughReducer,
    Reducer,
    WindowReducer,
)

__all__ = [
    "CumulativeAverageReducer",
    "CumulativeTraceReducer",
    "EMAReducer",
    "EventTimeReducer",
    "Monitor",
    "MonitorPool",
    "NearestTraceReducer",
    "PassthroughReducer",
    "Reducer",
    "RingBuffer",
    "Target",
    "WindowReducer",
    "parse_target",
]
