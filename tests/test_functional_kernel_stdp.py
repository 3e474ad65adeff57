"""Event-time kernel STDP sums (plastic.functional.kernel_stdp) against element-by-element loops.

The reference walks every sample, group, synapse and position in Python,
computes ``delta`` and the two kernels' values with ``math.exp`` and splits
each value by its sign: no tensor code of the module under test is involved.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.kernel_stdp import exponential_split, kernel_pair_sums, kernel_split
from plastic.functional.kernels import exp_post, exp_pre, gaussian, rectangular

F64 = torch.float64


def python_exp_kernels(delta, eta_post, tau_post, eta_pre, tau_pre):
    """Signed values of the two exponential kernels at one ``delta`` (floats)."""
    if math.isnan(delta):
        return 0.0, 0.0
    if delta >= 0:
        return eta_post * math.exp(-delta / tau_post), 0.0
    return 0.0, eta_pre * math.exp(delta / tau_pre)


def split_values(*values):
    potentiation = sum(max(v, 0.0) for v in values)
    depression = sum(max(-v, 0.0) for v in values)
    return potentiation, depression


def reference_sums(times_pre, times_post, kernel_values, delay=None):
    """Loops over b, g, o, k, p; ``kernel_values(delta) -> tuple of signed values``."""
    batch, groups, outputs, positions = times_post.shape
    inputs = times_pre.shape[3]
    potentiation = np.zeros((groups, outputs, inputs))
    depression = np.zeros((groups, outputs, inputs))
    per_synapse = times_pre.shape[2] != 1
    for b in range(batch):
        for g in range(groups):
            for o in range(outputs):
                for k in range(inputs):
                    for p in range(positions):
                        pre = float(times_pre[b, g, o if per_synapse else 0, k, p])
                        delta = pre - float(times_post[b, g, o, p])
                        if delay is not None:
                            delta -= float(delay[g, o, k])
                        up, down = split_values(*kernel_values(delta))
                        potentiation[g, o, k] += up
                        depression[g, o, k] += down
    return potentiation, depression


def event_times(generator, shape, steps, no_spike_rate=0.2):
    """Times on a grid of ``steps`` values (a stepped simulation), NaN for no spike."""
    times = generator.integers(0, steps, size=shape).astype(float)
    times[generator.random(shape) < no_spike_rate] = np.nan
    return torch.tensor(times, dtype=F64)


@given(
    batch=st.integers(1, 3),
    groups=st.integers(1, 2),
    outputs=st.integers(1, 6),
    inputs=st.integers(1, 4),
    positions=st.integers(1, 3),
    steps=st.integers(1, 5),
    eta_post=st.sampled_from([1.0, 0.5, -0.7]),
    eta_pre=st.sampled_from([-1.0, 0.3, -0.4]),
    taus=st.sampled_from([(20.0, 20.0), (3.0, 7.0)]),
    method=st.sampled_from(["auto", "grouped", "direct"]),
    chunk_elements=st.sampled_from([1, 7, 1 << 20]),
    seed=st.integers(0, 2**16),
)
def test_exponential_sums_match_loops(
    batch, groups, outputs, inputs, positions, steps, eta_post, eta_pre, taus, method, chunk_elements, seed
):
    generator = np.random.default_rng(seed)
    times_pre = event_times(generator, (batch, groups, 1, inputs, positions), steps)
    times_post = event_times(generator, (batch, groups, outputs, positions), steps)
    tau_post, tau_pre = taus

    def split(delta):
        return exponential_split(delta, eta_post, tau_post, eta_pre, tau_pre)

    potentiation, depression = kernel_pair_sums(
        times_pre, times_post, split, method=method, chunk_elements=chunk_elements
    )
    expected_potentiation, expected_depression = reference_sums(
        times_pre, times_post, lambda d: python_exp_kernels(d, eta_post, tau_post, eta_pre, tau_pre)
    )
    np.testing.assert_allclose(potentiation.numpy(), expected_potentiation, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(depression.numpy(), expected_depression, rtol=1e-12, atol=1e-12)


@given(
    batch=st.integers(1, 3),
    outputs=st.integers(1, 5),
    inputs=st.integers(1, 4),
    per_synapse=st.booleans(),
    chunk_elements=st.sampled_from([1, 5, 1 << 20]),
    seed=st.integers(0, 2**16),
)
def test_direct_sums_with_delays_and_per_synapse_times(batch, outputs, inputs, per_synapse, chunk_elements, seed):
    generator = np.random.default_rng(seed)
    times_pre = event_times(generator, (batch, 1, outputs if per_synapse else 1, inputs, 1), 6)
    times_post = event_times(generator, (batch, 1, outputs, 1), 6)
    delay = torch.tensor(generator.uniform(0.0, 3.0, size=(1, outputs, inputs)), dtype=F64)

    def split(delta):
        return exponential_split(delta, 1.0, 4.0, -0.5, 6.0)

    potentiation, depression = kernel_pair_sums(
        times_pre, times_post, split, delay=delay, chunk_elements=chunk_elements
    )
    expected = reference_sums(times_pre, times_post, lambda d: python_exp_kernels(d, 1.0, 4.0, -0.5, 6.0), delay=delay)
    np.testing.assert_allclose(potentiation.numpy(), expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(depression.numpy(), expected[1], rtol=1e-12, atol=1e-12)


def python_gaussian(delta, amplitude, center, sigma):
    if math.isnan(delta):
        return 0.0
    return amplitude * math.exp(-0.5 * ((delta - center) / sigma) ** 2)


def python_rectangular(delta, amplitude, start, stop):
    if math.isnan(delta):
        return 0.0
    return amplitude if start <= delta < stop else 0.0


@pytest.mark.parametrize("method", ["grouped", "direct"])
def test_any_kernels_and_infinite_times(method):
    """Gaussian + rectangular window reaching to -inf; post times of +inf (a spike long ago) included."""
    generator = np.random.default_rng(3)
    times_pre = event_times(generator, (4, 1, 1, 3, 2), 4)
    times_post = event_times(generator, (4, 1, 5, 2), 4)
    times_post[0, 0, 1, 0] = math.inf
    times_pre[1, 0, 0, 2, 1] = math.inf
    split = kernel_split(
        gaussian, rectangular, {"amplitude": -0.8, "center": 1.0, "sigma": 2.0},
        {"amplitude": 0.25, "start": -math.inf, "stop": -1.0},
    )  # fmt: skip
    potentiation, depression = kernel_pair_sums(times_pre, times_post, split, method=method)

    def values(delta):
        return python_gaussian(delta, -0.8, 1.0, 2.0), python_rectangular(delta, 0.25, -math.inf, -1.0)

    expected = reference_sums(times_pre, times_post, values)
    # inf - inf is NaN: no change; -inf lies in the rectangular window (reaching to -inf)
    np.testing.assert_allclose(potentiation.numpy(), expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(depression.numpy(), expected[1], rtol=1e-12, atol=1e-12)


def test_hand_computed_pair():
    """One sample, one synapse: pre spiked 3 steps ago, post 1 step ago: delta = 2, causal."""
    times_pre = torch.tensor([3.0], dtype=F64).view(1, 1, 1, 1, 1)
    times_post = torch.tensor([1.0], dtype=F64).view(1, 1, 1, 1)
    split = kernel_split(exp_post, exp_pre, {"eta_post": 0.5, "tau_post": 4.0}, {"eta_pre": -1.0})
    for method in ("grouped", "direct"):
        potentiation, depression = kernel_pair_sums(times_pre, times_post, split, method=method)
        assert potentiation.item() == pytest.approx(0.5 * math.exp(-0.5), rel=1e-14)
        assert depression.item() == 0.0


def test_auto_groups_only_when_few_distinct_post_times():
    """auto == grouped == direct in value; grouped is refused where it does not apply."""
    generator = np.random.default_rng(0)
    times_pre = event_times(generator, (3, 1, 1, 4, 1), 3)
    times_post = event_times(generator, (3, 1, 12, 1), 3)  # 12 neurons, at most 3 distinct times
    split = lambda d: exponential_split(d)  # noqa: E731
    results = [kernel_pair_sums(times_pre, times_post, split, method=m) for m in ("auto", "grouped", "direct")]
    for potentiation, depression in results[1:]:
        torch.testing.assert_close(potentiation, results[0][0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(depression, results[0][1], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"^method"):
        kernel_pair_sums(times_pre, times_post, split, method="grouped", delay=torch.zeros(1, 12, 4, dtype=F64))


def test_no_postsynaptic_spike_gives_zeros():
    times_pre = torch.zeros(2, 1, 1, 3, 1, dtype=F64)
    times_post = torch.full((2, 1, 4, 1), math.nan, dtype=F64)
    potentiation, depression = kernel_pair_sums(times_pre, times_post, exponential_split, method="grouped")
    assert potentiation.shape == (1, 4, 3) and not potentiation.any() and not depression.any()


@pytest.mark.parametrize("eta_post, eta_pre", [(1.0, -1.0), (2.0, 0.5), (-0.5, -2.0), (-1.5, 0.25), (0.0, -1.0)])
def test_exponential_split_equals_the_kernels(eta_post, eta_pre):
    delta = torch.tensor([-30.0, -2.0, -0.5, 0.0, 0.5, 3.0, 80.0, math.nan, math.inf, -math.inf], dtype=F64)
    potentiation, depression = exponential_split(delta.clone(), eta_post, 5.0, eta_pre, 9.0)
    for index, value in enumerate(delta.tolist()):
        up, down = split_values(*python_exp_kernels(value, eta_post, 5.0, eta_pre, 9.0))
        assert potentiation[index].item() == pytest.approx(up, rel=1e-14, abs=1e-300)
        assert depression[index].item() == pytest.approx(down, rel=1e-14, abs=1e-300)
    # the general split of the same kernels agrees
    general = kernel_split(
        exp_post, exp_pre, {"eta_post": eta_post, "tau_post": 5.0}, {"eta_pre": eta_pre, "tau_pre": 9.0}
    )
    expected_potentiation, expected_depression = general(delta)
    torch.testing.assert_close(potentiation, expected_potentiation, rtol=1e-14, atol=0)
    torch.testing.assert_close(depression, expected_depression, rtol=1e-14, atol=0)


def test_bad_input_names_the_argument():
    times_pre = torch.zeros(2, 1, 1, 3, 1)
    times_post = torch.zeros(2, 1, 4, 1)
    with pytest.raises(ValueError, match=r"^times_pre"):
        kernel_pair_sums(times_pre[:1], times_post, exponential_split)
    with pytest.raises(TypeError, match=r"^times_post"):
        kernel_pair_sums(times_pre, times_post.double(), exponential_split)
    with pytest.raises(TypeError, match=r"^times_pre"):
        kernel_pair_sums(times_pre.long(), times_post, exponential_split)
    with pytest.raises(ValueError, match=r"^delay"):
        kernel_pair_sums(times_pre, times_post, exponential_split, delay=torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match=r"^method"):
        kernel_pair_sums(times_pre, times_post, exponential_split, method="fast")
    with pytest.raises(ValueError, match=r"^chunk_elements"):
        kernel_pair_sums(times_pre, times_post, exponential_split, chunk_elements=0)
    with pytest.raises(ValueError, match=r"^tau_post"):
        exponential_split(torch.zeros(3), tau_post=0.0)
    with pytest.raises(TypeError, match=r"^eta_pre"):
        exponential_split(torch.zeros(3), eta_pre=math.nan)
