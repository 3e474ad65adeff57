"""All-pairs kernel STDP: brute-force pair sums for arbitrary kernels, equality
with cumulative-trace STDP for exponential kernels, conv, filters, errors."""

import math
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from plastic.functional.all_pairs import all_pairs_window, kernel_filter_window
from plastic.functional.kernels import exp_post, exp_pre, gaussian, mexican_hat, rectangular
from plastic.functional.receptive import ConvGeometry
from plastic.functional.stdp import stdp_window


def brute_force_pairs(pre, post, kernel, dt):
    """Per-sample [B, N_out, N_in] sums of K+ and K- over every spike pair (explicit loops)."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    pot = np.zeros((batch, n_out, n_in))
    dep = np.zeros((batch, n_out, n_in))
    for b in range(batch):
        for i in range(n_out):
            for j in range(n_in):
                for t in range(steps):
                    if not post[t, b, i]:
                        continue
                    for u in range(steps):
                        if pre[u, b, j]:
                            value = kernel((t - u) * dt)
                            pot[b, i, j] += max(value, 0.0)
                            dep[b, i, j] += max(-value, 0.0)
    return pot, dep


def _close(actual, expected, rel=1e-9, atol=1e-12):
    expected = torch.as_tensor(np.asarray(expected), dtype=torch.float64)
    actual = actual.to(torch.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = expected.abs().max().item() if expected.numel() else 0.0
    err = (actual - expected).abs().max().item() if expected.numel() else 0.0
    assert err <= rel * scale + atol, (err, scale)


# scalar versions written here, independently of plastic.functional.kernels
SCALAR_KERNELS = {
    "mexican_hat": (
        lambda d: 1.3 * (1 - (d / 4.0) ** 2) * math.exp(-(d**2) / 32.0),
        partial(mexican_hat, amplitude=1.3, sigma=4.0),
    ),
    "rectangular": (
        lambda d: -0.7 if -3.0 <= d < 2.0 else 0.0,
        partial(rectangular, amplitude=-0.7, start=-3.0, stop=2.0),
    ),
    "gaussian_shifted": (
        lambda d: 0.9 * math.exp(-0.5 * ((d - 2.0) / 1.5) ** 2) - 0.3,
        lambda delta: gaussian(delta, amplitude=0.9, center=2.0, sigma=1.5) - 0.3,
    ),
}

cases = st.fixed_dictionaries(
    {
        "steps": st.integers(1, 9),
        "batch": st.integers(1, 4),
        "n_in": st.integers(1, 4),
        "n_out": st.integers(1, 3),
        "dt": st.sampled_from([0.5, 1.0, 1.5]),
        "rate_pre": st.floats(0.05, 0.8),
        "rate_post": st.floats(0.05, 0.8),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def _draw(case):
    generator = torch.Generator().manual_seed(case["seed"])
    pre = torch.rand(case["steps"], case["batch"], case["n_in"], generator=generator) < case["rate_pre"]
    post = torch.rand(case["steps"], case["batch"], case["n_out"], generator=generator) < case["rate_post"]
    return pre, post


@given(
    case=cases,
    name=st.sampled_from(sorted(SCALAR_KERNELS)),
    filter_method=st.sampled_from(["matmul", "fft"]),
    method=st.sampled_from(["dense", "sparse"]),
    reduction=st.sampled_from(["sum", "mean", "amax"]),
)
def test_all_pairs_matches_brute_force(case, name, filter_method, method, reduction):
    pre, post = _draw(case)
    scalar, kernel = SCALAR_KERNELS[name]
    pot, dep = brute_force_pairs(pre.numpy(), post.numpy(), scalar, case["dt"])
    batch_reduction = (lambda x: x.amax(0)) if reduction == "amax" else reduction
    out = all_pairs_window(
        pre, post, kernel, dt=case["dt"], filter_method=filter_method, method=method,
        batch_reduction=batch_reduction, dtype=torch.float64,
    )  # fmt: skip
    reduce = {"sum": lambda a: a.sum(0), "mean": lambda a: a.mean(0), "amax": lambda a: a.max(0)}[reduction]
    _close(out.potentiation, reduce(pot)[None])
    _close(out.depression, reduce(dep)[None])


@given(
    case=cases,
    eta_post=st.floats(0.01, 2.0),
    eta_pre=st.floats(0.01, 2.0),
    tau_pre=st.floats(2.0, 30.0),
    tau_post=st.floats(2.0, 30.0),
)
def test_exponential_kernels_equal_cumulative_trace_stdp(case, eta_post, eta_pre, tau_pre, tau_post):
    pre, post = _draw(case)
    dt = case["dt"]

    def trace_form(pre, post):
        """Trace STDP of the window from zero traces (the reference of both comparisons)."""
        zeros = torch.zeros(case["batch"], case["n_in"], dtype=torch.float64)
        return stdp_window(pre, post, zeros, None, tau_pre=tau_pre, tau_post=tau_post, dt=dt)

    trace = trace_form(pre, post)
    # exp_pre covers delta < 0 only, the trace form counts simultaneous pairs in
    # both terms: a depression kernel that includes delta = 0 gives the trace form exactly
    with_zero = lambda delta: -eta_pre * torch.exp(-delta.abs() / tau_post) * (delta <= 0)  # noqa: E731
    out = all_pairs_window(
        pre, post, [exp_post, with_zero], dt=dt, kernel_kwargs=[{"eta_post": eta_post, "tau_post": tau_pre}, {}],
        dtype=torch.float64,
    )  # fmt: skip
    _close(out.potentiation, eta_post * trace.potentiation)
    _close(out.depression, eta_pre * trace.depression)
    # without simultaneous pairs (pre on even steps, post on odd ones) exp_post + exp_pre is the trace form
    even = torch.arange(case["steps"])[:, None, None] % 2 == 0
    pre, post = pre & even, post & ~even
    trace = trace_form(pre, post)
    summed = lambda delta: exp_post(delta, eta_post, tau_pre) + exp_pre(delta, -eta_pre, tau_post)  # noqa: E731
    out = all_pairs_window(pre, post, summed, dt=dt, dtype=torch.float64)
    _close(out.potentiation, eta_post * trace.potentiation)
    _close(out.depression, eta_pre * trace.depression)


@given(
    dims=st.sampled_from([1, 2]),
    groups=st.sampled_from([1, 2]),
    kernel_size=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    padding_mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    size=st.integers(3, 5),
    steps=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv_all_pairs_equals_trace_stdp_with_exponential_kernels(
    dims, groups, kernel_size, stride, padding, dilation, padding_mode, size, steps, seed
):
    assume(size + 2 * padding - dilation * (kernel_size - 1) - 1 >= 0)
    geometry = ConvGeometry.create(
        dims, 2 * groups, 2 * groups, kernel_size, stride, padding, dilation, groups, padding_mode
    )
    generator = torch.Generator().manual_seed(seed)
    out_size = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    pre = torch.rand(steps, 2, 2 * groups, *(size,) * dims, generator=generator) < 0.4
    post = torch.rand(steps, 2, 2 * groups, *(out_size,) * dims, generator=generator) < 0.4
    trace = stdp_window(
        pre, post, torch.zeros(pre.shape[1:], dtype=torch.float64), None, tau_pre=5.0, tau_post=9.0, view=geometry
    )
    depress = lambda delta: -2.0 * torch.exp(delta / 9.0) * (delta <= 0)  # noqa: E731
    out = all_pairs_window(pre, post, [partial(exp_post, tau_post=5.0), depress], view=geometry, dtype=torch.float64)
    _close(out.potentiation, trace.potentiation)
    _close(out.depression, 2.0 * trace.depression)


@given(steps=st.integers(1, 12), count=st.integers(1, 5), seed=st.integers(0, 1000))
def test_kernel_filter_matches_explicit_convolution(steps, count, seed):
    generator = torch.Generator().manual_seed(seed)
    trains = torch.rand(steps, count, generator=generator, dtype=torch.float64)
    lag_values = torch.randn(2, 2 * steps - 1, generator=generator, dtype=torch.float64)
    expected = np.zeros((2, steps, count))
    for c in range(2):
        for t in range(steps):
            for u in range(steps):
                expected[c, t] += lag_values[c, t - u + steps - 1].item() * trains[u].numpy()
    for method in ("matmul", "fft", "auto"):
        _close(kernel_filter_window(trains, lag_values, method=method), expected, atol=1e-12)


def test_hand_computed_window():
    # pre at 0 and 3, post at 2 (dt = 1): lags +2 and -1
    pre = torch.zeros(4, 1, 1, dtype=torch.bool)
    post = torch.zeros(4, 1, 1, dtype=torch.bool)
    pre[0] = pre[3] = True
    post[2] = True
    out = all_pairs_window(pre, post, lambda d: torch.where(d > 0, 2.0 * d, d), dtype=torch.float64)
    assert out.potentiation.item() == pytest.approx(4.0)
    assert out.depression.item() == pytest.approx(1.0)


def test_long_windows_use_fft_and_agree():
    generator = torch.Generator().manual_seed(1)
    pre = torch.rand(1600, 1, 3, generator=generator) < 0.05
    post = torch.rand(1600, 1, 2, generator=generator) < 0.05
    kernel = partial(mexican_hat, amplitude=1.0, sigma=15.0)
    fft = all_pairs_window(pre, post, kernel, dtype=torch.float64)  # auto -> FFT at this length
    matmul = all_pairs_window(pre, post, kernel, dtype=torch.float64, filter_method="matmul")
    _close(fft.potentiation, matmul.potentiation, atol=1e-10)
    _close(fft.depression, matmul.depression, atol=1e-10)


def test_bad_inputs_raise_named_errors():
    pre = torch.zeros(3, 2, 4, dtype=torch.bool)
    post = torch.zeros(3, 2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"^spikes_post"):
        all_pairs_window(pre, post[:, :1], exp_post)
    with pytest.raises(ValueError, match=r"^spikes_pre"):
        all_pairs_window(pre.float() + 0.5, post, exp_post)
    with pytest.raises(ValueError, match=r"^dt"):
        all_pairs_window(pre, post, exp_post, dt=0.0)
    with pytest.raises(ValueError, match=r"^kernel"):
        all_pairs_window(pre, post, lambda d: d.sum())
    with pytest.raises(ValueError, match=r"^kernel_kwargs"):
        all_pairs_window(pre, post, exp_post, kernel_kwargs={"tau_post": torch.full((3,), 5.0)})
    with pytest.raises(TypeError, match=r"^kernel"):
        all_pairs_window(pre, post, [])
    with pytest.raises(TypeError, match=r"^kernel_kwargs"):
        all_pairs_window(pre, post, [exp_post, exp_pre], kernel_kwargs=[{}])
    with pytest.raises(ValueError, match=r"^filter_method"):
        all_pairs_window(pre, post, exp_post, filter_method="conv")
    with pytest.raises(ValueError, match=r"^batch_reduction"):
        all_pairs_window(pre, post, exp_post, batch_reduction="median")
