"""Spike-time kernels: hand values, NaN/inf handling, sign conventions, broadcasting."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.kernels import (
    Kernel,
    exp_post,
    exp_pre,
    gaussian,
    mexican_hat,
    rectangular,
    split_kernel_values,
    symmetric_exp,
)

NAN = float("nan")
INF = float("inf")


def _same(actual, expected):
    expected = torch.tensor(expected, dtype=actual.dtype)
    assert torch.allclose(actual, expected, rtol=1e-12, atol=0, equal_nan=True), (actual, expected)


def test_exp_post_hand_values():
    delta = torch.tensor([0.0, 10.0, -10.0, NAN, INF, -INF], dtype=torch.float64)
    _same(exp_post(delta, eta_post=2.0, tau_post=10.0), [2.0, 2.0 * math.exp(-1.0), 0.0, NAN, 0.0, 0.0])


def test_exp_pre_hand_values_and_default_sign():
    delta = torch.tensor([0.0, 10.0, -10.0, -5.0, NAN, INF, -INF], dtype=torch.float64)
    # default eta_pre = -1: anti-causal pairs depress (Hebbian)
    _same(exp_pre(delta, tau_pre=10.0), [0.0, 0.0, -math.exp(-1.0), -math.exp(-0.5), NAN, 0.0, 0.0])
    _same(exp_pre(delta, eta_pre=3.0, tau_pre=5.0)[:4], [0.0, 0.0, 3.0 * math.exp(-2.0), 3.0 * math.exp(-1.0)])


def test_mexican_hat_hand_values():
    delta = torch.tensor([0.0, 4.0, -4.0, 8.0, NAN, INF, -INF], dtype=torch.float64)
    expected = [1.5, 0.0, 0.0, 1.5 * (1 - 4) * math.exp(-2.0), NAN, 0.0, 0.0]
    _same(mexican_hat(delta, amplitude=1.5, sigma=4.0), expected)


def test_rectangular_edges():
    delta = torch.tensor([-5.0, -2.0, 0.0, 2.9, 3.0, NAN, INF, -INF], dtype=torch.float64)
    _same(rectangular(delta, amplitude=-0.5, start=-2.0, stop=3.0), [0.0, -0.5, -0.5, -0.5, 0.0, NAN, 0.0, 0.0])
    # [start, stop): an infinite start takes -inf in, an infinite stop leaves +inf out
    _same(rectangular(delta, amplitude=1.0, start=-INF, stop=0.0)[[0, 7]], [1.0, 1.0])
    _same(rectangular(delta, amplitude=1.0, start=0.0, stop=INF)[[2, 6]], [1.0, 0.0])


def test_gaussian_and_symmetric_exp_hand_values():
    delta = torch.tensor([2.0, 5.0, -1.0, INF, NAN], dtype=torch.float64)
    _same(
        gaussian(delta, amplitude=2.0, center=2.0, sigma=3.0),
        [2.0, 2.0 * math.exp(-0.5), 2.0 * math.exp(-0.5), 0.0, NAN],
    )
    _same(
        symmetric_exp(delta, amplitude=0.5, tau=2.0),
        [0.5 * math.exp(-1.0), 0.5 * math.exp(-2.5), 0.5 * math.exp(-0.5), 0.0, NAN],
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel", [exp_post, exp_pre, mexican_hat, rectangular, gaussian, symmetric_exp])
def test_kernels_keep_shape_and_dtype_and_follow_the_protocol(kernel, dtype):
    delta = torch.linspace(-30, 30, 24, dtype=dtype).reshape(2, 3, 4)
    out = kernel(delta)
    assert out.shape == delta.shape and out.dtype == dtype
    assert isinstance(kernel, Kernel)


def test_tensor_kwargs_broadcast():
    delta = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64)
    tau = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    eta = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    out = exp_post(delta, eta_post=eta, tau_post=tau)
    for row in range(2):
        for column in range(3):
            expected = [1.0, -2.0][row] * math.exp(-delta[row, column].item() / tau[column].item())
            assert out[row, column].item() == pytest.approx(expected, rel=1e-12)


@given(
    eta_post=st.floats(0.01, 5.0),
    eta_pre=st.floats(-5.0, -0.01),
    tau_post=st.floats(1.0, 50.0),
    tau_pre=st.floats(1.0, 50.0),
    deltas=st.lists(st.floats(-100, 100), min_size=1, max_size=20),
)
def test_hebbian_sign_convention(eta_post, eta_pre, tau_post, tau_pre, deltas):
    delta = torch.tensor(deltas, dtype=torch.float64)
    values = exp_post(delta, eta_post, tau_post) + exp_pre(delta, eta_pre, tau_pre)
    potentiation, depression = split_kernel_values(values)
    for d, up, down in zip(deltas, potentiation.tolist(), depression.tolist(), strict=True):
        if d >= 0:  # causal pair: potentiation only
            assert up == pytest.approx(eta_post * math.exp(-d / tau_post), rel=1e-12) and down == 0
        else:  # anti-causal pair: depression only, as a positive magnitude
            assert down == pytest.approx(-eta_pre * math.exp(d / tau_pre), rel=1e-12) and up == 0


def test_split_kernel_values_drops_nan():
    values = torch.tensor([1.5, -2.0, 0.0, NAN, INF, -INF], dtype=torch.float64)
    potentiation, depression = split_kernel_values(values)
    assert potentiation.tolist() == [1.5, 0.0, 0.0, 0.0, INF, 0.0]
    assert depression.tolist() == [0.0, 2.0, 0.0, 0.0, 0.0, INF]


def test_bad_parameters_are_named():
    delta = torch.zeros(3)
    with pytest.raises(ValueError, match=r"^tau_post"):
        exp_post(delta, tau_post=0.0)
    with pytest.raises(ValueError, match=r"^tau_pre"):
        exp_pre(delta, tau_pre=-1.0)
    with pytest.raises(ValueError, match=r"^sigma"):
        mexican_hat(delta, sigma=torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"^stop"):
        rectangular(delta, start=2.0, stop=1.0)
    with pytest.raises(TypeError, match=r"^delta"):
        exp_post(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"^delta"):
        exp_post([0.0, 1.0])
    with pytest.raises(ValueError, match=r"^eta_post"):
        exp_post(delta, eta_post=NAN)
    with pytest.raises(TypeError, match=r"^values"):
        split_kernel_values(torch.zeros(2, dtype=torch.int32))
