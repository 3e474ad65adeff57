"""The one-product engine of :func:`plastic.functional.stdp.stdp_window_net`: the filtered presynaptic window.

All-to-all pair STDP over a window is ``sum_t s_post(t)^T filtered(t)`` plus a
rank-``B`` correction (the equation is in :func:`~plastic.functional.stdp.stdp_window_net`), with::

    filtered[t] = eta_post * x_pre(t) - eta_pre * A_post * u(t)
    x_pre(t)    = a_pre * x_pre(t-1) + A_pre * s_pre(t)        (x_pre(-1) = trace_pre)
    u(t)        = s_pre(t) + a_post * u(t+1)                    (u(T) = 0)

This module computes ``filtered`` three ways, all without autograd: two
recurrences over time (:func:`filtered_presynaptic`), one matrix product of
the recurrences in closed form for small windows
(:func:`filtered_presynaptic_matrix`, :func:`window_filter_matrix`), and for
large dense windows a block of steps at a time, multiplied with the
postsynaptic spikes as it goes so the window is never whole
(:func:`blocked_window_product`, :func:`filter_block_matrices`,
:func:`block_event_matrices`). The block sizes are arguments: the rule's
tuning constants live in :mod:`plastic.functional.stdp`, next to their measurements.

The product can also be taken from the presynaptic side
(:func:`pre_event_window_product`): the change of each input's row is a sum
of rows gathered at that input's spikes, so it is written input by input, in
the layout of an input-major weight, and the filter is applied to the few
postsynaptic events rather than to the whole presynaptic window.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from plastic.functional.events import event_indices
from plastic.functional.pair_products import Method, use_sparse
from plastic.functional.traces import spike_values
from plastic.functional.window_bags import pre_event_change, sums_write_into

__all__ = [
    "CONVERSION_CHUNK_ELEMENTS",
    "PRE_EVENT_MAX_STEPS",
    "PRE_EVENT_MAX_WEIGHT",
    "PreEventProduct",
    "PreEventTables",
    "block_event_matrices",
    "blocked_window_product",
    "decay_powers",
    "filter_block_matrices",
    "filtered_presynaptic",
    "filtered_presynaptic_matrix",
    "pre_event_tables",
    "pre_event_window_product",
    "pre_event_window_update",
    "readable_spikes",
    "time_weighted_sum",
    "uses_pre_event_product",
    "window_filter_matrix",
]

Scalar = float | Tensor

#: Steps of a spike window converted to floating point at a time (elements).
CONVERSION_CHUNK_ELEMENTS = 1 << 20


def readable_spikes(spikes: Tensor) -> Tensor:
    """Bool spikes as ``uint8`` bytes of the same storage (0 and 1): copying those into a
    floating buffer is vectorised where the bool conversion is not (~7x faster on CPU)."""
    return spikes.view(torch.uint8) if spikes.dtype == torch.bool else spikes


def time_weighted_sum(spikes: Tensor, weights: Tensor) -> Tensor:
    """``sum_t weights[t] * spikes[t]`` for a window ``[T, ...]`` of spikes of any dtype.

    Spikes of another dtype than ``weights`` (bool, as cells record them) are
    converted a few steps at a time into one reused buffer rather than as a
    whole window: a window-sized floating copy costs more in fresh pages than
    the sum itself.
    """
    steps = spikes.shape[0]
    flat = readable_spikes(spikes).reshape(steps, math.prod(spikes.shape[1:]))
    if flat.dtype == weights.dtype:
        return (weights @ flat).reshape(spikes.shape[1:])
    per_step = flat.shape[1]
    chunk = max(1, min(steps, CONVERSION_CHUNK_ELEMENTS // max(per_step, 1)))
    buffer = weights.new_empty(chunk, per_step)
    result = weights.new_zeros(per_step)
    for start in range(0, steps, chunk):
        stop = min(steps, start + chunk)
        part = buffer[: stop - start]
        part.copy_(flat[start:stop])
        result.addmv_(part.T, weights[start:stop])
    return result.reshape(spikes.shape[1:])


@functools.lru_cache(maxsize=64)
def decay_powers(decay: float, steps: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``a^e`` for ``e = 0..T`` (``0^0 = 1``, so a zero decay needs no special case).

    Cached (a trainer's windows repeat them): read-only, never written.
    """
    return torch.pow(
        torch.tensor(decay, dtype=dtype, device=device), torch.arange(0, steps + 1, dtype=dtype, device=device)
    )


def filtered_presynaptic_matrix(
    spikes_pre: Tensor,
    trace_pre: Tensor,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`filtered_presynaptic` as one matrix product (the recurrences in closed form)::

    filtered[t] = sum_u (eta_post A_pre a_pre^(t-u) [u <= t] - eta_pre A_post a_post^(u-t) [u >= t]) s(u)
                  + eta_post a_pre^(t+1) x_pre(-1)
    last_pre    = sum_u A_pre a_pre^(T-1-u) s(u) + a_pre^T x_pre(-1)
    seen_by_carried = sum_u a_post^(u+1) s(u)
    """
    steps = spikes_pre.shape[0]
    dtype, device = trace_pre.dtype, trace_pre.device
    spikes = spike_values(spikes_pre, dtype).reshape(steps, -1)  # [T, B*N]
    matrix, entering, carry_scale = window_filter_matrix(
        steps, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device
    )
    out = matrix @ spikes
    carried = trace_pre.reshape(-1)
    filtered = out[:steps]
    filtered.addr_(entering, carried)  # eta_post a_pre^(t+1) x_pre(-1)
    last_pre = out[steps].add_(carried, alpha=carry_scale)
    return filtered.view(spikes_pre.shape), last_pre.view(trace_pre.shape), out[steps + 1].view(trace_pre.shape)


def block_event_matrices(
    events: Tensor, rows_per_block: int, outputs: int, dtype: torch.dtype
) -> Callable[[int, int], Tensor | None]:
    """The transposed events of each block of rows as CSR matrices ``[O, rows]``, from one ``nonzero``.

    ``events`` ``[R, O]`` (bool or ``{0, 1}``); block ``j`` holds rows
    ``j * rows_per_block ..``. One ``nonzero`` over the whole window, one
    stable sort by ``(block, o)`` and one count give every block's CSR
    arrays; the returned function builds block ``j``'s matrix (``None``: no
    event in it).
    """
    fired = events if events.dtype == torch.bool else events != 0
    row, column = event_indices(fired)
    blocks = -(-events.shape[0] // rows_per_block)
    block = torch.div(row, rows_per_block, rounding_mode="floor")
    key = block * outputs + column
    order = torch.sort(key, stable=True).indices
    local_rows = (row - block * rows_per_block)[order]
    counts = torch.bincount(key, minlength=blocks * outputs).view(blocks, outputs)
    crow = torch.zeros(blocks, outputs + 1, dtype=torch.int64, device=events.device)
    torch.cumsum(counts, 1, out=crow[:, 1:])
    ends = torch.cumsum(crow[:, -1], 0).tolist()
    ones = torch.ones(local_rows.numel(), dtype=dtype, device=events.device)

    def matrix(index: int, rows: int) -> Tensor | None:
        start = ends[index - 1] if index else 0
        stop = ends[index]
        if stop == start:
            return None
        with warnings.catch_warnings():
            # CSR support is flagged beta; the invariants hold by construction
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                crow[index], local_rows[start:stop], ones[start:stop], size=(outputs, rows), check_invariants=False
            )

    return matrix


@functools.lru_cache(maxsize=64)
def window_filter_matrix(
    steps: int,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor, float]:
    """The whole window as one block of :func:`filter_block_matrices` (no later steps: ``u_next = 0``).

    Returns ``([T+2, T] rows: the filtered steps, x_pre(T-1), a_post * u(0)``; the
    column of ``x_pre(-1)`` in the filtered steps; its factor ``a_pre^T`` in
    ``x_pre(T-1)``). Cached (read-only tensors): a trainer's windows repeat these.
    """
    matrix, carry_pre, carry_post = filter_block_matrices(
        steps, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device
    )
    stacked = torch.cat(
        [matrix[:, :steps], carry_pre[:steps].unsqueeze(0), carry_post[:steps].unsqueeze(0) * decay_post]
    )
    return stacked, matrix[:, steps].clone(), float(decay_pre) ** steps


@functools.lru_cache(maxsize=64)
def filter_block_matrices(
    length: int,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor, Tensor]:
    """The recurrences of :func:`filtered_presynaptic` over ``L`` steps in closed form.

    For a block of steps ``t0 .. t0+L-1``, with ``x_in = x_pre(t0 - 1)`` and
    ``u_next = u(t0 + L)`` (the anti-causal sum of the later steps)::

        filtered[t0 + i] = sum_j M[i, j] s(t0 + j) + M[i, L] x_in + M[i, L+1] u_next
        M[i, j]   = eta_post A_pre a_pre^(i-j) [j <= i] - eta_pre A_post a_post^(j-i) [j >= i]
        M[i, L]   = eta_post a_pre^(i+1),      M[i, L+1] = -eta_pre A_post a_post^(L-i)
        x_pre(t0 + L - 1) = sum_j A_pre a_pre^(L-1-j) s(t0 + j) + a_pre^L x_in     (row ``carry_pre``)
        u(t0)             = sum_j a_post^j s(t0 + j) + a_post^L u_next              (row ``carry_post``)
    """
    time = torch.arange(length, dtype=dtype, device=device)
    lag = time[:, None] - time[None, :]  # i - j
    decay_pre_tensor = torch.tensor(decay_pre, dtype=dtype, device=device)
    decay_post_tensor = torch.tensor(decay_post, dtype=dtype, device=device)
    powers_pre = torch.pow(decay_pre_tensor, lag.clamp(min=0))
    powers_post = torch.pow(decay_post_tensor, (-lag).clamp(min=0))
    matrix = torch.empty(length, length + 2, dtype=dtype, device=device)
    matrix[:, :length] = (powers_pre * (eta_post * amplitude_pre)).masked_fill_(lag < 0, 0.0)
    matrix[:, :length] -= (powers_post * (eta_pre * amplitude_post)).masked_fill_(lag > 0, 0.0)
    matrix[:, length] = eta_post * torch.pow(decay_pre_tensor, time + 1)
    matrix[:, length + 1] = -eta_pre * amplitude_post * torch.pow(decay_post_tensor, length - time)
    carry_pre = torch.empty(length + 1, dtype=dtype, device=device)
    carry_pre[:length] = amplitude_pre * torch.pow(decay_pre_tensor, length - 1 - time)
    carry_pre[length] = decay_pre**length
    carry_post = torch.empty(length + 1, dtype=dtype, device=device)
    carry_post[:length] = torch.pow(decay_post_tensor, time)
    carry_post[length] = decay_post**length
    return matrix, carry_pre, carry_post


def blocked_window_product(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    method: Method,
    out: Tensor | None = None,
    *,
    filter_block_elements: int,
    product_block_elements: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """``sum_t s_post(t)^T filtered(t)`` of a dense window, a block of steps at a time.

    Returns ``(main [1, O, N_in], last_pre, seen_by_carried)`` as
    :func:`filtered_presynaptic` followed by :func:`~plastic.functional.pair_products.pair_product` would, but
    the filtered window is never whole: a backward sweep over the filter
    blocks gathers the anti-causal sums entering each block (``u_next``),
    then a forward sweep computes each block's filtered rows with one small
    product (:func:`filter_block_matrices`, blocks of
    ``filter_block_elements``) into a product buffer of several blocks
    (``product_block_elements``, at most the weight's size), which is
    multiplied with its postsynaptic spikes (event-driven or dense, chosen
    once for the window) when full. The change is thus written
    ``ceil(T*B*N_in / product elements)`` times per window (once for S1),
    and the buffer never exceeds the weight.
    """
    steps, batch = spikes_pre.shape[:2]
    dtype, device = trace_pre.dtype, trace_pre.device
    pre = readable_spikes(spikes_pre).reshape(steps, -1)  # [T, B*N_in]
    width = pre.shape[1]
    inputs = width // batch
    outputs = spikes_post[0, 0].numel()
    post = spikes_post.reshape(steps * batch, outputs)
    sparse = use_sparse(method, post)
    length = max(1, min(steps, filter_block_elements // max(width, 1)))
    starts = list(range(0, steps, length))
    # filter blocks per product: as many as fit in the product budget and the weight's size
    product_elements = min(product_block_elements, max(outputs * inputs, filter_block_elements))
    blocks_per_product = max(1, min(len(starts), product_elements // max(length * width, 1)))
    product_length = blocks_per_product * length

    def block_matrices(size: int) -> tuple[Tensor, Tensor, Tensor]:
        return filter_block_matrices(
            size, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device
        )

    stacked = torch.empty(length + 2, width, dtype=dtype, device=device)
    # backward sweep: u(t) at the end of each block (the sum over the later steps)
    anticausal = torch.zeros(width, dtype=dtype, device=device)
    entering: list[Tensor] = [anticausal] * len(starts)
    for index in range(len(starts) - 1, -1, -1):
        start = starts[index]
        size = min(length, steps - start)
        entering[index] = anticausal
        rows = stacked[: size + 1]
        rows[:size].copy_(pre[start : start + size])
        rows[size].copy_(anticausal)
        anticausal = block_matrices(size)[2] @ rows
    seen_by_carried = anticausal.mul_(decay_post).view(trace_pre.shape)  # a_post * u(0)
    if sparse:
        event_blocks = block_event_matrices(post, product_length * batch, outputs, dtype)
    main = trace_pre.new_empty(1, outputs, inputs) if out is None else out
    filtered = torch.empty(min(product_length, steps), width, dtype=dtype, device=device)
    written = False  # the first product overwrites main (beta = 0): no separate zeroing pass

    def multiply(first_step: int, size: int) -> None:
        nonlocal written
        values = filtered[:size].view(size * batch, inputs)
        if sparse:
            matrix_of_block = event_blocks(first_step // product_length, size * batch)
            if matrix_of_block is None:
                return
        else:
            matrix_of_block = spike_values(post[first_step * batch : (first_step + size) * batch], dtype).T
        main[0].addmm_(matrix_of_block, values, beta=1 if written else 0)
        written = True

    # forward sweep: each filter block's rows into the product buffer, multiplied when it is full
    carried = trace_pre.reshape(-1)
    product_start = 0
    for index, start in enumerate(starts):
        size = min(length, steps - start)
        matrix, carry_pre, _ = block_matrices(size)
        rows = stacked[: size + 2]
        rows[:size].copy_(pre[start : start + size])
        rows[size].copy_(carried)
        rows[size + 1].copy_(entering[index])
        offset = start - product_start
        torch.mm(matrix, rows, out=filtered[offset : offset + size])
        carried = carry_pre @ rows[: size + 1]
        if offset + size == product_length or start + size == steps:
            multiply(product_start, offset + size)
            product_start = start + size
    if not written:
        main.zero_()
    return main, carried.view(trace_pre.shape), seen_by_carried


def filtered_presynaptic(
    spikes_pre: Tensor,
    trace_pre: Tensor,
    decay_pre: Scalar,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    *,
    matrix_max_elements: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """The filtered presynaptic window of the one-product form, without autograd.

    Returns ``(filtered, last_pre, seen_by_carried)``::

        filtered[t] = eta_post * x_pre(t) - eta_pre * A_post * u(t)
        x_pre(t)    = a_pre * x_pre(t-1) + A_pre * s_pre(t)        (x_pre(-1) = trace_pre)
        u(t)        = s_pre(t) + a_post * u(t+1)                    (u(T) = 0)
        seen_by_carried = a_post * u(0) = sum_t a_post^(t+1) s_pre(t)

    Two recurrences over time (forward, then backward) on one ``[B, *in]``
    trace each, writing ``filtered`` step by step: the spikes are read as
    bytes (``{0, 1}``), never converted as a whole window, and no
    window-sized temporary is made besides ``filtered`` itself. Windows of at
    most ``matrix_max_elements`` entries (and one presynaptic decay) take
    :func:`filtered_presynaptic_matrix` instead.
    """
    steps = spikes_pre.shape[0]
    if steps and not isinstance(decay_pre, Tensor) and spikes_pre.numel() <= matrix_max_elements:
        return filtered_presynaptic_matrix(
            spikes_pre, trace_pre, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre
        )
    spike_bytes = spikes_pre.view(torch.uint8)  # bool -> {0, 1} bytes, same storage
    filtered = torch.empty(spikes_pre.shape, dtype=trace_pre.dtype, device=trace_pre.device)
    trace = trace_pre.clone()
    for t in range(steps):
        trace.mul_(decay_pre).add_(spike_bytes[t], alpha=amplitude_pre)
        torch.mul(trace, eta_post, out=filtered[t])
    anticausal = torch.zeros_like(trace)
    scale = -eta_pre * amplitude_post
    for t in range(steps - 1, -1, -1):
        anticausal.mul_(decay_post).add_(spike_bytes[t])
        filtered[t].add_(anticausal, alpha=scale)
    return filtered, trace, anticausal.mul_(decay_post)


#: Largest change (elements) written by :func:`pre_event_window_product`. Measured against the
#: post-event product and its transposing copy into an input-major accumulator (one thread, T = 100,
#: one sample): 64 -> 1000 0.34 -> 0.17 ms, 784 -> 400 0.70 -> 0.23 ms, 1000 -> 1000 1.6 -> 0.64 ms,
#: 4000 -> 1000 7.1 -> 4.2 ms, 10000 -> 700 13.0 -> 7.8 ms; 70000 -> 700 (S1) 71 -> 110 ms, where the
#: bags' writes and the rank-2 pass over a weight far larger than the caches cost more than they save.
#: The torch form's limit: the compiled pass (:func:`~plastic.functional.window_bags.sums_write_into`)
#: writes the change once, in place, at any size (S1 input-major trainer() + update() 113 -> 40 ms).
PRE_EVENT_MAX_WEIGHT = 1 << 24
#: Longest window of :func:`pre_event_window_product` (its filter table is ``[T + 1, T]``).
PRE_EVENT_MAX_STEPS = 2048


def uses_pre_event_product(out: Tensor, steps: int, batch: int) -> bool:
    """Whether a one-product change into ``out`` ``[1, N_out, N_in]`` is taken by :func:`pre_event_window_product`.

    One sample, an input-major ``out`` (``out[0].T`` contiguous: an
    input-major weight's accumulator), a window of at most
    :data:`PRE_EVENT_MAX_STEPS`, and a change of at most
    :data:`PRE_EVENT_MAX_WEIGHT` elements unless the compiled pass writes it
    (:func:`~plastic.functional.window_bags.sums_write_into`).
    """
    if batch != 1 or out.ndim != 3 or out.shape[0] != 1 or steps > PRE_EVENT_MAX_STEPS:
        return False
    change = out[0]
    if not change.T.is_contiguous() or change.is_contiguous():
        return False
    return change.numel() <= PRE_EVENT_MAX_WEIGHT or sums_write_into(change.T)


class PreEventProduct(NamedTuple):
    """What :func:`pre_event_window_product` returns."""

    #: ``[N_in, N_out]``: the change, transposed (``out`` where given)
    change: Tensor
    #: ``x_pre(T-1)``, shaped like ``trace_pre``
    last_pre: Tensor
    #: ``sum_t a_post^(t+1) s_pre(t)``, shaped like ``trace_pre``
    seen_by_carried: Tensor
    #: ``sum_t a_post^(T-1-t) s_post(t)`` ``[1, N_out]``
    post_decayed: Tensor


class PreEventTables(NamedTuple):
    """The constants of one window length of :func:`pre_event_window_product` (see :func:`pre_event_tables`)."""

    filter_columns: Tensor
    filter_rows: Tensor
    carry_columns: Tensor
    carry_scale: float
    post_powers: Tensor
    column_starts: Tensor


@functools.lru_cache(maxsize=64)
def pre_event_tables(
    steps: int,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    dtype: torch.dtype,
    device: torch.device,
    inputs: int,
) -> PreEventTables:
    """The window filter of :func:`window_filter_matrix` laid out for :func:`pre_event_window_product`.

    Returns ``(filter_columns [T+1, T], filter_rows [T, T+1], carry_columns
    [T, 2], a_pre^T, post_powers [T], column_starts [N_in])``:
    ``filter_columns[u, t] = M[t, u]`` (the weight of the presynaptic spikes
    of step ``u`` in the filtered row of step ``t``) and ``filter_columns[T,
    t]`` the weight of the carried trace ``x_pre(-1)``; ``filter_rows`` its
    transpose, contiguous; ``carry_columns[u]`` the weights of step ``u``'s
    spikes in ``x_pre(T-1)`` and in ``seen_by_carried``; ``post_powers[t] =
    a_post^(T-1-t)`` (:func:`decay_powers`' values); ``column_starts[i] = i *
    T``, the first column-wise event position of input ``i``. Cached
    (read-only tensors).
    """
    stacked, entering, carry_scale = window_filter_matrix(
        steps, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device
    )
    # [T + 1, T]: column t is the filter row of step t (M[t, u] over u, then M[t, T])
    filter_columns = torch.cat([stacked[:steps].T, entering.unsqueeze(0)], 0).contiguous()
    carry_columns = stacked[steps:].T.contiguous()
    post_powers = decay_powers(decay_post, steps, dtype, device)[:steps].flip(0)
    column_starts = torch.arange(0, inputs * steps, steps, dtype=torch.int64, device=device)
    filter_rows = filter_columns.T.contiguous()
    return PreEventTables(filter_columns, filter_rows, carry_columns, carry_scale, post_powers, column_starts)


def pre_event_window_product(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor,
    trace_post: Tensor | None,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    out: Tensor | None,
) -> PreEventProduct:
    """The one-product change of a dense one-sample window, written input by input into ``out`` ``[N_in, N_out]``.

    The same change as :func:`filtered_presynaptic` followed by the event
    product of the postsynaptic spikes (``dw[o, i] = sum_t s_post[t, o]
    filtered[t, i]`` plus the carried-trace term; equal to rounding, the sums
    run in another order), transposed: ``out[i, o] = dw[o, i]``, the layout
    of an input-major weight's change (no transposing copy). Exchanging the
    order of the two sums over time::

        out[i, o] = sum_{u: s_pre[u, i]} Q[u, o] + x_pre(-1)[i] r[o] - eta_pre * z[i] x_post(-1)[o]
        Q[u, o] = sum_{t: s_post[t, o]} M[t, u],    r[o] = sum_{t: s_post[t, o]} M[t, T]

    (``M`` the window filter of :func:`pre_event_tables`, ``z`` =
    ``seen_by_carried``): ``Q`` and ``r`` are sums of filter rows at the
    postsynaptic events (their number times ``T``), the main term one
    ``embedding_bag`` of the rows of ``Q`` at each input's spikes (their
    number times ``N_out``), the carried terms one rank-2 product that also
    writes ``out``. No window-sized filtered matrix and no dense ``T x T x
    N_in`` product: the work follows the spikes of both sides.

    ``spikes_pre`` ``[T, 1, N_in]`` and ``spikes_post`` ``[T, 1, N_out]`` bool
    (features flattened), ``trace_pre`` ``[1, N_in]``, ``trace_post``
    ``[1, N_out]`` or ``None`` (no carried postsynaptic trace); ``out`` a
    contiguous ``[N_in, N_out]`` tensor of the traces' dtype, or ``None``: the
    change in a new one. :func:`~plastic.functional.window_bags.pre_event_change`
    computes it (where numba is installed, all of it in one compiled pass
    that writes ``out``). Returns
    :class:`PreEventProduct`: the change (``out``), ``x_pre(T-1)`` and
    ``seen_by_carried`` shaped like ``trace_pre``, as
    :func:`filtered_presynaptic` gives them, and ``sum_t a_post^(T-1-t)
    s_post(t)`` ``[1, N_out]`` (:func:`time_weighted_sum` of the postsynaptic
    window, from its events: the window's part of ``x_post(T-1)``).
    """
    steps, _, inputs = spikes_pre.shape
    outputs = spikes_post.shape[2]
    dtype, device = trace_pre.dtype, trace_pre.device
    tables = pre_event_tables(
        steps, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device, inputs
    )
    # the sums over the spikes of both sides and the carried terms (the rank-2 term's factors: x_pre(-1),
    # and seen_by_carried with -eta_pre x_post(-1)), written into out where given
    entering_pre = trace_pre.reshape(inputs)
    carried_post = None if trace_post is None else torch.mul(trace_post.reshape(outputs), -eta_pre)
    change, post_decayed, sums = pre_event_change(
        spikes_pre.view(steps, inputs), spikes_post.view(steps, outputs), tables, entering_pre, carried_post, out
    )
    # x_pre(T-1) and seen_by_carried: each input's sums of its spikes' carry weights
    last_pre = sums[:, 0].add(entering_pre, alpha=tables.carry_scale)
    seen_by_carried = sums[:, 1]
    return PreEventProduct(
        change, last_pre.view(trace_pre.shape), seen_by_carried.view(trace_pre.shape), post_decayed.view(1, outputs)
    )


def pre_event_window_update(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor,
    trace_post: Tensor,
    fresh_post: bool,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
    out: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The one-product change of a one-sample dense window into ``out`` (:func:`pre_event_window_product`),
    and the traces after it.

    ``spikes_pre`` ``[T, 1, *in]`` and ``spikes_post`` ``[T, 1, *out]`` bool,
    ``trace_pre`` / ``trace_post`` the carried ``x_pre(-1)`` / ``x_post(-1)``
    ``[1, *in]`` / ``[1, *out]`` (``fresh_post``: ``trace_post`` holds zeros
    and its term is skipped), ``out`` ``[1, N_out, N_in]`` with ``out[0].T``
    contiguous (:func:`uses_pre_event_product`), or ``None`` (a new change,
    laid out so). Arguments are not checked:
    :func:`~plastic.functional.stdp.stdp_window_net` checks them (and the
    window trainer holds them itself). Returns ``(change [1, N_out, N_in],
    x_pre(T-1), x_post(T-1))``, the change ``out`` where given.
    """
    steps = spikes_pre.shape[0]
    product = pre_event_window_product(
        spikes_pre.reshape(steps, 1, -1), spikes_post.reshape(steps, 1, -1), trace_pre,
        None if fresh_post else trace_post, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post,
        eta_pre, None if out is None else out[0].T,
    )  # fmt: skip
    powers = decay_powers(decay_post, steps, trace_post.dtype, trace_post.device)
    last_post = trace_post * powers[steps] + amplitude_post * product.post_decayed.view(trace_post.shape)
    change = product.change.T.unsqueeze(0) if out is None else out
    return change, product.last_pre, last_post
