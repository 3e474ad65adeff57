"""Pair STDP in trace form: single step, window, one-product window; dense and conv.

Semantics (DESIGN.md, "Pair STDP, trace form"). Presynaptic traces ``x_pre``
(decay ``a_pre``, jump ``A_pre``), postsynaptic traces ``x_post`` (``a_post``,
``A_post``), cumulative (all-to-all pairing) or nearest (nearest-spike
pairing), including the current step's spike::

    cumulative: x_t = a * x_{t-1} + A * s_t
    nearest:    x_t = A where s_t, else a * x_{t-1}

At a post spike the synapse is potentiated by the presynaptic trace, at a pre
spike depressed by the postsynaptic trace::

    dw_ij += eta_post * f_post(w_ij) * sum_b s_post[b, i] * x_pre[b, j]
    dw_ij -= eta_pre  * f_pre(w_ij)  * sum_b x_post[b, i] * s_pre[b, j]

A Hebbian rule has ``eta_post > 0`` and ``eta_pre > 0`` in this form (the
kernel form of :mod:`plastic.functional.kernels` carries the sign in its
``eta_pre`` instead). A simultaneous pair (both spikes in one step) gives both
terms, since both traces already hold the current spike.

What the functions return
-------------------------
:func:`stdp_step` and :func:`stdp_window` return the two raw, non-negative
products, **without** learning rates and weight dependence::

    potentiation[g, o, k] = sum_{t, b, p} s_post[t, b, g, o, p] * x_pre[t, b, g, k, p]
    depression[g, o, k]   = sum_{t, b, p} x_post[t, b, g, o, p] * s_pre[t, b, g, k, p]

in the grouped weight layout ``[G, O, K]`` of :mod:`plastic.functional.receptive`
(dense: ``[1, N_out, N_in]``; conv: ``p`` runs over output positions, the
presynaptic quantities over each position's receptive field). Trainers scale
them by ``eta`` and ``f(w)`` (weights are constant within a window) and write
them into an updater; :func:`stdp_delta_weight` does that in one call.
:func:`stdp_window_net` returns the signed net change of all-to-all pairing
with identity weight dependence in one matrix product.

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

The view argument (:data:`View`, re-exported here with :data:`BatchReduction`
and :class:`ReceptiveView`), its layout (:class:`~plastic.functional.bilinear.ViewLayout`),
the trace recurrences, the batch reduction and the spike checks are shared
with the other trace rules: :mod:`plastic.functional.bilinear`.

References: Bi & Poo (1998), J. Neurosci. 18:10464; Song, Miller & Abbott
(2000), Nat. Neurosci. 3:919; Morrison, Diesmann & Gerstner (2008), Biol.
Cybern. 98:459 (trace formulation, pairing schemes, weight dependence).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from einops import rearrange
from torch import Tensor

from plastic.functional.bilinear import (
    PAIRINGS,
    BatchReduction,
    ReceptiveView,
    View,
    ViewLayout,
    WeightFactor,
    check_batch_reduction,
    check_grouped_views,
    check_window_spikes,
    event_indices,
    pairing_traces,
    reduce_batch,
)
from plastic.functional.receptive import ConvGeometry, grouped_to_weight, weight_to_grouped
from plastic.functional.traces import (
    decay_factor,
    spike_values,
    trace_anticausal_window,
    trace_cumulative_window,
)
from plastic.functional.validation import check_choice, check_positive, check_same_device, check_shape, check_tensor

__all__ = [
    "METHODS",
    "SPARSE_DENSITY_THRESHOLD",
    "BatchReduction",
    "ReceptiveView",
    "STDPNetUpdate",
    "STDPUpdate",
    "View",
    "pair_product",
    "receptive_views",
    "stdp_delta_weight",
    "stdp_step",
    "stdp_window",
    "stdp_window_net",
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
Scalar = float | Tensor


class STDPUpdate(NamedTuple):
    """Raw products ``[G, O, K]`` (non-negative) and the traces after the last step."""

    potentiation: Tensor
    depression: Tensor
    trace_pre: Tensor
    trace_post: Tensor


class STDPNetUpdate(NamedTuple):
    """Signed net change ``[G, O, K]`` and the traces after the last step."""

    delta_weight: Tensor
    trace_pre: Tensor
    trace_post: Tensor


# --------------------------------------------------------------------------- views


def receptive_views(view: View) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """``(pre_view, post_view)`` callables for a view argument (see :data:`View`)."""
    layout = ViewLayout(view)
    return layout.pre, layout.post


# ------------------------------------------------------------------------ products


def _density(events: Tensor) -> float:
    return float(torch.count_nonzero(events)) / max(events.numel(), 1)


def event_product(events: Tensor, values: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``out[g, r, c] = sum_{n, p} events[n, g, r, p] * values[n, g, c, p]`` for binary events.

    The events become a CSR matrix ``[(G R), (N G P)]`` with one entry per
    spike, multiplied with the rows ``values[n, g, :, p]``: work proportional
    to the number of spikes times ``C``. ``out`` (``[G, R, C]``, contiguous):
    the product is added into it and it is returned.
    """
    count, groups, rows_per_group, positions = events.shape
    channels = values.shape[2]
    # destination-major order (g, r, n, p) gives the CSR layout directly
    fired = events if events.dtype == torch.bool else events != 0
    ordered = rearrange(fired, "n g r p -> g r n p").contiguous()
    group, row, sample, position = event_indices(ordered)
    matrix_rows = rearrange(values, "n g c p -> (n g p) c")
    out_rows = groups * rows_per_group
    if group.numel() == 0:
        return values.new_zeros(groups, rows_per_group, channels) if out is None else out
    columns = (sample * groups + group) * positions + position
    crow = torch.zeros(out_rows + 1, dtype=torch.int64, device=values.device)
    crow[1:] = torch.cumsum(torch.bincount(group * rows_per_group + row, minlength=out_rows), 0)
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


def _conv_event_product(events: Tensor, values: Tensor, geometry: ConvGeometry) -> Tensor:
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


def _use_sparse(method: str, events: Tensor) -> bool:
    if method == "sparse":
        return True
    if method == "dense":
        return False
    return _density(events) < SPARSE_DENSITY_THRESHOLD


def pair_product(
    post: Tensor,
    pre: Tensor,
    *,
    view: View = None,
    events: Literal["post", "pre", "none"] = "none",
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
    out: Tensor | None = None,
) -> Tensor:
    """The bilinear form every pair rule ends in, over a window, in ``[G, O, K]``::

        out[g, o, k] = reduce_b sum_{t, p} post[t, b, g, o, p] * pre[t, b, g, k, p]

    Args:
        post: ``[T, B, *out_shape]`` postsynaptic values (spikes or traces), floating
            (bool allowed on the ``events`` side: spikes read as ``{0, 1}``).
        pre: ``[T, B, *in_shape]`` presynaptic values, same dtype.
        view: receptive view (:data:`View`).
        events: which side holds binary spikes (``"post"``, ``"pre"``) so the
            event-driven product may be used; ``"none"``: dense only.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.
        method: ``"auto"``, ``"dense"`` or ``"sparse"`` (see the module notes).
        out: ``[G, O, K]`` tensor receiving the result (``"sum"``/``"mean"``);
            written directly by the dense-matrix and event-driven products.

    No argument checks beyond the views (internal building block of the
    rules here and in :mod:`plastic.functional.all_pairs`).
    """
    layout = view if isinstance(view, ViewLayout) else ViewLayout(view)
    steps, batch = post.shape[:2]
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
    sparse = events in ("post", "pre") and _use_sparse(method, post_flat if events == "post" else pre_flat)
    if sparse and events == "pre" and layout.geometry is not None and method == "auto":
        # presynaptic events of a convolution would need the unfolded window: the
        # convolution's weight-gradient kernel (the dense product) is faster
        sparse = False
    result: Tensor | None = None
    if sparse and events == "post" and layout.geometry is not None:
        result = _conv_event_product(post_flat, pre_flat, layout.geometry)  # no unfolded window
    elif sparse:
        pre_view, post_view = layout.pre(pre_flat), layout.post(post_flat)
        check_grouped_views(pre_view, post_view)
        if events == "post":
            result = event_product(post_view, pre_view, out=None if out is None else out.zero_())
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
            torch.mm(post_flat.flatten(1).T, pre_flat.flatten(1), out=out[0])
            result = out
        else:
            result = layout.product(post_flat, pre_flat)
    if out is not None and result is not out:
        check_shape(out, "out", tuple(result.shape))
        result = out.copy_(result)
    # ``result`` is this call's own tensor (``out`` or a fresh product): divided in place
    return result.div_(batch) if batch_reduction == "mean" else result


# ---------------------------------------------------------------------- validation


def _resolve_decay(
    decay: Scalar | None, tau: Scalar | None, dt: float, exact: bool, side: str, trace_shape: torch.Size
) -> Scalar:
    """The per-step decay of one side: given directly, or ``decay_factor(dt, tau, exact)``."""
    if decay is not None and tau is not None:
        raise ValueError(f"decay_{side}: give decay_{side} or tau_{side}, not both")
    if decay is None:
        if tau is None:
            raise ValueError(f"decay_{side}: expected decay_{side} or tau_{side} (with dt)")
        decay = decay_factor(dt, tau, exact=exact)
        name = f"tau_{side}"
    else:
        name = f"decay_{side}"
    if isinstance(decay, Tensor):
        check_tensor(decay, name, floating=True, finite=True)
        if decay.numel() and not bool(((decay >= 0) & (decay <= 1)).all()):
            raise ValueError(f"{name}: expected decay factors in [0, 1]")
        try:
            broadcast = torch.broadcast_shapes(decay.shape, trace_shape)
        except RuntimeError:
            broadcast = None
        if broadcast != trace_shape:
            raise ValueError(
                f"{name}: shape {tuple(decay.shape)} does not broadcast to the trace shape {tuple(trace_shape)}"
            )
        return decay
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        raise TypeError(f"{name}: expected a real number or a tensor, got {type(decay).__name__}")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"{name}: expected a decay factor in [0, 1], got {decay!r}")
    return float(decay)


def _check_real(value: object, name: str) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    return float(value)


class _Checked(NamedTuple):
    spikes_pre: Tensor  # bool [T, B, *in]
    spikes_post: Tensor  # bool [T, B, *out]
    trace_pre: Tensor  # [B, *in]
    trace_post: Tensor  # [B, *out]
    decay_pre: Scalar
    decay_post: Scalar
    amplitude_pre: float
    amplitude_post: float


def _check_inputs(
    spikes_pre: object,
    spikes_post: object,
    trace_pre: object,
    trace_post: object,
    *,
    window: bool,
    decay_pre: Scalar | None,
    decay_post: Scalar | None,
    tau_pre: Scalar | None,
    tau_post: Scalar | None,
    dt: float,
    exact: bool,
    amplitude_pre: object,
    amplitude_post: object,
    batch_reduction: object,
    method: object,
    pairing: object = "all",
) -> _Checked:
    """Every argument check of the pair rules, before any computation (errors name the argument).

    ``window``: spikes ``[T, B, *shape]`` (else one step ``[B, *shape]``,
    named ``spike_pre``/``spike_post``, returned as a window of one step).
    Missing traces become zeros; ``tau``/``dt`` become per-step decays.
    """
    lead = 2 if window else 1
    pre, post = check_window_spikes(spikes_pre, spikes_post, step=not window)
    dt = check_positive(dt, "dt")
    if not isinstance(exact, bool):
        raise TypeError(f"exact: expected a bool, got {type(exact).__name__}")
    check_batch_reduction(batch_reduction)
    check_choice(method, "method", METHODS)
    state_pre_shape, state_post_shape = pre.shape[lead - 1 :], post.shape[lead - 1 :]
    traces = {}
    for name, value, shape in (
        ("trace_pre", trace_pre, state_pre_shape),
        ("trace_post", trace_post, state_post_shape),
    ):
        if value is not None:
            traces[name] = check_tensor(value, name, shape=shape, floating=True, finite=True)
    if len(traces) == 2 and traces["trace_pre"].dtype != traces["trace_post"].dtype:
        raise TypeError(
            f"trace_post: expected the dtype of trace_pre ({traces['trace_pre'].dtype}), "
            f"got {traces['trace_post'].dtype}"
        )
    check_same_device(spikes_pre=pre, **traces)
    dtype = next((t.dtype for t in traces.values()), torch.get_default_dtype())
    if "trace_pre" not in traces:
        traces["trace_pre"] = torch.zeros(state_pre_shape, dtype=dtype, device=pre.device)
    if "trace_post" not in traces:
        traces["trace_post"] = torch.zeros(state_post_shape, dtype=dtype, device=pre.device)
    resolved_pre = _resolve_decay(decay_pre, tau_pre, dt, exact, "pre", state_pre_shape)
    resolved_post = _resolve_decay(decay_post, tau_post, dt, exact, "post", state_post_shape)
    check_choice(pairing, "pairing", PAIRINGS)
    amplitude_pre = _check_real(amplitude_pre, "amplitude_pre")
    amplitude_post = _check_real(amplitude_post, "amplitude_post")
    if not window:
        pre, post = pre.unsqueeze(0), post.unsqueeze(0)
    return _Checked(
        pre, post, traces["trace_pre"], traces["trace_post"], resolved_pre, resolved_post, amplitude_pre, amplitude_post
    )


# ------------------------------------------------------------------------ the rules


def stdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    decay_pre: Scalar | None = None,
    decay_post: Scalar | None = None,
    tau_pre: Scalar | None = None,
    tau_post: Scalar | None = None,
    dt: float = 1.0,
    exact: bool = True,
    amplitude_pre: float = 1.0,
    amplitude_post: float = 1.0,
    pairing: Literal["all", "nearest"] = "all",
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
) -> STDPUpdate:
    """Pair STDP over a window: exactly the sum of :func:`stdp_step` over its steps.

    Args:
        spikes_pre: ``[T, B, *in_shape]`` presynaptic spikes (bool or {0, 1}).
        spikes_post: ``[T, B, *out_shape]`` postsynaptic spikes.
        trace_pre: ``[B, *in_shape]`` presynaptic trace carried from the step
            before the window (``None``: zeros). Its dtype is the dtype of the
            computation.
        trace_post: ``[B, *out_shape]`` postsynaptic trace, likewise.
        decay_pre, decay_post: per-step decay factors in ``[0, 1]`` (floats or
            tensors broadcasting to the trace shape), or instead
        tau_pre, tau_post: time constants (unit of ``dt``) with
        dt: step (> 0, ms by convention) and
        exact: ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
        amplitude_pre, amplitude_post: trace jump ``A`` at a spike.
        pairing: ``"all"`` (cumulative traces) or ``"nearest"``.
        view: ``None`` (dense), a :class:`ConvGeometry` or a connection.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.
        method: ``"auto"``, ``"dense"`` or ``"sparse"`` products.

    Returns:
        :class:`STDPUpdate` ``(potentiation, depression, trace_pre, trace_post)``:
        the raw products ``sum s_post (x) x_pre`` and ``sum x_post (x) s_pre``
        as ``[G, O, K]``, and the traces after the last step (new tensors).

    Traces come from one recurrence over time (O(B*N) per step); each term is
    then one matrix product over ``T*B`` (conv: ``T*B*P`` per group).
    """
    checked = _check_inputs(
        spikes_pre, spikes_post, trace_pre, trace_post, window=True,
        decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
        amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, batch_reduction=batch_reduction,
        method=method, pairing=pairing,
    )  # fmt: skip
    return _stdp_window(checked, pairing, ViewLayout(view), batch_reduction, method, (spikes_pre, spikes_post))


def _spike_matrix(given: object, checked: Tensor, dtype: torch.dtype) -> Tensor:
    """The spikes as values of ``dtype`` for the products: the caller's tensor itself when it
    already is ``{0, 1}`` of that dtype (checked; never written to), else converted."""
    if isinstance(given, Tensor) and given.dtype == dtype and given.shape == checked.shape and not given.requires_grad:
        return given
    return spike_values(checked, dtype)


def _stdp_window(
    checked: _Checked,
    pairing: str,
    layout: ViewLayout,
    batch_reduction: BatchReduction,
    method: Method,
    spikes_original: tuple[object, object] = (None, None),
) -> STDPUpdate:
    dtype = checked.trace_pre.dtype
    s_pre = _spike_matrix(spikes_original[0], checked.spikes_pre, dtype)
    s_post = _spike_matrix(spikes_original[1], checked.spikes_post, dtype)
    x_pre, last_pre = pairing_traces(
        checked.spikes_pre, checked.decay_pre, checked.amplitude_pre, checked.trace_pre, pairing
    )
    x_post, last_post = pairing_traces(
        checked.spikes_post, checked.decay_post, checked.amplitude_post, checked.trace_post, pairing
    )
    common = {"view": layout, "batch_reduction": batch_reduction, "method": method}
    potentiation = pair_product(s_post, x_pre, events="post", **common)
    depression = pair_product(x_post, s_pre, events="pre", **common)
    return STDPUpdate(potentiation, depression, last_pre, last_post)


def stdp_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    decay_pre: Scalar | None = None,
    decay_post: Scalar | None = None,
    tau_pre: Scalar | None = None,
    tau_post: Scalar | None = None,
    dt: float = 1.0,
    exact: bool = True,
    amplitude_pre: float = 1.0,
    amplitude_post: float = 1.0,
    pairing: Literal["all", "nearest"] = "all",
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
) -> STDPUpdate:
    """One step of pair STDP: update both traces with this step's spikes, then::

        potentiation = reduce_b s_post[b] (x) x_pre[b]
        depression   = reduce_b x_post[b] (x) s_pre[b]

    ``spike_pre`` is ``[B, *in_shape]``, ``spike_post`` ``[B, *out_shape]``,
    traces ``[B, *shape]``; every other argument as in :func:`stdp_window`.
    Returns :class:`STDPUpdate` with ``[G, O, K]`` products and the new traces.
    """
    checked = _check_inputs(
        spike_pre, spike_post, trace_pre, trace_post, window=False,
        decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
        amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, batch_reduction=batch_reduction,
        method=method, pairing=pairing,
    )  # fmt: skip
    return _stdp_window(checked, pairing, ViewLayout(view), batch_reduction, method)


def stdp_window_net(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    eta_post: float = 1.0,
    eta_pre: float = 1.0,
    decay_pre: Scalar | None = None,
    decay_post: float | Tensor | None = None,
    tau_pre: Scalar | None = None,
    tau_post: float | None = None,
    dt: float = 1.0,
    exact: bool = True,
    amplitude_pre: float = 1.0,
    amplitude_post: float = 1.0,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    method: Method = "auto",
    out: Tensor | None = None,
) -> STDPNetUpdate:
    """All-to-all pair STDP, identity weight dependence, as ONE product per window.

    Equal to ``eta_post * potentiation - eta_pre * depression`` of
    :func:`stdp_window` with ``pairing="all"``. The depression over the window,
    ``sum_t x_post(t)^T s_pre(t)``, splits into the pairs with both spikes in
    the window and the pairs whose post spike came before the window (held by
    the carried trace ``x_post(-1)``)::

        sum_t x_post(t)^T s_pre(t) = sum_t s_post(t)^T y_pre(t)
                                   + sum_b x_post(-1)[b] (x) z[b]
        y_pre(t) = A_post * sum_{u >= t} a_post^(u - t) s_pre(u)   (anti-causal, in the window)
        z        = sum_t a_post^(t + 1) s_pre(t)

    hence ``dw = sum_t s_post(t)^T (eta_post*x_pre(t) - eta_pre*y_pre(t)) -
    eta_pre * x_post(-1)^T z``: one product over ``T*B`` (or ``T*B*P``) plus a
    rank-``B`` correction. Pairs with the post spike in a later window are
    counted there through the returned presynaptic trace, so chained windows
    equal one long window.

    Args:
        eta_post, eta_pre: learning rates (weight units); Hebbian: both > 0.
        decay_post / tau_post: must be one number (the anti-causal presynaptic
            trace decays with it); ``decay_pre`` may be per neuron.
        method: ``"sparse"`` gathers the rows of the filtered presynaptic
            matrix at postsynaptic events (CSR product), ``"dense"`` one GEMM,
            ``"auto"`` sparse below :data:`SPARSE_DENSITY_THRESHOLD`.

    ``out``: a ``[G, O, K]`` tensor of the traces' dtype and device that
    receives the change (``batch_reduction`` ``"sum"`` or ``"mean"``), e.g. a
    buffer kept across windows: no fresh weight-sized allocation per call.

    Every other argument as in :func:`stdp_window`. Returns
    :class:`STDPNetUpdate` ``(delta_weight [G, O, K], trace_pre, trace_post)``.
    """
    checked = _check_inputs(
        spikes_pre, spikes_post, trace_pre, trace_post, window=True,
        decay_pre=decay_pre, decay_post=decay_post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
        amplitude_pre=amplitude_pre, amplitude_post=amplitude_post, batch_reduction=batch_reduction,
        method=method,
    )  # fmt: skip
    eta_post = _check_real(eta_post, "eta_post")
    eta_pre = _check_real(eta_pre, "eta_pre")
    amplitude_pre, amplitude_post = checked.amplitude_pre, checked.amplitude_post
    decay_post_value = checked.decay_post
    if isinstance(decay_post_value, Tensor):
        if decay_post_value.numel() != 1:
            raise ValueError(
                "decay_post: the one-product form needs one postsynaptic decay for all neurons, "
                f"got shape {tuple(decay_post_value.shape)}"
            )
        decay_post_value = float(decay_post_value.item())
    layout = ViewLayout(view)
    dtype = checked.trace_pre.dtype
    steps, batch = checked.spikes_pre.shape[:2]
    device = checked.trace_pre.device
    if out is not None:
        check_tensor(out, "out", ndim=3, device=device)
        if out.dtype != dtype:
            raise TypeError(f"out: expected dtype {dtype} (the traces'), got {out.dtype}")
        if layout.dense:
            outputs, inputs = math.prod(checked.spikes_post.shape[2:]), math.prod(checked.spikes_pre.shape[2:])
            check_shape(out, "out", (1, outputs, inputs))
        elif layout.geometry is not None:
            geometry = layout.geometry
            groups = geometry.groups
            check_shape(out, "out", (groups, geometry.out_channels // groups, geometry.receptive_size))

    main: Tensor | None = None
    if torch.is_grad_enabled() and any(
        isinstance(value, Tensor) and value.requires_grad
        for value in (checked.trace_pre, checked.trace_post, checked.decay_pre)
    ):
        s_pre = _spike_matrix(spikes_pre, checked.spikes_pre, dtype)
        x_pre, last_pre = trace_cumulative_window(s_pre, checked.decay_pre, amplitude_pre, initial=checked.trace_pre)
        filtered = trace_anticausal_window(s_pre, decay_post_value, amplitude_post, dtype=dtype)
        filtered = filtered * -eta_pre + x_pre * eta_post  # eta_post*x_pre - eta_pre*y_pre
        # the pre spikes as seen by the carried post trace: z = sum_t a^(t+1) s_pre(t)
        seen_by_carried = torch.einsum("t,tb...->b...", _powers(decay_post_value, steps, dtype, device)[1:], s_pre)
    elif (
        layout.dense
        and isinstance(batch_reduction, str)
        and not isinstance(checked.decay_pre, Tensor)
        and checked.spikes_pre.numel() > MATRIX_FILTER_MAX_ELEMENTS
    ):
        # large dense windows: filtered and multiplied a block of steps at a time, never whole
        layout.check_shapes(checked.spikes_pre[0], checked.spikes_post[0])
        main, last_pre, seen_by_carried = _blocked_window_product(
            checked.spikes_pre, checked.spikes_post, checked.trace_pre, float(checked.decay_pre),
            decay_post_value, amplitude_pre, amplitude_post, eta_post, eta_pre, method, out,
        )  # fmt: skip
    else:
        filtered, last_pre, seen_by_carried = _filtered_presynaptic(
            checked.spikes_pre, checked.trace_pre, checked.decay_pre, decay_post_value,
            amplitude_pre, amplitude_post, eta_post, eta_pre,
        )  # fmt: skip

    # trace_post after the window, closed form: a^T x(-1) + A sum_u a^(T-1-u) s_post(u)
    powers = _powers(decay_post_value, steps, dtype, device)
    last_post = checked.trace_post * powers[steps] + amplitude_post * _time_weighted_sum(
        checked.spikes_post, powers[:steps].flip(0)
    )
    # the event side stays bool: the event-driven product reads its nonzeros directly
    s_post = checked.spikes_post

    if isinstance(batch_reduction, str):
        if main is None:
            main = pair_product(
                s_post, filtered, view=layout, events="post", batch_reduction="sum", method=method, out=out
            )
        if trace_post is None:
            delta = main  # no carried postsynaptic trace: no pairs with a post spike before the window
        elif layout.dense and not main.requires_grad:
            # the rank-B correction added in place: no second weight-sized product and pass
            delta = main
            delta[0].addmm_(checked.trace_post.reshape(batch, -1).T, seen_by_carried.reshape(batch, -1), alpha=-eta_pre)
        else:
            carried = pair_product(
                checked.trace_post.unsqueeze(0), seen_by_carried.unsqueeze(0), view=layout, batch_reduction="sum"
            )
            delta = main.sub_(carried, alpha=eta_pre)
        if batch_reduction == "mean":
            delta = delta.div_(batch)
    else:
        if out is not None:
            raise ValueError("out: needs batch_reduction 'sum' or 'mean' (a callable reduces per-sample values)")
        s_post_values = _spike_matrix(spikes_post, checked.spikes_post, dtype)
        per_sample = layout.per_sample(s_post_values, filtered)
        per_sample -= eta_pre * layout.per_sample(checked.trace_post.unsqueeze(0), seen_by_carried.unsqueeze(0))
        delta = reduce_batch(per_sample, batch_reduction)
    return STDPNetUpdate(delta, last_pre, last_post)


#: Steps of a spike window converted to floating point at a time (elements).
CONVERSION_CHUNK_ELEMENTS = 1 << 20


def _readable(spikes: Tensor) -> Tensor:
    """Bool spikes as ``uint8`` bytes of the same storage (0 and 1): copying those into a
    floating buffer is vectorised where the bool conversion is not (~7x faster on CPU)."""
    return spikes.view(torch.uint8) if spikes.dtype == torch.bool else spikes


def _time_weighted_sum(spikes: Tensor, weights: Tensor) -> Tensor:
    """``sum_t weights[t] * spikes[t]`` for a window ``[T, ...]`` of spikes of any dtype.

    Spikes of another dtype than ``weights`` (bool, as cells record them) are
    converted a few steps at a time into one reused buffer rather than as a
    whole window: a window-sized floating copy costs more in fresh pages than
    the sum itself.
    """
    steps = spikes.shape[0]
    flat = _readable(spikes).reshape(steps, math.prod(spikes.shape[1:]))
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


def _powers(decay: float, steps: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``a^e`` for ``e = 0..T`` (``0^0 = 1``, so a zero decay needs no special case)."""
    return torch.pow(
        torch.tensor(decay, dtype=dtype, device=device), torch.arange(0, steps + 1, dtype=dtype, device=device)
    )


#: Windows of at most this many presynaptic entries (``T * B * N_in``) are
#: filtered by one ``[T+2, T] @ [T, B*N_in]`` product instead of two
#: recurrences of ``T`` small steps: the steps' fixed cost dominates small
#: batches (B1 at B = 1: ~0.3 ms against ~2 ms on one CPU thread), the
#: product's ``T^2 B N`` work large ones.
MATRIX_FILTER_MAX_ELEMENTS = 1 << 20


def _filtered_presynaptic_matrix(
    spikes_pre: Tensor,
    trace_pre: Tensor,
    decay_pre: float,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_filtered_presynaptic` as one matrix product (the recurrences in closed form)::

    filtered[t] = sum_u (eta_post A_pre a_pre^(t-u) [u <= t] - eta_pre A_post a_post^(u-t) [u >= t]) s(u)
                  + eta_post a_pre^(t+1) x_pre(-1)
    last_pre    = sum_u A_pre a_pre^(T-1-u) s(u) + a_pre^T x_pre(-1)
    seen_by_carried = sum_u a_post^(u+1) s(u)
    """
    steps = spikes_pre.shape[0]
    dtype, device = trace_pre.dtype, trace_pre.device
    spikes = spike_values(spikes_pre, dtype).reshape(steps, -1)  # [T, B*N]
    matrix, entering, carry_scale = _window_filter_matrix(
        steps, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device
    )
    out = matrix @ spikes
    carried = trace_pre.reshape(-1)
    filtered = out[:steps]
    filtered.addr_(entering, carried)  # eta_post a_pre^(t+1) x_pre(-1)
    last_pre = out[steps].add_(carried, alpha=carry_scale)
    return filtered.view(spikes_pre.shape), last_pre.view(trace_pre.shape), out[steps + 1].view(trace_pre.shape)


#: Elements of one block of the filtered presynaptic window in the blocked
#: one-product form (steps per block = this // (B * N_in), at least 1).
#: Measured (one thread): 2^19 against 2^18 takes S1 (70000 -> 700, T = 100)
#: from 27.5 to 24.7 ms and B1 at B = 64 from 14.0 to 13.2 ms; 2^21 is slower.
FILTER_BLOCK_ELEMENTS = 1 << 19


def _block_event_matrices(
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
def _window_filter_matrix(
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
    """The whole window as one block of :func:`_filter_block_matrices` (no later steps: ``u_next = 0``).

    Returns ``([T+2, T] rows: the filtered steps, x_pre(T-1), a_post * u(0)``; the
    column of ``x_pre(-1)`` in the filtered steps; its factor ``a_pre^T`` in
    ``x_pre(T-1)``). Cached (read-only tensors): a trainer's windows repeat these.
    """
    matrix, carry_pre, carry_post = _filter_block_matrices(
        steps, decay_pre, decay_post, amplitude_pre, amplitude_post, eta_post, eta_pre, dtype, device
    )
    stacked = torch.cat(
        [matrix[:, :steps], carry_pre[:steps].unsqueeze(0), carry_post[:steps].unsqueeze(0) * decay_post]
    )
    return stacked, matrix[:, steps].clone(), float(decay_pre) ** steps


@functools.lru_cache(maxsize=64)
def _filter_block_matrices(
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
    """The recurrences of :func:`_filtered_presynaptic` over ``L`` steps in closed form.

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


#: Most elements of filtered presynaptic rows multiplied with the postsynaptic
#: spikes in one product of the blocked form (at least a filter block, at most
#: the weight's size). Each product passes over the whole change once (the CSR
#: product reads and writes all of its output, ~10 ms for a 70000 x 700
#: float32 weight however few events it adds), so a large weight gets few,
#: large products: S1 (70000 -> 700, T = 100) one per window instead of 34.
PRODUCT_BLOCK_ELEMENTS = 1 << 26


def _blocked_window_product(
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
) -> tuple[Tensor, Tensor, Tensor]:
    """``sum_t s_post(t)^T filtered(t)`` of a dense window, a block of steps at a time.

    Returns ``(main [1, O, N_in], last_pre, seen_by_carried)`` as
    :func:`_filtered_presynaptic` followed by :func:`pair_product` would, but
    the filtered window is never whole: a backward sweep over the filter
    blocks gathers the anti-causal sums entering each block (``u_next``),
    then a forward sweep computes each block's filtered rows with one small
    product (:func:`_filter_block_matrices`, blocks of
    :data:`FILTER_BLOCK_ELEMENTS`) into a product buffer of several blocks
    (:data:`PRODUCT_BLOCK_ELEMENTS`, at most the weight's size), which is
    multiplied with its postsynaptic spikes (event-driven or dense, chosen
    once for the window) when full. The change is thus written
    ``ceil(T*B*N_in / product elements)`` times per window (once for S1),
    and the buffer never exceeds the weight.
    """
    steps, batch = spikes_pre.shape[:2]
    dtype, device = trace_pre.dtype, trace_pre.device
    pre = _readable(spikes_pre).reshape(steps, -1)  # [T, B*N_in]
    width = pre.shape[1]
    inputs = width // batch
    outputs = spikes_post[0, 0].numel()
    post = spikes_post.reshape(steps * batch, outputs)
    sparse = _use_sparse(method, post)
    length = max(1, min(steps, FILTER_BLOCK_ELEMENTS // max(width, 1)))
    starts = list(range(0, steps, length))
    # filter blocks per product: as many as fit in the product budget and the weight's size
    product_elements = min(PRODUCT_BLOCK_ELEMENTS, max(outputs * inputs, FILTER_BLOCK_ELEMENTS))
    blocks_per_product = max(1, min(len(starts), product_elements // max(length * width, 1)))
    product_length = blocks_per_product * length

    def block_matrices(size: int) -> tuple[Tensor, Tensor, Tensor]:
        return _filter_block_matrices(
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
        event_blocks = _block_event_matrices(post, product_length * batch, outputs, dtype)
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


def _filtered_presynaptic(
    spikes_pre: Tensor,
    trace_pre: Tensor,
    decay_pre: Scalar,
    decay_post: float,
    amplitude_pre: float,
    amplitude_post: float,
    eta_post: float,
    eta_pre: float,
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
    window-sized temporary is made besides ``filtered`` itself.
    """
    steps = spikes_pre.shape[0]
    if steps and not isinstance(decay_pre, Tensor) and spikes_pre.numel() <= MATRIX_FILTER_MAX_ELEMENTS:
        return _filtered_presynaptic_matrix(
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


def stdp_delta_weight(
    potentiation: Tensor,
    depression: Tensor,
    weight: Tensor,
    *,
    eta_post: Scalar = 1.0,
    eta_pre: Scalar = 1.0,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
) -> Tensor:
    """``eta_post * f_post(w) * potentiation - eta_pre * f_pre(w) * depression`` in weight shape.

    Args:
        potentiation, depression: ``[G, O, K]`` raw products (e.g. from
            :func:`stdp_window`).
        weight: the connection's weight (dense ``[N_out, N_in]``, conv
            ``[C_out, C_in/G, *kernel]``), grouped with ``G`` of the products.
        eta_post, eta_pre: learning rates (weight units; tensors broadcast to
            ``[G, O, K]``); Hebbian: both > 0.
        f_post, f_pre: weight dependence ``f(w) -> factor`` (e.g. soft bounds
            ``(w_max - w)^mu`` and ``(w - w_min)^mu``; Gütig et al. 2003;
            Morrison et al. 2008); ``None`` is the identity (additive STDP).
    """
    potentiation = check_tensor(potentiation, "potentiation", ndim=3, floating=True)
    depression = check_tensor(depression, "depression", shape=potentiation.shape, floating=True)
    weight = check_tensor(weight, "weight", min_ndim=2)
    grouped = weight_to_grouped(weight, potentiation.shape[0]) if weight.shape[0] % potentiation.shape[0] == 0 else None
    if grouped is None or grouped.shape != potentiation.shape:
        raise ValueError(
            f"weight: shape {tuple(weight.shape)} does not group into the products' shape {tuple(potentiation.shape)}"
        )
    up = potentiation * eta_post if f_post is None else potentiation * f_post(grouped) * eta_post
    down = depression * eta_pre if f_pre is None else depression * f_pre(grouped) * eta_pre
    return grouped_to_weight(up - down, weight.shape)
