"""The sums over spikes of a one-sample STDP window in one native call (the compiled part of
:func:`~plastic.functional.stdp_engine.pre_event_window_product`).

For a window of ``T`` steps with bool spikes ``s_pre[u, i]`` and
``s_post[t, o]`` and the window filter ``F`` (``filter_columns [T + 1, T]`` of
:func:`~plastic.functional.stdp_engine.pre_event_tables`,
``F[u, t]`` the weight of step ``u``'s presynaptic spikes in the filtered row
of step ``t``, row ``T`` the carried trace's), the product needs::

    rows[u, o]         = sum_{t: s_post[t, o]} F[u, t]              (u <= T; t increasing)
    post_decayed[o]    = sum_{t: s_post[t, o]} a_post^(T-1-t)        (t increasing)
    main[i, o]         = sum_{u: s_pre[u, i]} rows[u, o]             (u increasing)
    sums[i, k]         = sum_{u: s_pre[u, i]} carry_columns[u, k]    (u increasing)

The torch form (:func:`~plastic.functional.stdp_engine.pre_event_bags`'s
plain path) finds the events and runs two ``index_add_`` and two
``embedding_bag`` calls, a dozen operations with a fresh weight-sized
output. :func:`pre_event_sums` does the same sums, each started from zero
and added in the same order, so the same values bit for bit, in one pass
over the spikes that writes ``main`` into memory the caller keeps (the
updater's accumulator: no fresh weight-sized allocation, whose page faults
cost as much as the sums on a cold cache). It is plain Python over numpy
arrays that numba compiles (:func:`compiled_pre_event_sums`); uncompiled it
still runs, slowly (what the tests check where numba is not installed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy comes with the usual torch installs; numba needs it
    np = None  # type: ignore[assignment]  # None: no numba either (compiled_pre_event_sums gives None)
import torch
from torch import Tensor

from plastic.functional.event_forward import bag_sum_rows
from plastic.functional.events import event_indices, event_positions_by_column

if TYPE_CHECKING:
    from plastic.functional.stdp_engine import PreEventTables

__all__ = ["compiled_pre_event_sums", "pre_event_bags", "pre_event_sums", "sums_write_into"]


def sums_write_into(out: Tensor) -> bool:
    """Whether :func:`pre_event_bags` writes its ``main`` into ``out`` (the compiled sums run: numba
    installed, a contiguous CPU tensor without a graph); elsewhere it makes a new tensor."""
    return (
        out.is_cpu
        and out.is_contiguous()
        and out.dtype in (torch.float32, torch.float64)
        and not out.requires_grad
        and compiled_pre_event_sums() is not None
    )


def pre_event_bags(
    spikes_pre: Tensor, spikes_post: Tensor, tables: PreEventTables, out: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The window's sums of the module docstring: ``(rows [T + 2, N_out], post_decayed [N_out], main
    [N_in, N_out], sums [N_in, 2])``, row ``T + 1`` of ``rows`` zero.

    ``spikes_pre`` ``[T, N_in]`` and ``spikes_post`` ``[T, N_out]`` bool,
    ``tables`` those of the window
    (:func:`~plastic.functional.stdp_engine.pre_event_tables`), not checked.
    ``main`` is written into ``out`` (a contiguous ``[N_in, N_out]`` tensor
    of the tables' dtype) where the compiled sums run
    (:func:`sums_write_into`); elsewhere it is a new tensor, from torch
    operations that give the same values.
    """
    steps, inputs = spikes_pre.shape
    outputs = spikes_post.shape[1]
    filter_columns, post_powers, carry_columns = tables.filter_columns, tables.post_powers, tables.carry_columns
    dtype, device = filter_columns.dtype, filter_columns.device
    kernel = compiled_pre_event_sums() if device.type == "cpu" else None
    if kernel is not None and (out is None or (out.dtype == dtype and sums_write_into(out))):
        rows = torch.zeros(steps + 2, outputs, dtype=dtype)
        post_decayed = torch.empty(outputs, dtype=dtype)
        main = torch.empty(inputs, outputs, dtype=dtype) if out is None else out
        sums = torch.empty(inputs, 2, dtype=dtype)
        kernel(
            spikes_pre.numpy(), spikes_post.numpy(), tables.filter_rows.numpy(), post_powers.numpy(),
            carry_columns.numpy(), rows.numpy(), post_decayed.numpy(), main.numpy(), sums.numpy(),
        )  # fmt: skip
        return rows, post_decayed, main, sums
    # postsynaptic side: each post event (t, o) adds the filter column of step t into column o
    rows = torch.zeros(steps + 2, outputs, dtype=dtype, device=device)
    post_decayed = torch.zeros(outputs, dtype=dtype, device=device)
    post_step, post_index = event_indices(spikes_post)  # (t, o) of each post event, t increasing
    if post_step.numel():
        rows[: steps + 1].index_add_(1, post_index, filter_columns.index_select(1, post_step))
        post_decayed.index_add_(0, post_index, post_powers.index_select(0, post_step))
    # presynaptic side: the events input by input (steps increasing: the order of each input's sum)
    by_input = event_positions_by_column(spikes_pre)  # i * T + u
    step = by_input.remainder(steps)
    starts = torch.searchsorted(by_input, tables.column_starts)  # input i's first event: at or after i * T
    # one bag per input (an input without spikes sums to zero)
    return rows, post_decayed, bag_sum_rows(rows, step, starts), bag_sum_rows(carry_columns, step, starts)


def pre_event_sums(
    spikes_pre: Any,
    spikes_post: Any,
    filter_rows: Any,
    post_powers: Any,
    carry_columns: Any,
    rows: Any,
    post_decayed: Any,
    main: Any,
    sums: Any,
) -> None:
    """Write the window's sums (the module docstring) into ``rows``, ``post_decayed``, ``main`` and ``sums``.

    ``spikes_pre`` ``[T, N_in]`` and ``spikes_post`` ``[T, N_out]`` bool;
    ``filter_rows`` ``[T, T + 1]`` (the filter's transpose, ``F[u, t]`` at
    ``[t, u]``), ``post_powers`` ``[T]`` and ``carry_columns`` ``[T, 2]`` of
    one float dtype; the outputs of that dtype: ``rows`` ``[T + 2, N_out]``
    (rows ``0..T`` written, row ``T + 1`` left as it is), ``post_decayed``
    ``[N_out]``, ``main`` ``[N_in, N_out]`` and ``sums`` ``[N_in, 2]``, each
    overwritten whole. Shapes are not checked.
    """
    steps, inputs = spikes_pre.shape
    outputs = spikes_post.shape[1]
    # postsynaptic side, in the transposed layout (each event adds a contiguous filter row), t
    # increasing at each neuron; then laid out as rows
    rows_transposed = np.zeros((outputs, steps + 1), dtype=rows.dtype)
    for o in range(outputs):
        post_decayed[o] = 0.0
    for t in range(steps):
        for o in range(outputs):
            if spikes_post[t, o]:
                for u in range(steps + 1):
                    rows_transposed[o, u] += filter_rows[t, u]
                post_decayed[o] += post_powers[t]
    for u in range(steps + 1):
        for o in range(outputs):
            rows[u, o] = rows_transposed[o, u]
    # presynaptic events grouped by input, steps increasing within each (a counting sort, the spikes
    # read in their own order)
    starts = np.zeros(inputs + 1, dtype=np.int64)
    for u in range(steps):
        for i in range(inputs):
            starts[i + 1] += spikes_pre[u, i]
    for i in range(inputs):
        starts[i + 1] += starts[i]
    event_steps = np.empty(starts[inputs], dtype=np.int64)
    filled = starts[:inputs].copy()
    for u in range(steps):
        for i in range(inputs):
            if spikes_pre[u, i]:
                event_steps[filled[i]] = u
                filled[i] += 1
    # input by input: the rows of its spikes' steps, u increasing, each input's row written once. The
    # first row is copied (0 + x is x: a sum from +0 is never -0, so rows holds no -0); two-dimensional
    # indexing, which numba vectorises about twice as fast as row views
    for i in range(inputs):
        first, last = starts[i], starts[i + 1]
        sums[i, 0] = 0.0
        sums[i, 1] = 0.0
        if first == last:
            for o in range(outputs):
                main[i, o] = 0.0
            continue
        u = event_steps[first]
        for o in range(outputs):
            main[i, o] = rows[u, o]
        for e in range(first + 1, last):
            u = event_steps[e]
            for o in range(outputs):
                main[i, o] += rows[u, o]
        for e in range(first, last):
            u = event_steps[e]
            sums[i, 0] += carry_columns[u, 0]
            sums[i, 1] += carry_columns[u, 1]


@functools.cache
def compiled_pre_event_sums() -> Callable[..., None] | None:
    """:func:`pre_event_sums` compiled by numba (``plastic[fast]``), or None where numba is not installed.

    Compiled once per process and argument types and cached on disk as
    :func:`~plastic.functional.fused_step.compiled_linear_neuron_step` is.
    """
    try:
        import numba
    except ImportError:
        return None
    try:
        return _compile(numba, cache=True)
    except RuntimeError:  # numba finds no directory to cache in ("no locator available")
        return _compile(numba, cache=False)


def _compile(numba: Any, cache: bool) -> Callable[..., None]:
    compiled: Callable[..., None] = numba.njit(cache=cache)(pre_event_sums)
    return compiled
