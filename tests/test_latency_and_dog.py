"""Latency coding and on/off-centre filtering: hand-computed spike times, one
spike per positive input, the DoG's closed-form properties, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from plastic import LatencyEncoder
from plastic.functional.encoders import difference_of_gaussians, latency_encode, latency_steps, on_off_centre


def test_latency_steps_by_hand():
    # T = 4 bins of intensity: (3/4, 1] -> 0, (1/2, 3/4] -> 1, (1/4, 1/2] -> 2, (0, 1/4] -> 3, 0 -> never
    intensities = torch.tensor([[1.0, 0.8, 0.75, 0.5, 0.3, 0.25, 0.01, 0.0]])
    assert latency_steps(intensities, 4).tolist() == [[0, 0, 1, 2, 2, 3, 3, -1]]
    spikes = latency_encode(intensities, 4)
    assert spikes.shape == (4, 1, 8) and spikes.dtype == torch.bool
    assert spikes.sum(0).tolist() == [[1, 1, 1, 1, 1, 1, 1, 0]]
    assert spikes.to(torch.int64).argmax(0)[0, :7].tolist() == [0, 0, 1, 2, 2, 3, 3]
    assert torch.equal(LatencyEncoder(4)(intensities), spikes)


def test_latency_is_monotone_in_intensity():
    intensities = torch.linspace(0.001, 1.0, 500).unsqueeze(0)
    times = latency_steps(intensities, 7)[0]
    assert bool((times[1:] <= times[:-1]).all()) and times.min() == 0 and times.max() == 6
    assert latency_steps(torch.ones(2, 3), 1).tolist() == [[0, 0, 0]] * 2


def test_latency_bad_input():
    with pytest.raises(ValueError, match=r"^intensities"):
        latency_encode(torch.tensor([[1.5]]), 3)
    with pytest.raises(ValueError, match=r"^intensities"):
        latency_encode(torch.tensor([[math.nan]]), 3)
    with pytest.raises(ValueError, match=r"^steps"):
        latency_encode(torch.tensor([[0.5]]), 0)
    with pytest.raises(TypeError, match=r"^steps"):
        LatencyEncoder(2.0)


def test_difference_of_gaussians_closed_form():
    kernel = difference_of_gaussians(5, 1.0, 2.0, dtype=torch.float64)
    assert kernel.shape == (5, 5)
    assert abs(float(kernel.sum())) < 1e-12
    assert torch.allclose(kernel, kernel.T) and torch.allclose(kernel, kernel.flip(0))
    # the value at the centre, from the two normalised Gaussians, before the zero-mean shift
    offsets = torch.arange(5, dtype=torch.float64) - 2
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    centre = torch.exp(-squared / 2)
    surround = torch.exp(-squared / 8)
    raw = centre / centre.sum() - surround / surround.sum()
    assert math.isclose(float(kernel[2, 2]), float(raw[2, 2] - raw.mean()), rel_tol=1e-12)
    assert kernel[2, 2] > 0 and kernel[0, 0] < 0
    with pytest.raises(ValueError, match=r"^size"):
        difference_of_gaussians(4, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"^sigma_surround"):
        difference_of_gaussians(3, 1.0, 1.0)


def test_on_off_centre_responses():
    kernel = difference_of_gaussians(3, 0.5, 1.0)
    image = torch.zeros(1, 5, 5)
    image[0, 2, 2] = 1.0  # a bright dot: on-centre at the dot, off-centre around it
    responses = on_off_centre(image, kernel)
    assert responses.shape == (1, 2, 5, 5)
    assert math.isclose(float(responses[0, 0, 2, 2]), float(kernel[1, 1]), rel_tol=1e-6)
    assert math.isclose(float(responses[0, 1, 2, 1]), -float(kernel[1, 0]), rel_tol=1e-6)
    assert bool((responses >= 0).all()) and not bool((responses[0, 0] * responses[0, 1]).any())
    uniform = on_off_centre(torch.ones(1, 5, 5), kernel)
    assert float(uniform[:, :, 1:4, 1:4].abs().max()) < 1e-6  # zero response inside a uniform patch
    with pytest.raises(ValueError, match=r"^kernel"):
        on_off_centre(image, torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"^images"):
        on_off_centre(torch.ones(5, 5), kernel)
