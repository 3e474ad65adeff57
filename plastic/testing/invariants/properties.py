"""The invariants' names: each check's ``AssertionError`` starts with one, and a rule's ``skip`` is keyed by them."""

from __future__ import annotations

NO_SPIKES = "no spikes"
PRE_ONLY = "pre-only activity"
POST_ONLY = "post-only activity"
BATCH_ADDITIVITY = "batch additivity"
WINDOW_ADDITIVITY = "window additivity"
CHAINED_WINDOWS = "chained windows"
TIME_SHIFT = "time-shift invariance"
CAUSALITY = "causality sign"
CONV_CONSISTENCY = "dense/conv consistency"
DTYPE_CONSISTENCY = "dtype consistency"
DEVICE_CONSISTENCY = "device consistency"
UPDATER_BOUNDS = "updater bounds"

#: every property, in the order :func:`check_rule` runs them
PROPERTIES = (
    NO_SPIKES,
    PRE_ONLY,
    POST_ONLY,
    BATCH_ADDITIVITY,
    WINDOW_ADDITIVITY,
    CHAINED_WINDOWS,
    TIME_SHIFT,
    CAUSALITY,
    CONV_CONSISTENCY,
    DTYPE_CONSISTENCY,
    DEVICE_CONSISTENCY,
    UPDATER_BOUNDS,
)

TERM_NAMES = ("potentiation", "depression", "net")
