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
page faults cost as much as the sums on a cold cache). Its sums start from
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
    # postsynaptic side, in the transposed layout (each event adds a contiguous filter row), t
    # increasing at each neuron; then laid out as rows
    rows_transposed = np.zeros((outputs, steps + 1), dtype=change.dtype)
    for o in range(outputs):
        post_decayed[o] = 0.0
    for t in range(steps):
        for o in range(outputs):
            if spikes_post[t, o]:
                for u in range(steps + 1):
                    rows_transposed[o, u] += filter_rows[t, u]
                post_decayed[o] += post_powers[t]
    rows = np.empty((steps + 1, outputs), dtype=change.dtype)
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
    # input by input: the rows of its spikes' steps, u increasing, then the rank-2 term, each input's
    # row written once. The first row is copied (0 + x is x: a sum from +0 is never -0, so rows holds
    # no -0); two-dimensional indexing, which numba vectorises about twice as fast as row views
    for i in range(inputs):
        first, last = starts[i], starts[i + 1]
        sums[i, 0] = 0.0
        sums[i, 1] = 0.0
        for e in range(first, last):
            u = event_steps[e]
            sums[i, 0] += carry_columns[u, 0]
            sums[i, 1] += carry_columns[u, 1]
        if first == last:
            for o in range(outputs):
                change[i, o] = 0.0
        else:
            u = event_steps[first]
            for o in range(outputs):
                change[i, o] = rows[u, o]
            for e in range(first + 1, last):
                u = event_steps[e]
                for o in range(outputs):
                    change[i, o] += rows[u, o]
        # the carried terms: x_pre(-1)[i] r[o] (row T), then z[i] (-eta_pre x_post(-1)[o])
        entering = trace_pre[i]
        for o in range(outputs):
            change[i, o] += entering * rows[steps, o]
        if has_carried_post:
            seen_value = sums[i, 1]
            for o in range(outputs):
                change[i, o] += seen_value * carried_post[o]


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
