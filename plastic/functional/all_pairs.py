"""All-pairs kernel STDP over a window: every pre/post spike pair counts.

Every pair of a presynaptic spike at step ``u`` and a postsynaptic spike at
step ``t`` of the same sample in a recorded window contributes the kernel value
of their time difference::

    dw[i, j] = sum_b sum_{t, u} s_post[t, b, i] * s_pre[u, b, j] * K((t - u) * dt)

Positive kernel values go to potentiation, negative values (negated) to
depression (DESIGN.md, "Kernel STDP"). The pairs are never enumerated: the
presynaptic trains are filtered along time with the split kernels
``K+ = max(K, 0)`` and ``K- = max(-K, 0)`` sampled at the lags
``-(T-1) .. (T-1)``::

    F+-[t, b, j] = sum_u K+-((t - u) * dt) * s_pre[u, b, j]

(a 1-d convolution along time: one product with the ``[T, T]`` Toeplitz
matrix of kernel values for windows up to :data:`FFT_MIN_STEPS` steps, FFT
(``torch.fft.rfft``) beyond), and each part is then one
matrix product over ``T*B`` (conv: ``T*B*P`` through the receptive views)::

    potentiation = sum_{t, b} s_post[t, b]^T F+[t, b]
    depression   = sum_{t, b} s_post[t, b]^T F-[t, b]

Pairs with one spike outside the window are not counted (a window stands
alone). With the exponential kernels of :mod:`plastic.functional.kernels`
(``exp_post(eta_post, tau)`` + ``exp_pre(eta_pre, tau')``) the result equals
cumulative-trace STDP with zero initial traces and exact decay, except for
simultaneous pairs: ``delta = 0`` belongs to ``exp_post`` only, whereas the
trace form counts a simultaneous pair in both terms. Passing a *sequence* of
kernels splits each kernel separately (so a depression kernel that includes
``delta = 0`` reproduces the trace form exactly); a single callable is split
after evaluation.

Kernels here must depend on the lag only: keyword arguments are numbers or
one-element tensors (per-synapse kernel parameters need the event-time form).

References: Song, Miller & Abbott (2000), Nat. Neurosci. 3:919 (all-to-all
additive STDP); Morrison, Diesmann & Gerstner (2008), Biol. Cybern. 98:459
(pairing schemes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from plastic.functional.bilinear import BatchReduction, View
from plastic.functional.kernels import Kernel, split_kernel_values
from plastic.functional.pair_products import pair_product
from plastic.functional.validation import check_choice, check_positive, check_same_device, check_spikes

__all__ = ["FFT_MIN_STEPS", "AllPairsUpdate", "all_pairs_window", "kernel_filter_window"]

#: Window length from which ``filter_method="auto"`` filters by FFT instead of
#: one matrix product with the ``[T, T]`` Toeplitz matrix of kernel values.
#: Measured on this 2-core CPU (single thread, float32, 4096 trains, two
#: kernels): Toeplitz GEMM 3.6 / 65 / 376 / 1869 ms at T = 100 / 400 / 1000 /
#: 2000, FFT 68 / 285 / 737 / 1403 ms. (A direct ``conv1d`` with one input
#: channel was 10x slower than the GEMM at T = 100 and is not offered.)
FFT_MIN_STEPS = 1500


class AllPairsUpdate(NamedTuple):
    """Non-negative ``[G, O, K]`` sums of the positive and (negated) negative kernel values."""

    potentiation: Tensor
    depression: Tensor


def _fft_size(minimum: int) -> int:
    """Smallest ``2^a 3^b 5^c >= minimum`` (fast sizes for pocketfft/cuFFT)."""
    size = minimum
    while True:
        rest = size
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return size
        size += 1


def kernel_filter_window(
    trains: Tensor, lag_values: Tensor, *, method: Literal["auto", "matmul", "fft"] = "auto"
) -> Tensor:
    """Filter spike trains along time with kernels given at lags ``-(T-1)..(T-1)``::

        out[c, t, n] = sum_u lag_values[c, t - u + T - 1] * trains[u, n]

    Args:
        trains: ``[T, N]`` floating values (time first, anything flattened after).
        lag_values: ``[C, 2T - 1]`` kernel values, ``lag_values[:, T - 1]`` at lag 0.
        method: ``"matmul"`` (one product with the ``[C*T, T]`` Toeplitz
            matrix, O(T^2 N) but BLAS-fast), ``"fft"`` (O(T log T N)) or
            ``"auto"`` (FFT from :data:`FFT_MIN_STEPS` steps).

    Returns ``[C, T, N]``.
    """
    steps, count = trains.shape
    channels = lag_values.shape[0]
    if steps == 0:
        return trains.new_zeros(channels, 0, count)
    if method == "fft" or (method == "auto" and steps >= FFT_MIN_STEPS):
        size = _fft_size(3 * steps - 2)  # >= T + (2T - 1) - 1: no circular wrap-around
        spectrum = torch.fft.rfft(trains.T.contiguous(), n=size)  # [N, S], time contiguous
        kernel_spectrum = torch.fft.rfft(lag_values, n=size)  # [C, S]
        # [N, C, size] (torch.fft's functions are unannotated: their results read as Any)
        full: Tensor = torch.fft.irfft(spectrum.unsqueeze(1) * kernel_spectrum, n=size)
        # full[m] = sum_u lag[m - u] x[u] and lag index t - u + T - 1: output t sits at m = t + T - 1
        return full[..., steps - 1 : 2 * steps - 1].permute(1, 2, 0)
    time = torch.arange(steps, device=trains.device)
    toeplitz = lag_values[:, time[:, None] - time[None, :] + steps - 1]  # [C, T(t), T(u)]
    return (toeplitz.reshape(channels * steps, steps) @ trains).reshape(channels, steps, count)


def _kernel_list(
    kernel: Kernel | Sequence[Kernel], kernel_kwargs: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
) -> list[tuple[Kernel, Mapping[str, Any]]]:
    if callable(kernel):
        if kernel_kwargs is not None and not isinstance(kernel_kwargs, Mapping):
            raise TypeError("kernel_kwargs: expected a mapping for a single kernel")
        return [(kernel, kernel_kwargs or {})]
    kernels = list(kernel)
    if not kernels or not all(callable(k) for k in kernels):
        raise TypeError("kernel: expected a kernel callable or a non-empty sequence of them")
    if kernel_kwargs is None:
        return [(k, {}) for k in kernels]
    if isinstance(kernel_kwargs, Mapping) or len(kernel_kwargs) != len(kernels):
        raise TypeError("kernel_kwargs: expected one mapping per kernel")
    return list(zip(kernels, kernel_kwargs, strict=True))


def _check_lag_only(kernels: list[tuple[Kernel, Mapping[str, Any]]]) -> None:
    for kwargs in (kwargs for _, kwargs in kernels):
        for name, value in kwargs.items():
            if isinstance(value, Tensor) and value.numel() != 1:
                raise ValueError(
                    f"kernel_kwargs: {name} has shape {tuple(value.shape)}; all-pairs kernels depend "
                    "on the lag only (numbers or one-element tensors)"
                )


def all_pairs_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    kernel: Kernel | Sequence[Kernel],
    *,
    dt: float = 1.0,
    kernel_kwargs: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
    filter_method: Literal["auto", "matmul", "fft"] = "auto",
    method: Literal["auto", "dense", "sparse"] = "auto",
    dtype: torch.dtype | None = None,
) -> AllPairsUpdate:
    """All-pairs kernel STDP of one window (see the module notes for the equations).

    Args:
        spikes_pre: ``[T, B, *in_shape]`` presynaptic spikes (bool or {0, 1}).
        spikes_post: ``[T, B, *out_shape]`` postsynaptic spikes.
        kernel: ``K(delta, **kwargs)`` with ``delta = t_post - t_pre`` in the
            unit of ``dt`` (see :mod:`plastic.functional.kernels`), or a
            sequence of kernels each split into its own positive and negative
            parts.
        dt: step (> 0, ms by convention); lags are ``(t - u) * dt``.
        kernel_kwargs: keyword arguments of the kernel (one mapping per kernel
            for a sequence); numbers or one-element tensors.
        view: ``None`` (dense), a ``ConvGeometry`` or a connection.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.
        filter_method: ``"matmul"`` (Toeplitz product), ``"fft"``, or ``"auto"``.
        method: ``"dense"``/``"sparse"``/``"auto"`` final product (sparse
            gathers the filtered rows at postsynaptic events).
        dtype: computation dtype (floating spikes' dtype, else the default).

    Returns :class:`AllPairsUpdate` ``(potentiation, depression)``, ``[G, O, K]``.
    """
    pre = check_spikes(spikes_pre, "spikes_pre", min_ndim=3)
    post = check_spikes(spikes_post, "spikes_post", min_ndim=3)
    if pre.shape[:2] != post.shape[:2]:
        raise ValueError(
            f"spikes_post: expected the leading dimensions [T, B] = {tuple(pre.shape[:2])} of "
            f"spikes_pre, got {tuple(post.shape)}"
        )
    check_same_device(spikes_pre=pre, spikes_post=post)
    dt = check_positive(dt, "dt")
    check_choice(filter_method, "filter_method", ("auto", "matmul", "fft"))
    check_choice(method, "method", ("auto", "dense", "sparse"))
    if isinstance(batch_reduction, str) or not callable(batch_reduction):
        check_choice(batch_reduction, "batch_reduction", ("sum", "mean"))
    kernels = _kernel_list(kernel, kernel_kwargs)
    _check_lag_only(kernels)
    if dtype is None:
        dtype = spikes_pre.dtype if spikes_pre.is_floating_point() else torch.get_default_dtype()
    steps, _batch = pre.shape[:2]

    lags = torch.arange(-(steps - 1), steps, dtype=dtype, device=pre.device) * dt
    positive = torch.zeros_like(lags)
    negative = torch.zeros_like(lags)
    for index, (function, kwargs) in enumerate(kernels):
        values = function(lags, **kwargs)
        if not isinstance(values, Tensor) or values.shape != lags.shape:
            shown = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ValueError(
                f"kernel: kernel {index} must return delta's shape {tuple(lags.shape)} (its "
                f"parameters must not depend on the synapse here), got {shown}"
            )
        up, down = split_kernel_values(values.to(dtype))
        positive += up
        negative += down

    s_pre = pre.to(dtype)
    s_post = post.to(dtype)
    filtered = kernel_filter_window(
        s_pre.reshape(steps, -1), torch.stack([positive, negative]), method=filter_method
    ).reshape(2, *pre.shape)
    potentiation, depression = (
        pair_product(s_post, side, view=view, events="post", batch_reduction=batch_reduction, method=method)
        for side in (filtered[0], filtered[1])
    )
    # FFT round-off can leave tiny negative sums where the true value is 0
    return AllPairsUpdate(potentiation.clamp(min=0), depression.clamp(min=0))
