"""The change of a one-sample STDP window in one native call (the compiled path of
:func:`~plastic.functional.stdp_engine.pre_event_window_product`).

For a window of ``T`` steps with bool spikes ``s_pre[u, i]`` and
``s_post[t, o]``, the window filter ``F`` (``filter_columns [T + 1, T]`` of
:func:`~plastic.functional.stdp_engine.pre_event_tables`, ``F[u, t]`` the
weight of step ``u``'s presynaptic spikes in the filtered row of step ``t``,
row ``T`` the carried trace's), the carried traces ``x_pre(-1)`` and
``x_post(-1)``, the change of an input-major weight is::

    rows[u, o]       = sum_{t: s_post[t, o]} F[u, t]               (u <= T; t increasing)
    post_decayed[o]  = sum_{t: s_post[t, o]} a_post^(T-1-t)         (t increasing)
    sums[i, k]       = sum_{u: s_pre[u, i]} carry_columns[u, k]     (u increasing; z = sums[:, 1])
    main[i, o]       = sum_{u: s_pre[u, i]} rows[u, o]              (u increasing)
    change[i, o]     = main[i, o] + x_pre(-1)[i] rows[T, o] + z[i] (-eta_pre x_post(-1)[o])

The torch form (:func:`pre_event_change` without numba) finds the events
and runs two ``index_add_``, two ``embedding_bag`` and one rank-2 ``addmm``,
a dozen operations with a fresh weight-sized output and a second pass over
it. :func:`pre_event_sums` computes all of it in one pass over the spikes
that writes each input's row of the change once, into memory the caller
keeps (the updater's accumulator: no fresh weight-sized allocation, whose
page faults cost as much as the sums on a cold cache). Where at most half the
neurons fire it sums over their columns alone; it reads each input's spikes
from packed bits, without a branch per step. Its sums start from
zero and add in the order above, the same values as the torch form's bit for
bit; the carried terms are added as ``(main + x_pre r) + z q``, each
product and sum rounded in the dtype, where ``addmm`` has BLAS's own order:
the two forms' changes agree to rounding. It is plain Python over numpy
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
from plastic.functional.numba_kernels import numba_compiled

if TYPE_CHECKING:
    from plastic.functional.stdp_engine import PreEventTables

__all__ = ["compiled_pre_event_sums", "pre_event_change", "pre_event_sums", "sums_write_into"]

# the lowest set bit b of a 32-bit word is at _BIT_OF_DE_BRUIJN_INDEX[((2^b * _DE_BRUIJN) mod 2^32) >> 27]
# (a de Bruijn sequence: each b gives another top five bits); products below 2^59, so no int64 overflow
_DE_BRUIJN = 0x077CB531
_BIT_OF_DE_BRUIJN_INDEX: Any = (
    None
    if np is None
    else np.array(sorted(range(32), key=lambda bit: ((1 << bit) * _DE_BRUIJN & 0xFFFFFFFF) >> 27), dtype=np.int64)
)


def sums_write_into(out: Tensor) -> bool:
    """Whether :func:`pre_event_change` takes the compiled sums for ``out`` (the compiled sums run: numba
    installed, a contiguous float32 or float64 CPU tensor without a graph); elsewhere it makes a new tensor."""
    return out.is_contiguous() and not out.requires_grad and _compiled_sums(out.dtype, out.device) is not None


def _compiled_sums(dtype: torch.dtype, device: torch.device) -> Callable[..., None] | None:
    """:func:`compiled_pre_event_sums` for tables of ``dtype`` on ``device``: float32 and float64 on the CPU
    (numba has no float16 or bfloat16 arithmetic), else None."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return None
    return compiled_pre_event_sums()


def pre_event_change(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    tables: PreEventTables,
    trace_pre: Tensor,
    carried_post: Tensor | None,
    out: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The window's change and sums (the module docstring): ``(change [N_in, N_out], post_decayed
    [N_out], sums [N_in, 2])``.

    ``spikes_pre`` ``[T, N_in]`` and ``spikes_post`` ``[T, N_out]`` bool,
    ``tables`` those of the window
    (:func:`~plastic.functional.stdp_engine.pre_event_tables`),
    ``trace_pre`` ``[N_in]`` the carried ``x_pre(-1)``, ``carried_post``
    ``[N_out]`` the carried ``-eta_pre x_post(-1)`` or None (no carried
    postsynaptic trace), of the tables' dtype and device; not checked.
    ``change`` is ``out`` (a contiguous ``[N_in, N_out]`` tensor of that
    dtype) where given, else a new tensor.

    Where the compiled sums run (:func:`sums_write_into`) the rank-2 term is
    added as each input's row is written, ``(main + x_pre r) + z q``, each
    product and sum rounded in the dtype; elsewhere by ``addmm`` (BLAS, its
    own order), so the two paths agree to rounding. Every sum over spikes is
    the same bit for bit in both.
    """
    steps, inputs = spikes_pre.shape
    outputs = spikes_post.shape[1]
    filter_columns, post_powers, carry_columns = tables.filter_columns, tables.post_powers, tables.carry_columns
    dtype, device = filter_columns.dtype, filter_columns.device
    kernel = _compiled_sums(dtype, device)
    if kernel is not None and (out is None or (out.dtype == dtype and sums_write_into(out))):
        post_decayed = torch.empty(outputs, dtype=dtype)
        change = torch.empty(inputs, outputs, dtype=dtype) if out is None else out
        sums = torch.empty(inputs, 2, dtype=dtype)
        kernel(
            spikes_pre.numpy(), spikes_post.numpy(), tables.filter_rows.numpy(), post_powers.numpy(),
            carry_columns.numpy(), trace_pre.detach().numpy(),
            (post_powers if carried_post is None else carried_post.detach()).numpy(),
            carried_post is not None, post_decayed.numpy(), change.numpy(), sums.numpy(),
        )  # fmt: skip
        return change, post_decayed, sums
    # rows [T + 2, N_out]: row u < T is Q[u] (the sum of filter rows over the post events), row T is
    # r, row T + 1 the carried post factor: rows T and T + 1 are the rank-2 term's right side as they are
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
    main = bag_sum_rows(rows, step, starts)
    sums = bag_sum_rows(carry_columns, step, starts)
    if carried_post is None:
        left, right = trace_pre.view(inputs, 1), rows[steps : steps + 1]
    else:
        rows[steps + 1].copy_(carried_post)
        left, right = torch.stack([trace_pre, sums[:, 1]], 1), rows[steps:]
    # the rank-2 term added in place into the bags' output, or as out is written (one pass; measured
    # faster than copying main there and adding in place)
    change = main.addmm_(left, right) if out is None else torch.addmm(main, left, right, out=out)
    return change, post_decayed, sums


def pre_event_sums(
    spikes_pre: Any,
    spikes_post: Any,
    filter_rows: Any,
    post_powers: Any,
    carry_columns: Any,
    trace_pre: Any,
    carried_post: Any,
    has_carried_post: bool,
    post_decayed: Any,
    change: Any,
    sums: Any,
) -> None:
    """Write the window's change and sums (the module docstring) into ``post_decayed``, ``change`` and ``sums``.

    ``spikes_pre`` ``[T, N_in]`` and ``spikes_post`` ``[T, N_out]`` bool;
    ``filter_rows`` ``[T, T + 1]`` (the filter's transpose, ``F[u, t]`` at
    ``[t, u]``), ``post_powers`` ``[T]``, ``carry_columns`` ``[T, 2]``,
    ``trace_pre`` ``[N_in]`` and ``carried_post`` ``[N_out]`` (read only
    where ``has_carried_post``) of one float dtype; the outputs of that
    dtype, ``post_decayed`` ``[N_out]``, ``change`` ``[N_in, N_out]`` and
    ``sums`` ``[N_in, 2]``, each overwritten whole. Shapes are not checked.
    """
    steps, inputs = spikes_pre.shape
    outputs = spikes_post.shape[1]
    zero = change.dtype.type(0)
    # the neurons that fire in the window: only their columns of the rows are not zero (one vectorised
    # pass over the spikes)
    fired = np.zeros(outputs, dtype=np.bool_)
    for t in range(steps):
        for o in range(outputs):
            fired[o] |= spikes_post[t, o]
    column = np.empty(outputs, dtype=np.int64)  # a fired neuron's column of the rows
    # the neuron of each column, increasing; unsigned, as an index needs no fix-up for negative values
    active = np.empty(outputs, dtype=np.uint64)
    columns = 0
    for o in range(outputs):
        post_decayed[o] = zero
        if fired[o]:
            column[o] = columns
            active[columns] = o
            columns += 1
    # the rows of the fired neurons alone where at most half fire (the sums then run over fewer
    # columns, in the cache, and are written into each input's row once); else all columns
    compact = 2 * columns <= outputs
    if not compact:
        columns = outputs
        for o in range(outputs):
            column[o] = o
            active[o] = o
    # postsynaptic side, in the transposed layout (each event adds a contiguous filter row), t
    # increasing at each neuron. Each step's events are found sixteen neurons at a time (most groups
    # have none) and written without a branch where a group has one (a spike's place is unpredictable)
    rows_transposed = np.zeros((columns, steps + 1), dtype=change.dtype)
    step_events = np.empty(outputs, dtype=np.int64)
    whole_groups = outputs - outputs % 16
    for t in range(steps):
        found = 0
        for group in range(0, whole_groups, 16):
            hit = False
            for o in range(group, group + 16):
                hit |= spikes_post[t, o]
            if hit:
                for o in range(group, group + 16):
                    step_events[found] = o  # kept only where o spiked
                    found += spikes_post[t, o]
        for o in range(whole_groups, outputs):
            step_events[found] = o
            found += spikes_post[t, o]
        for event in range(found):
            o = step_events[event]
            k = column[o]
            for u in range(steps + 1):
                rows_transposed[k, u] += filter_rows[t, u]
            post_decayed[o] += post_powers[t]
    # compact rows padded with zero columns to a multiple of 16 (the vectorised sums then have no
    # scalar remainder; the padding is never written out)
    width = (columns + 15) // 16 * 16 if compact else columns
    rows = np.zeros((steps + 1, width), dtype=change.dtype)
    for u in range(steps + 1):
        for k in range(columns):
            rows[u, k] = rows_transposed[k, u]
    # r over all outputs (zero where a neuron did not fire) and the carried factor over the columns
    entering_row = np.zeros(outputs, dtype=change.dtype)
    carried_compact = np.zeros(width, dtype=change.dtype)
    for k in range(columns):
        entering_row[active[k]] = rows[steps, k]
        if has_carried_post:
            carried_compact[k] = carried_post[active[k]]
    # each input's spikes as the bits of 32-step words (packed by a pass vectorised over the inputs;
    # int32, half the bytes of int64 to rewrite per step), read back lowest bit first (u increasing)
    # by a de Bruijn multiply: no branch per step, where at 5 % a branch mispredicts at most of the
    # spikes
    words_per_input = (steps + 31) // 32
    spike_bits = np.zeros((words_per_input, inputs), dtype=np.int32)
    for u in range(steps):
        word = u >> 5
        bit = u & 31
        for i in range(inputs):
            spike_bits[word, i] |= np.int32(spikes_pre[u, i]) << bit
    # input by input: the sums of its spikes' rows from zero, u increasing (0 + x is x: a sum from +0
    # is never -0, so rows holds no -0), then the input's row of the change written with the carried
    # terms, x_pre(-1)[i] r[o] (row T) then z[i] (-eta_pre x_post(-1)[o]), each product and sum rounded
    # in the dtype (no fused multiply-add: numba does not contract)
    main = np.empty(width, dtype=change.dtype)
    for i in range(inputs):
        for k in range(width):
            main[k] = zero
        sum_entering = zero
        sum_seen = zero
        for word in range(words_per_input):
            remaining = np.int64(spike_bits[word, i]) & 0xFFFFFFFF  # bit 31 read as 2^31, not the sign
            while remaining != 0:
                lowest = remaining & -remaining
                u = 32 * word + _BIT_OF_DE_BRUIJN_INDEX[((lowest * _DE_BRUIJN) & 0xFFFFFFFF) >> 27]
                remaining ^= lowest
                sum_entering += carry_columns[u, 0]
                sum_seen += carry_columns[u, 1]
                for k in range(width):
                    main[k] += rows[u, k]
        sums[i, 0] = sum_entering
        sums[i, 1] = sum_seen
        entering = trace_pre[i]
        if compact:
            # the fired neurons' values over the compact columns, written over the row after the
            # others' values fill it (main and r zero there, as in the plain rows)
            if has_carried_post:
                for k in range(width):
                    main[k] = (main[k] + entering * rows[steps, k]) + sum_seen * carried_compact[k]
                for o in range(outputs):
                    change[i, o] = (zero + entering * entering_row[o]) + sum_seen * carried_post[o]
            else:
                for k in range(width):
                    main[k] = main[k] + entering * rows[steps, k]
                for o in range(outputs):
                    change[i, o] = zero + entering * entering_row[o]
            for k in range(columns):
                change[i, active[k]] = main[k]
        elif has_carried_post:
            for o in range(outputs):
                change[i, o] = (main[o] + entering * entering_row[o]) + sum_seen * carried_post[o]
        else:
            for o in range(outputs):
                change[i, o] = main[o] + entering * entering_row[o]


@functools.cache
def compiled_pre_event_sums() -> Callable[..., None] | None:
    """:func:`pre_event_sums` compiled by numba (``plastic[fast]``), or None where numba is not installed.

    Compiled once per process and argument types, and cached on disk by
    numba where it can (:func:`~plastic.functional.numba_kernels.numba_compiled`).
    """
    return numba_compiled(_compile)


def _compile(numba: Any, cache: bool) -> Callable[..., None]:
    compiled: Callable[..., None] = numba.njit(cache=cache)(pre_event_sums)
    return compiled
