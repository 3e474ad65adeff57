"""Event-driven forward of a dense connection: the current gathered from the spikes.

For binary presynaptic spikes ``s`` (``[N, N_in]``, ``N`` = steps x samples)
and a weight ``W`` (``[N_out, N_in]``)::

    I[n, o] = amplitude * sum_{j: s[n, j]} W[o, j]        (= amplitude * s @ W^T)

:func:`event_linear` builds the spikes as a CSR matrix (one entry per spike)
and multiplies it with ``W^T``: work proportional to the number of spikes
times ``N_out`` instead of ``N * N_in * N_out``. :func:`use_event_linear`
decides when that beats the dense GEMM, by these measurements (one CPU
thread, 784 -> 400, float32; ``benchmarks/``):

========  =========  ==========  ============
rows N    density    GEMM        CSR product
========  =========  ==========  ============
1         0.01       28 us       201 us
64        0.01       468 us      432 us
6400      0.01       50 ms       22 ms
6400      0.05       50 ms       37 ms
6400      0.10       47 ms       53 ms
========  =========  ==========  ============

so the event form is taken for windows (at least :data:`EVENT_FORWARD_MIN_ROWS`
rows) below :data:`EVENT_FORWARD_DENSITY`. On a weight much larger than the
caches (70000 -> 700: 188 ms at density 0.005 against 139 ms for the GEMM)
torch's CSR product is slower than the GEMM at every density, because the
``[N_out, N_in]`` weight's columns are strided; such weights
(:data:`EVENT_FORWARD_MAX_WEIGHT`) keep the GEMM.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import Tensor

from plastic.functional.events import event_positions

__all__ = [
    "EVENT_FORWARD_DENSITY",
    "EVENT_FORWARD_MAX_WEIGHT",
    "EVENT_FORWARD_MIN_ROWS",
    "GATHER_DENSITY",
    "GATHER_DENSITY_LARGE",
    "GATHER_MIN_WORK",
    "bag_sum_rows",
    "event_linear",
    "gather_linear",
    "gather_rows",
    "is_input_major",
    "use_event_linear",
]

#: spike density (spikes / entries) below which windows take the event-driven product
EVENT_FORWARD_DENSITY = 0.05
#: fewest rows (steps x samples) for the event-driven product: CSR set-up costs ~0.2 ms
EVENT_FORWARD_MIN_ROWS = 256
#: largest weight (elements) for the event-driven product (see the module notes)
EVENT_FORWARD_MAX_WEIGHT = 1 << 22
#: spike density below which :func:`gather_linear` is taken on an input-major weight; measured
#: against the GEMM (one thread): 784 -> 400 at B = 1 0.38 / 0.43 / 0.55 / 0.80x at densities
#: 0.02 / 0.1 / 0.3 / 0.5, at B = 64 0.09 / 0.25 / 0.59 / 1.02x; 64 -> 300 at B = 64 0.47 / 0.56 /
#: 0.87 / 1.16x; 300 -> 300 at B = 64 0.16 / 0.33 / 0.67 / 1.10x
GATHER_DENSITY = 0.3
#: the same for weights of more than :data:`EVENT_FORWARD_MAX_WEIGHT` elements, whose rows come
#: from memory rather than cache: 70000 -> 700, T = 100, 0.13 / 0.56 / 1.20x at 0.02 / 0.1 / 0.2
GATHER_DENSITY_LARGE = 0.1
#: least dense work (rows x N_in x N_out) for :func:`gather_linear`: below it the GEMM is as fast
GATHER_MIN_WORK = 1 << 17


def use_event_linear(spikes: Tensor, weight: Tensor) -> bool:
    """Whether :func:`event_linear` is expected to beat the dense product for these operands.

    ``spikes`` ``[..., N_in]`` bool; ``weight`` ``[N_out, N_in]``. No autograd
    through the weight (the event form is for plasticity runs under
    ``torch.no_grad`` or with a weight that needs no gradient), a CPU or CUDA
    strided weight of at most :data:`EVENT_FORWARD_MAX_WEIGHT` elements, at
    least :data:`EVENT_FORWARD_MIN_ROWS` rows and density below
    :data:`EVENT_FORWARD_DENSITY` (one count, a device synchronisation).
    """
    if spikes.dtype != torch.bool or weight.ndim != 2 or not weight.is_floating_point():
        return False
    if torch.is_grad_enabled() and weight.requires_grad:
        return False
    if weight.numel() > EVENT_FORWARD_MAX_WEIGHT or weight.layout != torch.strided:
        return False
    rows = spikes.numel() // max(spikes.shape[-1], 1)
    if rows < EVENT_FORWARD_MIN_ROWS:
        return False
    return int(torch.count_nonzero(spikes)) < EVENT_FORWARD_DENSITY * spikes.numel()


def event_linear(spikes: Tensor, weight: Tensor, amplitude: float = 1.0) -> Tensor:
    """``amplitude * spikes @ weight^T`` for bool ``spikes`` ``[..., N_in]``, by a CSR product.

    Returns ``[..., N_out]`` in the weight's dtype and device. The sum over
    each row's spikes runs in increasing input order (the dense GEMM's order
    differs, so float results agree to rounding, not bit for bit).
    """
    if spikes.dtype != torch.bool:
        raise TypeError(f"spikes: expected bool spikes, got dtype {spikes.dtype}")
    if spikes.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"spikes: expected last dimension {weight.shape[-1]} (the weight's inputs), got {spikes.shape[-1]}"
        )
    leading = spikes.shape[:-1]
    flat = spikes.reshape(-1, spikes.shape[-1])
    rows, columns = flat.nonzero(as_tuple=True)  # row-major: CSR order
    crow = torch.zeros(flat.shape[0] + 1, dtype=torch.int64, device=weight.device)
    torch.cumsum(torch.bincount(rows, minlength=flat.shape[0]), 0, out=crow[1:])
    values = torch.full((columns.numel(),), amplitude, dtype=weight.dtype, device=weight.device)
    with warnings.catch_warnings():
        # CSR support is flagged beta; the invariants hold by construction
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.sparse_csr_tensor(crow, columns, values, size=tuple(flat.shape), check_invariants=False)
        out = matrix @ weight.T
    return out.reshape(*leading, weight.shape[0])


def is_input_major(weight: Tensor) -> bool:
    """Whether the ``[N_out, N_in]`` ``weight`` lies in memory input by input (its transpose is contiguous).

    Then ``weight.T`` ``[N_in, N_out]`` holds each input's outgoing weights as
    one contiguous row, and :func:`gather_linear` reads them directly.
    """
    if weight.ndim != 2 or weight.layout != torch.strided:
        return False
    # weight.T.is_contiguous() from the strides (the view costs more than the test): the transpose
    # [N_in, N_out] is contiguous when its rows are N_out apart and its elements adjacent (a
    # dimension of size 1 may have any stride)
    outputs, inputs = weight.shape
    output_stride, input_stride = weight.stride()
    return (output_stride == 1 or outputs == 1) and (input_stride == outputs or inputs == 1)


#: the start of one bag on the CPU (never written)
_ONE_BAG = torch.zeros(1, dtype=torch.int64)


@functools.lru_cache(maxsize=16)
def _bag_starts(rows: int, device: torch.device) -> Tensor:
    """``0..rows-1`` (int64, cached, never written): the bags whose starts ``searchsorted`` finds."""
    return torch.arange(rows, dtype=torch.int64, device=device)


def gather_linear(spikes: Tensor, rows: Tensor, amplitude: float = 1.0, *, density: float = 1.0) -> Tensor | None:
    """``amplitude * spikes @ rows`` for bool ``spikes`` ``[..., N_in]``, summing the rows of the spiking inputs.

    ``rows`` is ``[N_in, N_out]`` with contiguous rows: the transpose of an
    input-major weight (:func:`is_input_major`), so each spike reads its
    input's ``N_out`` outgoing weights in one sequential pass::

        I[n, o] = amplitude * sum_{j: spikes[n, j]} rows[j, o]     (j increasing)

    One ``embedding_bag`` over the spikes' indices (a bag per row ``n`` of
    the flattened leading dimensions): the work follows the spikes, not
    ``N * N_in * N_out``. Returns ``[..., N_out]`` in ``rows``' dtype, or
    ``None`` when the spikes are ``density`` or denser (the dense product is
    then the faster one; their count is known once they are found); a
    ``density`` of 1 or more (the default) always gathers. The sum
    runs in increasing input order: float results equal the dense product
    to rounding, not bit for bit.
    """
    if spikes.dtype != torch.bool:
        raise TypeError(f"spikes: expected bool spikes, got dtype {spikes.dtype}")
    if rows.ndim != 2 or spikes.shape[-1] != rows.shape[0]:
        raise ValueError(
            f"spikes: expected last dimension {rows.shape[0] if rows.ndim == 2 else '?'} (the rows of "
            f"a [N_in, N_out] matrix), got spikes {tuple(spikes.shape)} and rows {tuple(rows.shape)}"
        )
    return gather_rows(spikes, rows, amplitude, density)


def gather_rows(spikes: Tensor, rows: Tensor, amplitude: float, density: float) -> Tensor | None:
    """:func:`gather_linear` for arguments known to fit (bool ``spikes`` ``[..., N_in]``, ``rows`` a
    2-d ``[N_in, N_out]``): what the per-step callers that checked the layout once call."""
    inputs = rows.shape[0]
    positions = event_positions(spikes)  # flat row-major positions: bag n's spikes in input order
    count = spikes.numel()
    if density < 1.0 and positions.numel() >= density * count:  # 1: gather whatever the density
        return None
    bags = count // max(inputs, 1)
    if not positions.numel():  # no spike: nothing to gather (a lateral connection's usual step)
        out = rows.new_zeros(bags, rows.shape[1])
        return out if spikes.ndim == 2 else out.reshape(*spikes.shape[:-1], rows.shape[1])
    if bags == 1:
        columns, starts = positions, _ONE_BAG if rows.is_cpu else _bag_starts(1, rows.device)
    else:
        row = torch.div(positions, inputs, rounding_mode="floor")
        columns = positions - row * inputs
        starts = torch.searchsorted(row, _bag_starts(bags, rows.device))
    out = bag_sum_rows(rows, columns, starts)
    if amplitude != 1.0:
        out.mul_(amplitude)
    return out if spikes.ndim == 2 else out.reshape(*spikes.shape[:-1], rows.shape[1])


def bag_sum_rows(rows: Tensor, indices: Tensor, starts: Tensor) -> Tensor:
    """``out[n] = sum_{j in bag n} rows[indices[j]]`` (bag ``n`` from ``starts[n]`` to the next start):
    the sum mode of ``embedding_bag``.

    Its aten op, without the Python argument handling of ``F.embedding_bag``;
    where no gradient is to be recorded, the forward-only op (the general one
    also computes what its backward would need: ~1.3 us of a one-sample step's
    ~3.7 us).
    """
    if _FORWARD_ONLY is not None and not (rows.requires_grad and torch.is_grad_enabled()):
        result: Tensor = _FORWARD_ONLY(rows, indices, starts, False, 0, False, None, False, -1)[0]
        return result
    return torch.embedding_bag(rows, indices, starts, False, 0, False, None, False, None)[0]


# the forward-only embedding bag (a private aten binding: absent, the general op is used)
_FORWARD_ONLY = getattr(torch, "_embedding_bag_forward_only", None)
