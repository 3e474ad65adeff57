"""The carried traces around the compiled window sums, compiled too (the one-sample STDP lane,
:mod:`plastic.learn.one_sample_window`).

Before a window's sums (:func:`~plastic.functional.window_bags.pre_event_sums`)
the lane needs the largest magnitude of each carried trace (their finiteness
and the bound that proves the change finite) and ``-eta_pre x_post(-1)``;
after them, ``x_post(T-1) = a_post^T x_post(-1) + A_post post_decayed``. As
numpy or torch operations that is nine calls on arrays of a few hundred
elements, each dispatched on its own; here two compiled loops. Every product
and sum is rounded in the arrays' dtype, as torch's operations round them
(no fused multiply-add: numba's default floating-point semantics), so the
values are the same bit for bit; the scalars are passed in the arrays' dtype
(``numpy.float32(eta)``), as torch converts a Python scalar for a float32
tensor. Plain Python over numpy arrays that numba compiles
(:func:`compiled_window_traces`); uncompiled they still run, slowly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from plastic.functional.numba_kernels import numba_compiled

__all__ = ["WindowTraceKernels", "compiled_window_traces", "post_trace_after", "trace_magnitudes_before"]


def trace_magnitudes_before(trace_pre: Any, trace_post: Any, negative_eta_pre: Any, carried_post: Any) -> Any:
    """``(max |trace_pre|, max |trace_post|)`` as floats (NaN as soon as an element is NaN: then
    ``carried_post`` is left unwritten), and ``carried_post[o] = trace_post[o] * negative_eta_pre``.

    One-dimensional arrays of one float dtype, ``negative_eta_pre`` a scalar of that dtype.
    """
    # magnitudes as float64 (exact for float32 values): one return type
    largest_pre = 0.0
    for i in range(trace_pre.shape[0]):
        magnitude = abs(float(trace_pre[i]))
        if magnitude != magnitude:
            return magnitude, magnitude
        if magnitude > largest_pre:
            largest_pre = magnitude
    largest_post = 0.0
    for o in range(trace_post.shape[0]):
        value = trace_post[o]
        magnitude = abs(float(value))
        if magnitude != magnitude:
            return magnitude, magnitude
        if magnitude > largest_post:
            largest_post = magnitude
        carried_post[o] = value * negative_eta_pre
    return largest_pre, largest_post


def post_trace_after(trace_post: Any, power_post: Any, amplitude_post: Any, post_decayed: Any) -> None:
    """``trace_post[o] = trace_post[o] * power_post + amplitude_post * post_decayed[o]`` in place, each
    product and the sum rounded in the dtype (the scalars of the arrays' dtype)."""
    for o in range(trace_post.shape[0]):
        decayed = trace_post[o] * power_post
        entering = amplitude_post * post_decayed[o]
        trace_post[o] = decayed + entering


class WindowTraceKernels(NamedTuple):
    """The compiled :func:`trace_magnitudes_before` and :func:`post_trace_after`."""

    magnitudes_before: Callable[..., Any]
    post_trace_after: Callable[..., None]


@functools.cache
def compiled_window_traces() -> WindowTraceKernels | None:
    """Both loops compiled by numba (``plastic[fast]``, cached on disk where it can), or None where numba
    is not installed."""
    return numba_compiled(_compile)


def _compile(numba: Any, cache: bool) -> WindowTraceKernels:
    return WindowTraceKernels(
        numba.njit(cache=cache)(trace_magnitudes_before), numba.njit(cache=cache)(post_trace_after)
    )
