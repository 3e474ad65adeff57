"""Spike traces and spike filters: the recurrences every trace rule is built on.

Cumulative trace (all-to-all pairing)::

    x_t = a * x_{t-1} + A * s_t,        a = exp(-dt / tau)

Nearest trace (nearest-spike pairing)::

    x_t = A            where s_t
    x_t = a * x_{t-1}  elsewhere

Anti-causal cumulative trace of a window (the future spikes, seen from t)::

    y_t = sum_{u >= t} a^(u - t) * A * s_u  =  A * s_t + a * y_{t+1}

Spike filter (SpikingJelly's ``SynapseFilter`` equation)::

    I_t = I_{t-1} - (1 - S_t) * I_{t-1} / tau + S_t

Traces include the current step's spike. ``a`` may be the exact
``exp(-dt/tau)`` or the Euler ``1 - dt/tau`` (:func:`decay_factor`).

Window forms take ``[T, *shape]`` (time first) and return every step's value
and the last one, so that the next window continues from it. They run one
preallocated recurrence over time, each step touching ``prod(shape)`` elements.
"""

from __future__ import annotations

import math
from typing import overload

import torch
from torch import Tensor

from plastic.functional.validation import check_positive

__all__ = [
    "decay_factor",
    "spike_filter_step",
    "spike_filter_window",
    "spike_values",
    "trace_anticausal_window",
    "trace_cumulative_step",
    "trace_cumulative_window",
    "trace_nearest_step",
    "trace_nearest_window",
]

Scalar = float | Tensor


@overload
def decay_factor(dt: float, tau: float, *, exact: bool = True) -> float: ...
@overload
def decay_factor(dt: float, tau: Tensor, *, exact: bool = True) -> Tensor: ...
@overload
def decay_factor(dt: float, tau: float | Tensor, *, exact: bool = True) -> Scalar: ...
def decay_factor(dt: float, tau: float | Tensor, *, exact: bool = True) -> Scalar:
    """Per-step decay ``exp(-dt/tau)`` (``exact``) or ``1 - dt/tau`` (Euler).

    ``tau`` may be a tensor (per-element time constants); the Euler form
    requires ``tau >= dt`` so that the factor stays in ``[0, 1)``.
    """
    dt = check_positive(dt, "dt")
    if isinstance(tau, Tensor):
        if not bool((tau > 0).all()) or not bool(torch.isfinite(tau).all()):
            raise ValueError("tau: expected finite values > 0")
        if exact:
            return torch.exp(-dt / tau)
        if not bool((tau >= dt).all()):
            raise ValueError(f"tau: the Euler decay 1 - dt/tau needs tau >= dt ({dt})")
        return 1.0 - dt / tau
    tau = check_positive(tau, "tau", allow_inf=True)
    if exact:
        return math.exp(-dt / tau)
    if tau < dt:
        raise ValueError(f"tau: the Euler decay 1 - dt/tau needs tau >= dt ({dt}), got {tau}")
    return 1.0 - dt / tau


def spike_values(spikes: Tensor, dtype: torch.dtype, *, copy: bool = False) -> Tensor:
    """Spikes (bool or numbers) as a tensor of the floating ``dtype`` (``copy``: always a new one).

    Bool spikes are read through a ``uint8`` view of the same bytes (0 and
    1): the integer-to-float conversion is vectorised where the bool one is
    not (about 5x faster on CPU), with identical values. A small step
    (up to :data:`SMALL_SPIKES` elements, e.g. one sample's spikes) converts
    directly: there the view costs more than the loop it saves.
    """
    if spikes.dtype == torch.bool:
        if spikes.numel() > SMALL_SPIKES:
            return spikes.view(torch.uint8).to(dtype)
        return spikes.float() if dtype == torch.float32 else spikes.to(dtype)  # .float(): no argument parsing
    return spikes.to(dtype, copy=copy)


#: bool spikes up to this many elements are converted without the ``uint8`` view (:func:`spike_values`)
SMALL_SPIKES = 2048


def _as_values(spikes: Tensor, like: Tensor) -> Tensor:
    return spikes.to(dtype=like.dtype) if spikes.dtype != like.dtype else spikes


def trace_cumulative_step(trace: Tensor, spike: Tensor, decay: Scalar, amplitude: Scalar = 1.0) -> Tensor:
    """One step of the cumulative trace: ``a * x + A * s`` (new tensor)."""
    return trace * decay + _as_values(spike, trace) * amplitude


def trace_nearest_step(trace: Tensor, spike: Tensor, decay: Scalar, amplitude: Scalar = 1.0) -> Tensor:
    """One step of the nearest trace: ``A`` where ``s`` else ``a * x`` (new tensor)."""
    decayed = trace * decay
    fill = torch.as_tensor(amplitude, dtype=trace.dtype, device=trace.device)
    return torch.where(spike.bool() if spike.dtype != torch.bool else spike, fill, decayed)


def _initial(spikes: Tensor, initial: Tensor | None, dtype: torch.dtype | None) -> Tensor:
    if initial is not None:
        if initial.shape != spikes.shape[1:]:
            raise ValueError(f"initial: expected shape {tuple(spikes.shape[1:])}, got {tuple(initial.shape)}")
        return initial
    dtype = dtype or (spikes.dtype if spikes.is_floating_point() else torch.get_default_dtype())
    return torch.zeros(spikes.shape[1:], dtype=dtype, device=spikes.device)


def trace_cumulative_window(
    spikes: Tensor,
    decay: Scalar,
    amplitude: Scalar = 1.0,
    initial: Tensor | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Cumulative traces of a window ``[T, *shape]``; returns ``(traces, last)``.

    ``traces[t] = a * traces[t-1] + A * spikes[t]`` with ``traces[-1] = initial``
    (zeros by default).
    """
    previous = _initial(spikes, initial, dtype)
    values = _scaled_values(spikes, previous.dtype, amplitude)
    if _needs_graph(values, previous, decay):
        steps = []
        for t in range(spikes.shape[0]):
            previous = previous * decay + values[t]
            steps.append(previous)
        out = torch.stack(steps) if steps else values
        return out, previous
    out = values  # fresh tensor: filled in place, step by step
    if out.shape[0]:
        out[0].add_(previous * decay)
        _decayed_accumulate(out, decay, range(1, out.shape[0]), -1)
    return out, (out[-1].clone() if out.shape[0] else previous)


def trace_nearest_window(
    spikes: Tensor,
    decay: Scalar,
    amplitude: Scalar = 1.0,
    initial: Tensor | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Nearest-spike traces of a window ``[T, *shape]``; returns ``(traces, last)``."""
    previous = _initial(spikes, initial, dtype)
    fired = spikes.bool() if spikes.dtype != torch.bool else spikes
    out = torch.empty(spikes.shape, dtype=previous.dtype, device=previous.device)
    fill = torch.as_tensor(amplitude, dtype=previous.dtype, device=previous.device)
    for t in range(spikes.shape[0]):
        torch.where(fired[t], fill, previous * decay, out=out[t])
        previous = out[t]
    return out, (out[-1].clone() if out.shape[0] else previous)


def trace_anticausal_window(
    spikes: Tensor, decay: Scalar, amplitude: Scalar = 1.0, *, dtype: torch.dtype | None = None
) -> Tensor:
    """Anti-causal cumulative trace ``y_t = A*s_t + a*y_{t+1}`` within a window.

    Spikes after the window are unknown, so ``y_{T} = 0``: pairs whose later
    spike falls in the next window are counted there, through the causal trace
    carried over.
    """
    dtype = dtype or (spikes.dtype if spikes.is_floating_point() else torch.get_default_dtype())
    out = _scaled_values(spikes, dtype, amplitude)
    _decayed_accumulate(out, decay, range(out.shape[0] - 2, -1, -1), +1)
    return out


def _scaled_values(spikes: Tensor, dtype: torch.dtype, amplitude: Scalar) -> Tensor:
    """``A * spikes`` as a NEW tensor of ``dtype`` (one pass when ``A`` is a plain number).

    The window recurrences fill this tensor in place, so it must never alias
    ``spikes``; a tensor amplitude may broadcast to a larger shape, so it
    keeps the out-of-place product.
    """
    if isinstance(amplitude, Tensor):
        return spike_values(spikes, dtype) * amplitude
    values = spike_values(spikes, dtype, copy=True)
    return values if amplitude == 1 else values.mul_(amplitude)


def _decayed_accumulate(out: Tensor, decay: Scalar, steps: range, neighbour: int) -> None:
    """``out[t] += out[t + neighbour] * decay`` for ``t`` in ``steps`` (in order), in place.

    The product goes into one scratch buffer reused by every step (no
    allocation per step); it is rounded before the sum exactly as the
    single-step functions round it, so a window equals its steps bit for bit.
    """
    if not len(steps):
        return
    step_shape = out.shape[1:]
    if isinstance(decay, Tensor) and torch.broadcast_shapes(decay.shape, step_shape) != step_shape:
        for t in steps:  # a decay that broadcasts beyond the step's shape: let the sum raise as before
            out[t].add_(out[t + neighbour] * decay)
        return
    scratch = torch.empty(step_shape, dtype=out.dtype, device=out.device)
    for t in steps:
        torch.mul(out[t + neighbour], decay, out=scratch)
        out[t].add_(scratch)


def _needs_graph(*values: object) -> bool:
    return torch.is_grad_enabled() and any(isinstance(v, Tensor) and v.requires_grad for v in values)


def spike_filter_step(current: Tensor, spike: Tensor, inverse_tau: Scalar) -> Tensor:
    """``I_t = I_{t-1} - (1 - S_t) * I_{t-1} * inverse_tau + S_t`` (new tensor).

    ``spike`` may be a float tensor carrying gradients (surrogate networks).
    """
    values = _as_values(spike, current)
    return current - (1.0 - values) * current * inverse_tau + values


def spike_filter_window(spikes: Tensor, current: Tensor, inverse_tau: Scalar) -> tuple[Tensor, Tensor]:
    """Spike filter over a window ``[T, *shape]``; returns ``(currents, last)``.

    Gradients flow to ``spikes``, ``current`` and a tensor ``inverse_tau``
    (the learnable variant); without them the recurrence runs in place.
    """
    values = _as_values(spikes, current)
    if _needs_graph(values, current, inverse_tau):
        steps = []
        for t in range(values.shape[0]):
            current = spike_filter_step(current, values[t], inverse_tau)
            steps.append(current)
        return (torch.stack(steps) if steps else values.clone()), current
    # I_t = I_{t-1} * (1 - (1 - S_t) * k) + S_t: a linear recurrence, in place
    keep = 1.0 - (1.0 - values) * inverse_tau
    out = values.clone()
    for t in range(values.shape[0]):
        out[t].addcmul_(current, keep[t])
        current = out[t]
    return out, (out[-1].clone() if out.shape[0] else current)
