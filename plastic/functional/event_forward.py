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

import warnings

import torch
from torch import Tensor

__all__ = [
    "EVENT_FORWARD_DENSITY",
    "EVENT_FORWARD_MAX_WEIGHT",
    "EVENT_FORWARD_MIN_ROWS",
    "event_linear",
    "use_event_linear",
]

#: spike density (spikes / entries) below which windows take the event-driven product
EVENT_FORWARD_DENSITY = 0.05
#: fewest rows (steps x samples) for the event-driven product: CSR set-up costs ~0.2 ms
EVENT_FORWARD_MIN_ROWS = 256
#: largest weight (elements) for the event-driven product (see the module notes)
EVENT_FORWARD_MAX_WEIGHT = 1 << 22


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
