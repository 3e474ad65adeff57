"""Property testing for plasticity rules: hypothesis strategies and rule invariants.

* :mod:`plastic.testing.strategies`: strategies for shapes, batch sizes,
  windows, ``dt``, spike trains and pairs (with edge cases), connection
  configurations (dense, direct, lateral, conv1d/2d), spike-time kernels and
  cells ready to run.
* :mod:`plastic.testing.invariants`: checks every rule should pass (no spikes
  -> no update, batch additivity, window additivity, chained windows,
  time-shift invariance, causality sign, dense/conv, dtype and device
  consistency, updater bounds) for trainers and functional rules, and
  :func:`~plastic.testing.invariants.check_rule` to run them all.
* :func:`register_profiles`: the hypothesis profiles the project tests with
  (``ci``: 25 derandomized examples; ``thorough``: 500; ``dev``: 10),
  selected by the ``HYPOTHESIS_PROFILE`` environment variable.

Needs ``hypothesis`` (``pip install plastic[dev]``).
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("plastic.testing needs hypothesis: pip install 'hypothesis>=6.90'") from error

__all__ = ["PROFILES", "register_profiles"]

#: the profiles :func:`register_profiles` registers
PROFILES = ("ci", "thorough", "dev")


def register_profiles(*, load: bool = True, default: str = "ci") -> str:
    """Register the hypothesis profiles and (``load``) load the selected one.

    Profiles:

    * ``ci``: 25 examples, derandomized (the same examples on every run), no
      deadline, blobs printed for reproducing a failure;
    * ``thorough``: 500 random examples, for long local runs;
    * ``dev``: 10 examples, for quick iterations.

    The profile loaded is ``$HYPOTHESIS_PROFILE`` if set, else ``default``.
    Returns its name. Call it from a ``conftest.py``.
    """
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile(
        "ci", max_examples=25, deadline=None, derandomize=True, print_blob=True, suppress_health_check=quiet
    )
    settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=quiet)
    settings.register_profile("dev", max_examples=10, deadline=None)
    name = os.environ.get("HYPOTHESIS_PROFILE", default)
    if load:  # a name registered elsewhere (a user's own profile) loads too
        settings.load_profile(name)
    return name
