"""Rate homeostasis math (plastic.functional.homeostasis): EMA rates against a
per-step loop and the closed form, sign conventions on hand cases, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.homeostasis import (
    homeostatic_change,
    rate_ema_alpha,
    rate_ema_step,
    rate_ema_window,
    synaptic_scaling_factor,
)


@given(
    seed=st.integers(0, 2**31 - 1),
    steps=st.integers(1, 20),
    split=st.integers(1, 19),
    alpha=st.floats(0.01, 1.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_ema_window_matches_loop_steps_and_chaining(seed, steps, split, alpha, dtype):
    generator = torch.Generator().manual_seed(seed)
    spikes = torch.rand(steps, 2, 3, generator=generator) < 0.3
    rate = torch.rand(2, 3, generator=generator, dtype=dtype)
    expected = rate.double().clone()
    history = []
    for t in range(steps):
        expected = [
            [expected[b][i] + alpha * (float(spikes[t, b, i]) - expected[b][i]) for i in range(3)] for b in range(2)
        ]
        expected = torch.tensor(expected, dtype=torch.float64)
        history.append(expected)
    rates, last = rate_ema_window(rate, spikes, alpha)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(rates.double(), torch.stack(history), rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(last.double(), history[-1], rtol=tolerance, atol=tolerance)
    stepped = rate
    for t in range(steps):
        stepped = rate_ema_step(stepped, spikes[t], alpha)
    torch.testing.assert_close(stepped, last, rtol=tolerance, atol=tolerance)
    split = min(split, steps)
    _, middle = rate_ema_window(rate, spikes[:split], alpha)
    _, chained = rate_ema_window(middle, spikes[split:], alpha)
    torch.testing.assert_close(chained, last, rtol=tolerance, atol=tolerance)


def test_ema_converges_to_the_firing_probability():
    """A neuron firing every 4th step: the EMA's mean over a period approaches 1/4."""
    spikes = torch.zeros(4000, 1, dtype=torch.bool)
    spikes[::4] = True
    rates, _ = rate_ema_window(torch.zeros(1, dtype=torch.float64), spikes, rate_ema_alpha(1.0, 200.0))
    assert rates[-4:].mean().item() == pytest.approx(0.25, abs=1e-3)


def test_alpha_from_time_constant():
    assert rate_ema_alpha(1.0, 10.0) == pytest.approx(1.0 - math.exp(-0.1), rel=1e-14)
    assert rate_ema_alpha(0.5, 1e-9) == pytest.approx(1.0)


def test_sign_conventions():
    observed = torch.tensor([0.1, 0.3, 0.2], dtype=torch.float64)  # below, above, at target 0.2
    weight = homeostatic_change(observed, 0.2, 0.5, target="weight")
    bias = homeostatic_change(observed, 0.2, 0.5, target="bias")
    threshold = homeostatic_change(observed, 0.2, 0.5, target="threshold")
    torch.testing.assert_close(weight, torch.tensor([0.05, -0.05, 0.0], dtype=torch.float64))
    torch.testing.assert_close(bias, weight)
    torch.testing.assert_close(threshold, torch.tensor([-0.05, 0.05, 0.0], dtype=torch.float64))
    per_neuron_target = torch.tensor([0.1, 0.1, 0.4], dtype=torch.float64)
    torch.testing.assert_close(
        homeostatic_change(observed, per_neuron_target, 1.0), torch.tensor([0.0, -0.2, 0.2], dtype=torch.float64)
    )
    torch.testing.assert_close(
        synaptic_scaling_factor(observed, 0.2, 1.0), torch.tensor([1.1, 0.9, 1.0], dtype=torch.float64)
    )


def test_bad_input_raises_named_errors():
    rate = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^spikes"):
        rate_ema_step(rate, torch.full((2, 3), 0.5), 0.1)
    with pytest.raises(ValueError, match=r"^spikes"):
        rate_ema_step(rate, torch.zeros(3, 2), 0.1)
    with pytest.raises(ValueError, match=r"^alpha"):
        rate_ema_step(rate, torch.zeros(2, 3), 1.5)
    with pytest.raises(ValueError, match=r"^alpha"):
        rate_ema_window(rate, torch.zeros(4, 2, 3), 0.0)
    with pytest.raises(ValueError, match=r"^rate"):
        rate_ema_step(torch.full((2, 3), float("nan")), torch.zeros(2, 3), 0.1)
    with pytest.raises(TypeError, match=r"^rate"):
        rate_ema_step(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3), 0.1)
    with pytest.raises(ValueError, match=r"^tau_rate"):
        rate_ema_alpha(1.0, 0.0)
    with pytest.raises(ValueError, match=r"^dt"):
        rate_ema_alpha(-1.0, 1.0)
    with pytest.raises(ValueError, match=r"^target"):
        homeostatic_change(rate, 0.1, 0.1, target="gain")
    with pytest.raises(ValueError, match=r"^rate_target"):
        homeostatic_change(rate, -0.1, 0.1)
    with pytest.raises(ValueError, match=r"^rate_target"):
        homeostatic_change(rate, torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match=r"^learning_rate"):
        homeostatic_change(rate, 0.1, float("nan"))
