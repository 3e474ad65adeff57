"""Poisson and Bernoulli encoders: spike statistics against closed forms,
reproducibility, shapes and bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.encoders import bernoulli_encode, poisson_encode, poisson_probability
from plastic.neural.encoders import BernoulliEncoder, PoissonEncoder


def assert_counts_near(spikes: torch.Tensor, per_step_probability: list[float]) -> None:
    """Spike count per element within 5 binomial standard deviations of T * p."""
    steps = spikes.shape[0]
    counts = spikes.sum(dim=0).flatten().tolist()
    for count, p in zip(counts, per_step_probability, strict=True):
        mean = steps * p
        sigma = math.sqrt(steps * p * (1 - p))
        assert abs(count - mean) <= 5 * sigma + 1e-9, (count, mean, sigma)


def test_poisson_rate_statistics() -> None:
    rates = torch.tensor([[0.0, 10.0, 63.75, 200.0, 1000.0]])
    generator = torch.Generator().manual_seed(0)
    spikes = poisson_encode(rates, 20000, 1.0, generator)
    assert spikes.dtype == torch.bool and spikes.shape == (20000, 1, 5)
    # p = rate * dt / 1000: 0, 0.01, 0.06375, 0.2, 1 (1000 Hz at 1 ms: every step).
    assert_counts_near(spikes, [0.0, 0.01, 0.06375, 0.2, 1.0])
    assert spikes[:, 0, 0].sum() == 0 and bool(spikes[:, 0, 4].all())
    # dt = 0.5 ms halves the per-step probability.
    halved = poisson_encode(rates[:, :4], 20000, 0.5, generator)
    assert_counts_near(halved, [0.0, 0.005, 0.031875, 0.1])


def test_poisson_exact_bin_probability() -> None:
    generator = torch.Generator().manual_seed(1)
    rates = torch.tensor([[500.0, 2000.0]])
    spikes = poisson_encode(rates, 20000, 1.0, generator, exact=True)
    # P(at least one event of a Poisson process in 1 ms) = 1 - exp(-rate / 1000).
    assert_counts_near(spikes, [1 - math.exp(-0.5), 1 - math.exp(-2.0)])
    assert poisson_probability(rates, 1.0, exact=True)[0].tolist() == pytest.approx(
        [1 - math.exp(-0.5), 1 - math.exp(-2.0)]
    )


def test_bernoulli_statistics_and_extremes() -> None:
    generator = torch.Generator().manual_seed(2)
    probabilities = torch.tensor([[0.0, 0.1, 0.5], [0.9, 1.0, 0.25]])
    spikes = bernoulli_encode(probabilities, 10000, generator)
    assert spikes.shape == (10000, 2, 3) and spikes.dtype == torch.bool
    assert_counts_near(spikes, [0.0, 0.1, 0.5, 0.9, 1.0, 0.25])
    assert not spikes[:, 0, 0].any() and bool(spikes[:, 1, 1].all())


@given(
    batch=st.integers(1, 3),
    features=st.integers(1, 4),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_reproducible_with_generator(batch: int, features: int, steps: int, seed: int, dtype: torch.dtype) -> None:
    rates = torch.rand(batch, features, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 500
    first = poisson_encode(rates, steps, 1.0, torch.Generator().manual_seed(seed))
    second = poisson_encode(rates, steps, 1.0, torch.Generator().manual_seed(seed))
    assert first.shape == (steps, batch, features) and first.device == rates.device
    assert torch.equal(first, second)
    probabilities = rates / 500
    assert torch.equal(
        bernoulli_encode(probabilities, steps, torch.Generator().manual_seed(seed)),
        bernoulli_encode(probabilities, steps, torch.Generator().manual_seed(seed)),
    )


def test_different_seeds_differ() -> None:
    rates = torch.full((4, 8), 300.0)
    first = poisson_encode(rates, 50, 1.0, torch.Generator().manual_seed(0))
    second = poisson_encode(rates, 50, 1.0, torch.Generator().manual_seed(1))
    assert not torch.equal(first, second)


def test_integer_rates_accepted() -> None:
    spikes = poisson_encode(torch.tensor([[0, 1000]]), 5, 1.0)
    assert spikes[:, 0, 0].sum() == 0 and bool(spikes[:, 0, 1].all())


def test_poisson_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^rates"):
        poisson_encode(torch.tensor([[1001.0]]), 4, 1.0)
    with pytest.raises(ValueError, match=r"^rates"):
        poisson_encode(torch.tensor([[600.0]]), 4, 2.0)  # p = 1.2
    with pytest.raises(ValueError, match=r"^rates"):
        poisson_encode(torch.tensor([[-1.0]]), 4, 1.0)
    with pytest.raises(ValueError, match=r"^rates"):
        poisson_encode(torch.tensor([[float("nan")]]), 4, 1.0)
    with pytest.raises(ValueError, match=r"^rates"):
        poisson_encode(torch.tensor([[float("inf")]]), 4, 1.0, exact=True)
    with pytest.raises(ValueError, match=r"^rates"):
        poisson_encode(torch.tensor(5.0), 4, 1.0)  # no batch dimension
    with pytest.raises(TypeError, match=r"^rates"):
        poisson_encode([[5.0]], 4, 1.0)
    with pytest.raises(ValueError, match=r"^dt"):
        poisson_encode(torch.tensor([[5.0]]), 4, 0.0)
    with pytest.raises(ValueError, match=r"^steps"):
        poisson_encode(torch.tensor([[5.0]]), 0, 1.0)
    with pytest.raises(TypeError, match=r"^steps"):
        poisson_encode(torch.tensor([[5.0]]), 2.0, 1.0)
    with pytest.raises(TypeError, match=r"^generator"):
        poisson_encode(torch.tensor([[5.0]]), 2, 1.0, generator=0)


def test_bernoulli_bad_input() -> None:
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"^probabilities"):
            bernoulli_encode(torch.tensor([[0.5, bad]]), 3)
    with pytest.raises(ValueError, match=r"^steps"):
        bernoulli_encode(torch.tensor([[0.5]]), -1)


def test_poisson_encoder_module() -> None:
    intensities = torch.tensor([[0.0, 0.5, 1.0]])
    encoder = PoissonEncoder(20000, 1.0, max_rate=63.75, generator=torch.Generator().manual_seed(3))
    spikes = encoder(intensities)
    assert spikes.shape == (20000, 1, 3) and spikes.dtype == torch.bool
    assert_counts_near(spikes, [0.0, 0.031875, 0.06375])
    with pytest.raises(ValueError, match=r"^inputs"):
        encoder(torch.tensor([[1.5]]))
    with pytest.raises(ValueError, match=r"^max_rate"):
        PoissonEncoder(10, 1.0, max_rate=2000.0)
    with pytest.raises(ValueError, match=r"^dt"):
        PoissonEncoder(10, -1.0)
    with pytest.raises(ValueError, match=r"^steps"):
        PoissonEncoder(0, 1.0)
    # Rates in Hz without max_rate; same seed, same draws as the function.
    rates = torch.tensor([[10.0, 400.0]])
    module_spikes = PoissonEncoder(30, 1.0, generator=torch.Generator().manual_seed(4))(rates)
    assert torch.equal(module_spikes, poisson_encode(rates, 30, 1.0, torch.Generator().manual_seed(4)))


def test_bernoulli_encoder_module_and_state_dict() -> None:
    probabilities = torch.tensor([[0.2, 0.7]])
    encoder = BernoulliEncoder(40, generator=torch.Generator().manual_seed(5))
    assert torch.equal(encoder(probabilities), bernoulli_encode(probabilities, 40, torch.Generator().manual_seed(5)))
    for module in (encoder, PoissonEncoder(5, 1.0, 50.0)):
        state = copy.deepcopy(module.state_dict())
        assert len(state) == 0  # encoders keep no state
        module.load_state_dict(state)
        module.reset()
