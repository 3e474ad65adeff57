"""Reading a sampled history between its samples.

A history holds one sample per step. A read at a continuous lag ``k`` (in
steps, ``k >= 0``; ``k = 0`` is the newest sample) falls between the samples
at lags ``floor(k)`` (the later one in time) and ``ceil(k)`` (the earlier).

* ``previous``: the sample at or before the queried time, lag ``ceil(k)``.
  A spike emitted at step ``s`` and read with a delay of 2.5 steps is seen at
  step ``s + 3``: it has arrived only once the whole delay has passed.
* ``nearest``: lag ``round(k)`` (halves go to the earlier sample, as
  ``previous`` does).
* ``linear``: ``(1 - f) * v[floor] + f * v[ceil]`` with ``f = k - floor(k)``.
* ``exp_decay``: the earlier sample decayed over the time since it,
  ``v[ceil] * exp(-(ceil(k) - k) * dt / tau)`` (for traces).

``tolerance``: a lag within ``tolerance`` of an integer is read at that
integer exactly, so a delay of ``2.9999999`` steps is not rounded up to 3
by ``previous``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["INTERPOLATIONS", "interpolate", "snap_lags"]

INTERPOLATIONS = ("previous", "nearest", "linear", "exp_decay")


def snap_lags(lags: Tensor, tolerance: float) -> Tensor:
    """Lags within ``tolerance`` of an integer replaced by that integer."""
    rounded = torch.round(lags)
    return torch.where((lags - rounded).abs() <= tolerance, rounded, lags)


def interpolate(
    earlier: Tensor,
    later: Tensor,
    fraction: Tensor,
    method: str,
    *,
    dt: float = 1.0,
    tau: float | None = None,
) -> Tensor:
    """Combine the samples around a read.

    ``earlier`` is the sample at lag ``ceil(k)``, ``later`` at ``floor(k)``,
    ``fraction = k - floor(k)`` in ``[0, 1)``. For ``previous`` and ``nearest``
    the caller has already chosen the lag, so ``earlier is later`` may hold.
    """
    if method == "linear":
        weight = fraction.to(earlier.dtype)
        return later * (1 - weight) + earlier * weight
    if method == "exp_decay":
        if tau is None or not tau > 0:
            raise ValueError("tau: exp_decay interpolation needs a time constant > 0")
        gap = torch.where(fraction > 0, 1 - fraction, torch.zeros_like(fraction))
        return earlier * torch.exp(-gap.to(earlier.dtype) * (dt / tau))
    if method in ("previous", "nearest"):
        return earlier
    raise ValueError(f"interpolation: expected one of {list(INTERPOLATIONS)}, got {method!r}")


def chosen_lag(lags: Tensor, method: str) -> tuple[Tensor, Tensor]:
    """Integer lags to gather for a method: ``(earlier, later)`` (long tensors)."""
    if method == "previous":
        index = torch.ceil(lags).long()
        return index, index
    if method == "nearest":
        # halves go to the earlier sample, consistent with ``previous``
        index = torch.floor(lags + 0.5).long()
        return index, index
    if method in ("linear", "exp_decay"):
        return torch.ceil(lags).long(), torch.floor(lags).long()
    raise ValueError(f"interpolation: expected one of {list(INTERPOLATIONS)}, got {method!r}")


def check_method(method: str) -> str:
    if method not in INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {list(INTERPOLATIONS)}, got {method!r}")
    return method


def is_integral(value: float) -> bool:
    return math.isfinite(value) and float(value).is_integer()
