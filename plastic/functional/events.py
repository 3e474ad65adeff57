"""Where the events of a spike tensor are: the positions or indices of its True entries.

The event-driven products and forwards (:mod:`plastic.functional.pair_products`,
:mod:`plastic.functional.stdp_engine`, :mod:`plastic.functional.pairing_schemes`,
:mod:`plastic.functional.event_forward`) do work only where spikes are; they find
them here. Each function returns what ``torch.nonzero`` would (same values, same
order); on CPU the scan is numpy's when numpy is installed, several times faster
on the sparse windows these products see.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:  # optional: a faster scan for the indices of events on CPU (see event_indices)
    import numpy as _numpy
except ImportError:  # pragma: no cover - numpy comes with the usual torch installs
    _numpy = None  # type: ignore[assignment]  # None marks numpy absent; event_indices checks before use

__all__ = ["event_indices", "event_positions", "event_positions_by_column"]


def event_positions(events: Tensor) -> Tensor:
    """The flat (row-major) positions of the True entries of a bool tensor, int64, increasing.

    ``torch.flatnonzero``'s result; on CPU from numpy's ``flatnonzero`` (see
    :func:`event_indices`).
    """
    if _numpy is None or not events.is_cpu or events.dtype != torch.bool:
        return events.reshape(-1).nonzero().view(-1)
    return torch.from_numpy(_numpy_positions(events))


def _numpy_positions(events: Tensor) -> _numpy.ndarray:
    """:func:`event_positions` of a CPU bool tensor as a numpy int64 array (numpy installed)."""
    # np.flatnonzero's own steps (ravel: the row-major order, a copy only where the layout needs
    # one), without its wrappers: a single step's spikes cost ~1.5 us instead of ~3.4
    positions = events.numpy().ravel().nonzero()[0]
    if positions.dtype != _numpy.int64:
        positions = positions.astype(_numpy.int64)
    return positions


def event_positions_by_column(events: Tensor) -> Tensor:
    """The True entries of a 2-d bool tensor ``[R, C]`` column by column: ``c * R + r``, increasing.

    The flat positions of ``events.T`` (:func:`event_positions` of the
    transpose), so the events come grouped by column, rows increasing within
    each. On CPU numpy's ``nonzero`` of a contiguous copy of the transpose (a
    sort of the row-major positions costs several times more).
    """
    if _numpy is None or not events.is_cpu or events.dtype != torch.bool:
        return events.T.contiguous().reshape(-1).nonzero().view(-1)
    positions = _numpy.ascontiguousarray(events.numpy().T).ravel().nonzero()[0]
    if positions.dtype != _numpy.int64:
        positions = positions.astype(_numpy.int64)
    return torch.from_numpy(positions)


def event_indices(events: Tensor) -> tuple[Tensor, ...]:
    """The indices of the True entries of a bool tensor, one int64 tensor per dimension.

    The same as ``events.nonzero(as_tuple=True)`` (row-major order). On CPU
    the flat positions come from numpy's ``flatnonzero`` when numpy is
    installed (about 3x faster than ``torch.nonzero`` on the sparse spike
    windows of the event-driven products, measured single-threaded) and are
    split into per-dimension indices here, by numpy's ``divmod`` (one call
    per dimension instead of three torch ops).
    """
    if _numpy is None or events.device.type != "cpu" or events.dtype != torch.bool or events.ndim == 0:
        return events.nonzero(as_tuple=True)
    flat = _numpy_positions(events)
    indices = []
    for size in reversed(events.shape[1:]):
        flat, index = _numpy.divmod(flat, size)
        indices.append(torch.from_numpy(index))
    indices.append(torch.from_numpy(flat))
    return tuple(reversed(indices))
