"""Invariants every plasticity rule should satisfy, as reusable checks.

A rule under test is wrapped in a :class:`RuleUnderTest` adaptor that runs it
on given pre and post spike windows and returns its update as named terms
(``potentiation`` and ``depression``, or ``net``):

* :class:`TrainerRule` wraps a trainer factory ``lambda **overrides:
  Trainer(...)`` (a :class:`~plastic.learn.base.IndependentCellTrainer`). It
  builds a cell around a connection whose postsynaptic neurons are a
  :class:`~plastic.testing.strategies.ScriptedNeuron`, so the test chooses
  both trains, runs the cell in window mode, calls the trainer, and reads the
  updater's pending potentiation and depression.
* :class:`FunctionalRule` wraps a function
  ``rule(spikes_pre [T, B, *in], spikes_post [T, B, *out], **kwargs)``
  returning ``(potentiation, depression)`` or a signed ``dw``; with
  ``stateful=True`` it is called with ``state=`` (None at the start) and
  returns ``(result, state)``, the state it carries to the next window.

Each check raises ``AssertionError`` whose message starts with the
property's name (``"batch additivity: ..."``). The properties:

=========================  ===================================================
``no spikes``              silent trains give no update
``pre-only activity``      presynaptic spikes alone give only the terms the
                           rule declares (``terms_pre_only``; none by default)
``post-only activity``     likewise for postsynaptic spikes (``terms_post_only``)
``batch additivity``       with ``sum`` reduction the update of a batch is the
                           sum of the updates of its samples; ``mean``: the mean
``window additivity``      calling the rule after every step (state carried)
                           equals one call on the whole window
``chained windows``        two or more consecutive windows equal one window
``time-shift invariance``  shifting both trains later (both staying in the
                           window, ``latency`` silent steps after them) leaves
                           the update unchanged
``causality sign``         one pre-before-post pair potentiates (net > 0) the
                           synapse, the reverse order depresses it (net < 0)
``dense/conv consistency`` a 1x1 convolution on 1x1 inputs equals the dense rule
``dtype consistency``      float32 and float64 agree within tolerance
``device consistency``     CPU and CUDA agree (skipped without CUDA)
``updater bounds``         after ``update()`` with a clamped, hard-bounded
                           updater every weight lies within the bounds, and
                           masked synapses are unchanged
=========================  ===================================================

Each property has a check on concrete inputs (``check_batch_additivity(rule,
spikes_pre, spikes_post, ...)``) for use in one's own tests, and
:func:`check_rule` runs the battery (or a subset) with hypothesis, drawing the
inputs from :mod:`plastic.testing.strategies` under the active hypothesis
profile, and reports every failure together. A rule declares the properties
that do not apply to it, with a reason, in ``skip``.

Example::

    from plastic.learn.kernel_stdp import KernelSTDP
    from plastic.testing.invariants import TrainerRule, check_rule

    rule = TrainerRule(lambda **overrides: KernelSTDP(**overrides), name="KernelSTDP",
                       skip={"window additivity": "event-time form", "chained windows": "event-time form"})
    check_rule(rule)

The package's modules: :mod:`~plastic.testing.invariants.properties` (the names),
:mod:`~plastic.testing.invariants.adaptors` (rules under test),
:mod:`~plastic.testing.invariants.checks` (one check per property) and
:mod:`~plastic.testing.invariants.battery` (:func:`check_rule`).
"""

from __future__ import annotations

# importable from plastic.testing.invariants before it became a package
from plastic.functional.bounding import Bounding  # noqa: F401
from plastic.functional.validation import check_spikes  # noqa: F401
from plastic.neural.cell import Cell  # noqa: F401
from plastic.neural.updater import Updater  # noqa: F401
from plastic.testing.invariants.adaptors import FunctionalRule, RuleOutput, RuleUnderTest, TrainerRule, default_weight
from plastic.testing.invariants.battery import CheckReport, check_rule
from plastic.testing.invariants.checks import (
    check_batch_additivity,
    check_causality,
    check_chained_windows,
    check_conv_consistency,
    check_device_consistency,
    check_dtype_consistency,
    check_no_spikes,
    check_post_only,
    check_pre_only,
    check_time_shift,
    check_updater_bounds,
    check_window_additivity,
)
from plastic.testing.invariants.properties import (
    BATCH_ADDITIVITY,
    CAUSALITY,
    CHAINED_WINDOWS,
    CONV_CONSISTENCY,
    DEVICE_CONSISTENCY,
    DTYPE_CONSISTENCY,
    NO_SPIKES,
    POST_ONLY,
    PRE_ONLY,
    PROPERTIES,
    TERM_NAMES,  # noqa: F401
    TIME_SHIFT,
    UPDATER_BOUNDS,
    WINDOW_ADDITIVITY,
)
from plastic.testing.strategies import (  # noqa: F401
    CONNECTION_KINDS,
    ConnectionConfig,
    ScriptedNeuron,
    batch_sizes,
    connection_configs,
    seeded_weight_init,
    seeds,
    spike_pairs,
    time_steps,
)

__all__ = [
    "BATCH_ADDITIVITY",
    "CAUSALITY",
    "CHAINED_WINDOWS",
    "CONV_CONSISTENCY",
    "DEVICE_CONSISTENCY",
    "DTYPE_CONSISTENCY",
    "NO_SPIKES",
    "POST_ONLY",
    "PRE_ONLY",
    "PROPERTIES",
    "TIME_SHIFT",
    "UPDATER_BOUNDS",
    "WINDOW_ADDITIVITY",
    "CheckReport",
    "FunctionalRule",
    "RuleOutput",
    "RuleUnderTest",
    "TrainerRule",
    "check_batch_additivity",
    "check_causality",
    "check_chained_windows",
    "check_conv_consistency",
    "check_device_consistency",
    "check_dtype_consistency",
    "check_no_spikes",
    "check_post_only",
    "check_pre_only",
    "check_rule",
    "check_time_shift",
    "check_updater_bounds",
    "check_window_additivity",
    "default_weight",
]
