"""The bilinear pair product of the trace rules over a window: dense GEMM or event-driven.

Every pair rule ends in ``out[g, o, k] = reduce_b sum_{t, p} post[t, b, g, o, p] * pre[t, b, g, k, p]``
(:func:`pair_product`), in the grouped weight layout ``[G, O, K]`` of
:mod:`plastic.functional.receptive`.

Batch reduction (``batch_reduction``): ``"sum"`` over samples, ``"mean"``
(sum divided by ``B``), or a callable that reduces dim 0 of the per-sample
``[B, G, O, K]`` tensor (e.g. ``lambda x: x.amax(0)``). Sum and mean fold the
batch into the matrix product (no per-sample tensor); a callable needs the
per-sample tensor, and always uses the dense product.

Conv: traces are kept at the layer's shape ``[B, C, *spatial]`` and the window
of traces is unfolded once (unfolding is linear, so the unfolded trace equals
the trace of the unfolded input, for every padding mode); the product is then
one batched matrix product per group over ``T*B*P``.

Event-driven path (``method``): the products are sums of rows of the trace
matrix selected by spikes. ``"sparse"`` builds the spike matrix as a CSR
tensor and multiplies it with the traces (work proportional to the number of
spikes; for a convolution it gathers each event's receptive field from the
presynaptic window instead, without unfolding it), ``"dense"`` uses one GEMM,
``"auto"`` picks sparse when the spike density of the event side is below :data:`SPARSE_DENSITY_THRESHOLD` (measured
on CPU for 784 -> 400, T = 100, B = 64: at post density 0.02 the sparse product
takes ~12 ms against ~43 ms for the GEMM, break-even near 0.07), except for
presynaptic events of a convolution: the dense product of a convolution is its
weight gradient (torch's kernel, no unfolded window), faster than unfolding
the window for the events (B2: ~45 against ~200 ms).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal, cast

import torch
from einops import rearrange
from torch import Tensor

from plastic.functional.bilinear import (
    BatchReduction,
    View,
    ViewLayout,
    check_grouped_views,
    reduce_batch,
)
from plastic.functional.events import event_indices
from plastic.functional.receptive import ConvGeometry
from plastic.functional.traces import spike_values
from plastic.functional.validation import check_shape

__all__ = [
    "EVENT_CHUNK_ELEMENTS",
    "METHODS",
    "SPARSE_DENSITY_THRESHOLD",
    "Method",
    "conv_event_product",
    "event_product",
    "pair_product",
    "use_sparse",
]

#: Spike density (fraction of nonzero entries on the event side) below which
#: ``method="auto"`` takes the event-driven (CSR) product. Measured on a 2-core
#: CPU for 784 -> 400, T = 100, B = 64 (single thread): sparse 9 / 12 / 24 ms
#: against dense 43-45 ms at densities 0.005 / 0.02 / 0.05; equal near 0.07.
#: Re-measured quietly (issue 9, one thread): sparse 17 / 19 / 32 / 42 / 59 ms
#: against dense 41-45 ms at 0.01 / 0.02 / 0.05 / 0.08 / 0.12: equal near 0.08.
SPARSE_DENSITY_THRESHOLD = 0.05

Method = Literal["auto", "dense", "sparse"]
#: the ``method`` choices: see the module notes
METHODS = ("auto", "dense", "sparse")


def _density(events: Tensor) -> float:
    return float(torch.count_nonzero(events)) / max(events.numel(), 1)


def event_product(events: Tensor, values: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``out[g, r, c] = sum_{n, p} events[n, g, r, p] * values[n, g, c, p]`` for binary events.

    The events become a CSR matrix ``[(G R), (N G P)]`` with one entry per
    spike, multiplied with the rows ``values[n, g, :, p]``: work proportional
    to the number of spikes times ``C``. ``out`` (``[G, R, C]``, contiguous):
    the product is added into it and it is returned; when at most half of
    its rows receive events, each event's row is added into its output row
    (``index_add_``, a cache-sized chunk of events at a time), so the cost
    follows the events, not ``G * R * C``.
    """
    count, groups, rows_per_group, positions = events.shape
    channels = values.shape[2]
    fired = events if events.dtype == torch.bool else events != 0
    # the events in the window's own order, then sorted stably by destination (g, r): the CSR
    # layout, without a transposed copy of the whole event window
    sample, group, row, position = event_indices(fired)
    matrix_rows = rearrange(values, "n g c p -> (n g p) c")
    out_rows = groups * rows_per_group
    if group.numel() == 0:
        return values.new_zeros(groups, rows_per_group, channels) if out is None else out
    destination = group * rows_per_group + row  # the output row of each event
    if groups * rows_per_group > 1:
        destination, order = torch.sort(destination, stable=True)  # within a row: (n, p) increasing
        sample, group, position = sample[order], group[order], position[order]
    columns = (sample * groups + group) * positions + position
    if out is not None and 2 * torch.unique_consecutive(destination).numel() <= out_rows:
        # few output rows receive events: each event's row added into its output row, in event
        # order (a CSR product into ``out`` passes over all of it, however few the events)
        target = out.view(out_rows, channels)
        chunk = max(1, ROW_CHUNK_ELEMENTS // max(channels, 1))
        for begin in range(0, columns.numel(), chunk):
            end = min(columns.numel(), begin + chunk)
            target.index_add_(0, destination[begin:end], matrix_rows.index_select(0, columns[begin:end]))
        return out
    crow = torch.zeros(out_rows + 1, dtype=torch.int64, device=values.device)
    crow[1:] = torch.cumsum(torch.bincount(destination, minlength=out_rows), 0)
    with warnings.catch_warnings():
        # CSR support is flagged beta; the invariants hold by construction
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.sparse_csr_tensor(
            crow,
            columns,
            torch.ones(columns.numel(), dtype=values.dtype, device=values.device),
            size=(out_rows, count * groups * positions),
            check_invariants=False,
        )
        if out is not None:
            out.view(out_rows, channels).addmm_(matrix, matrix_rows)
            return out
        product = matrix @ matrix_rows
    return product.reshape(groups, rows_per_group, channels)


#: Gathered receptive values per chunk of the event-driven conv product (elements).
EVENT_CHUNK_ELEMENTS = 1 << 18
#: Gathered rows per chunk of :func:`event_product` into ``out`` (elements): small enough for
#: the allocator to reuse heap memory (a fresh mmap-sized temporary page-faults at every call)
ROW_CHUNK_ELEMENTS = 1 << 14


def conv_event_product(events: Tensor, values: Tensor, geometry: ConvGeometry) -> Tensor:
    """``out[g, o, k] = sum_{n, p} events[n, g, o, p] * unfold(values)[n, g, k, p]`` for binary events.

    ``events`` ``[N, C_out, *out_spatial]``, ``values`` ``[N, C_in, *in_spatial]``.
    The window is padded as the convolution pads its input (every padding
    mode), so the receptive field of an output position is the same affine
    pattern of flat indices everywhere::

        index(n, g, p, k) = n * S + start(p) + offset(g, k)

    (``S`` the size of one padded sample, ``start`` the flat index of the
    field's first element, ``offset`` that of each kernel element relative to
    it, with stride and dilation). Each event gathers its ``K`` values at these
    indices and adds them into its output row: work proportional to the number
    of events times ``K``, no unfolded window and no index table per event.
    """
    padded = geometry.pad(values).contiguous()
    count = padded.shape[0]
    sample_size = padded[0].numel()
    spatial = padded.shape[2:]
    # flat strides of the padded spatial dimensions (row-major), then of a channel
    spatial_strides = [math.prod(spatial[d + 1 :]) for d in range(len(spatial))]
    channel_size = math.prod(spatial)
    groups = geometry.groups
    in_per_group = padded.shape[1] // groups
    out_channels = events.shape[1]
    rows_per_group = out_channels // groups
    out_spatial = events.shape[2:]
    device = values.device
    # start(p): first element of each output position's field, [P]
    start = torch.zeros((), dtype=torch.int64, device=device)
    for d, size in enumerate(out_spatial):
        along = torch.arange(size, device=device) * (geometry.stride[d] * spatial_strides[d])
        start = start.unsqueeze(-1) + along
    start = start.reshape(-1)
    # offset(k) within one group: channel, then kernel elements with dilation, [K]
    offset = torch.arange(in_per_group, device=device) * channel_size
    for d, size in enumerate(geometry.kernel_size):
        along = torch.arange(size, device=device) * (geometry.dilation[d] * spatial_strides[d])
        offset = offset.unsqueeze(-1) + along
    offset = offset.reshape(-1)
    receptive = offset.numel()
    index_dtype = torch.int32 if count * sample_size < 2**31 else torch.int64
    flat_values = padded.reshape(-1)
    fired = events if events.dtype == torch.bool else events != 0
    fired = fired.reshape(count, groups, rows_per_group, -1)
    out = values.new_zeros(groups, rows_per_group, receptive)
    offset = offset.to(index_dtype)
    # events in chunks through two reused [chunk, K] buffers: cache-sized, and no fresh
    # pages for event-count-sized index and value tables
    chunk = max(1, EVENT_CHUNK_ELEMENTS // receptive)
    index_buffer = torch.empty(chunk, receptive, dtype=index_dtype, device=device)
    value_buffer = values.new_empty(chunk * receptive)
    for group in range(groups):
        sample, row, position = event_indices(fired[:, group])
        first = (sample * sample_size + start[position]).add_(group * in_per_group * channel_size).to(index_dtype)
        for begin in range(0, first.numel(), chunk):
            end = min(first.numel(), begin + chunk)
            index = index_buffer[: end - begin]
            torch.add(first[begin:end].unsqueeze(1), offset, out=index)  # [E, K]
            gathered = value_buffer[: index.numel()]
            torch.index_select(flat_values, 0, index.view(-1), out=gathered)
            out[group].index_add_(0, row[begin:end], gathered.view(index.shape))
    return out


def use_sparse(method: str, events: Tensor) -> bool:
    if method == "sparse":
        return True
    if method == "dense":
        return False
    return _density(events) < SPARSE_DENSITY_THRESHOLD


def pair_product(
    post: Tensor,
    pre: Tensor,
    *,
    view: View | ViewLayout = None,
    events: Literal["post", "pre", "none"] = "none",
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
    out: Tensor | None = None,
    accumulate: bool = False,
) -> Tensor:
    """The bilinear form every pair rule ends in, over a window, in ``[G, O, K]``::

        out[g, o, k] = reduce_b sum_{t, p} post[t, b, g, o, p] * pre[t, b, g, k, p]

    Args:
        post: ``[T, B, *out_shape]`` postsynaptic values (spikes or traces), floating
            (bool allowed on the ``events`` side: spikes read as ``{0, 1}``).
        pre: ``[T, B, *in_shape]`` presynaptic values, same dtype.
        view: receptive view (:data:`View`), or its :class:`~plastic.functional.bilinear.ViewLayout`.
        events: which side holds binary spikes (``"post"``, ``"pre"``) so the
            event-driven product may be used; ``"none"``: dense only.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.
        method: ``"auto"``, ``"dense"`` or ``"sparse"`` (see the module notes).
        out: ``[G, O, K]`` tensor receiving the result (``"sum"``/``"mean"``);
            written directly by the dense-matrix and event-driven products.
        accumulate: add the result into ``out`` (``batch_reduction="sum"``)
            instead of overwriting it.

    No argument checks beyond the views (internal building block of the
    rules here and in :mod:`plastic.functional.all_pairs`).
    """
    layout = view if isinstance(view, ViewLayout) else ViewLayout(view)
    steps, batch = post.shape[:2]
    if accumulate and (out is None or batch_reduction != "sum"):
        raise ValueError("accumulate: needs an out tensor and batch_reduction='sum'")
    if steps * batch == 0 and accumulate:
        return cast(Tensor, out)  # no pairs: nothing to add
    if steps * batch == 0:  # an empty window: no pairs, the shape from one blank sample
        dtype = pre.dtype if post.dtype == torch.bool else post.dtype
        blank = layout.product(
            post.new_zeros(1, *post.shape[2:], dtype=dtype), pre.new_zeros(1, *pre.shape[2:], dtype=dtype)
        )
        if isinstance(batch_reduction, str) or batch == 0:
            return blank if out is None else out.copy_(blank)
        return reduce_batch(blank.expand(batch, *blank.shape), batch_reduction)
    if not isinstance(batch_reduction, str):
        if post.dtype == torch.bool:
            post = spike_values(post, pre.dtype)
        elif pre.dtype == torch.bool:
            pre = spike_values(pre, post.dtype)
        return reduce_batch(layout.per_sample(post, pre), batch_reduction)
    post_flat = post.reshape(steps * batch, *post.shape[2:])
    pre_flat = pre.reshape(steps * batch, *pre.shape[2:])
    sparse = events in ("post", "pre") and use_sparse(method, post_flat if events == "post" else pre_flat)
    if sparse and events == "pre" and layout.geometry is not None and method == "auto":
        # presynaptic events of a convolution would need the unfolded window: the
        # convolution's weight-gradient kernel (the dense product) is faster
        sparse = False
    result: Tensor | None = None
    if sparse and events == "post" and layout.geometry is not None:
        result = conv_event_product(post_flat, pre_flat, layout.geometry)  # no unfolded window
    elif sparse:
        pre_view, post_view = layout.pre(pre_flat), layout.post(post_flat)
        check_grouped_views(pre_view, post_view)
        if events == "post":
            into = None if out is None else out if accumulate else out.zero_()
            result = event_product(post_view, pre_view, out=into)
        else:
            result = event_product(pre_view, post_view).transpose(1, 2)
    else:
        # bool spikes on the event side, read as {0, 1} values for the dense product
        if post_flat.dtype == torch.bool:
            post_flat = spike_values(post_flat, pre_flat.dtype)
        elif pre_flat.dtype == torch.bool:
            pre_flat = spike_values(pre_flat, post_flat.dtype)
        if out is not None and layout.dense:
            layout.check_shapes(pre_flat, post_flat)
            # beta 0 overwrites ``out`` (without reading it), beta 1 adds into it
            torch.addmm(out[0], post_flat.flatten(1).T, pre_flat.flatten(1), beta=1 if accumulate else 0, out=out[0])
            result = out
        else:
            result = layout.product(post_flat, pre_flat)
    if out is not None and result is not out:
        check_shape(out, "out", tuple(result.shape))
        result = out.add_(result) if accumulate else out.copy_(result)
    # ``result`` is this call's own tensor (``out`` or a fresh product): divided in place
    return result.div_(batch) if batch_reduction == "mean" else result
