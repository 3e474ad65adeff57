"""Compiling plastic's numba kernels (the optional ``fast`` extra): the import and numba's disk cache in
one place, for :func:`~plastic.functional.fused_step.compiled_linear_neuron_step` and
:func:`~plastic.functional.window_bags.compiled_pre_event_sums`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["numba_compiled"]

Kernel = TypeVar("Kernel")


def numba_compiled(compile_with: Callable[[Any, bool], Kernel]) -> Kernel | None:
    """``compile_with(numba, cache)``: with ``cache=True`` (numba keeps the machine code on disk, beside
    the module or in its cache directory where that is not writable), else uncached where numba finds no
    directory to cache in (it raises ``RuntimeError`` "no locator available" at decoration: then it
    compiles in every process); None where numba is not installed."""
    try:
        import numba
    except ImportError:
        return None
    try:
        return compile_with(numba, True)
    except RuntimeError:
        return compile_with(numba, False)
