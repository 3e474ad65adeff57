"""Interval checks: check_in_range with open, closed and half-open ends, and the arguments that use them."""

from __future__ import annotations

import math
import re

import pytest
import torch

from plastic.functional.homeostasis import rate_ema_step
from plastic.functional.short_term import short_term_parameters
from plastic.functional.validation import check_in_range
from plastic.neural.synapses import DeltaCurrent
from plastic.testing.scripted import ScriptedNeuron


@pytest.mark.parametrize(
    ("inclusive", "accepted", "refused", "interval"),
    [
        (True, [0.0, 0.5, 1.0], [-1e-9, 1.0 + 1e-9], "[0.0, 1.0]"),
        (False, [1e-9, 0.5, 1.0 - 1e-9], [0.0, 1.0], "(0.0, 1.0)"),
        ((False, True), [1e-9, 1.0], [0.0, 1.5], "(0.0, 1.0]"),
        ((True, False), [0.0, 1.0 - 1e-9], [1.0, -0.5], "[0.0, 1.0)"),
    ],
)
def test_check_in_range_ends(inclusive, accepted, refused, interval):
    for value in accepted:
        assert check_in_range(value, "x", 0.0, 1.0, inclusive=inclusive) == value
    for value in refused:
        with pytest.raises(ValueError, match=rf"x: expected a value in {re.escape(interval)}, got {value!r}"):
            check_in_range(value, "x", 0.0, 1.0, inclusive=inclusive)


def test_check_in_range_refuses_nan_and_non_numbers():
    with pytest.raises(ValueError, match="x: expected a number, got NaN"):
        check_in_range(math.nan, "x", 0.0, 1.0, inclusive=(False, True))
    with pytest.raises(TypeError, match="x: expected a real number"):
        check_in_range("0.5", "x", 0.0, 1.0)


def test_half_open_arguments_name_themselves():
    with pytest.raises(ValueError, match=r"alpha: expected a value in \(0.0, 1.0\], got 0.0"):
        rate_ema_step(torch.zeros(3), torch.zeros(3, dtype=torch.bool), 0.0)
    assert torch.equal(rate_ema_step(torch.zeros(3), torch.ones(3, dtype=torch.bool), 1.0), torch.ones(3))
    with pytest.raises(ValueError, match=r"utilisation_increment: expected a value in \(0.0, 1.0\]"):
        short_term_parameters(0.0, 100.0, None, 1.0)


def test_synapse_tolerance_is_half_open_everywhere():
    # the constructor and the delayed reads accept the same interval [0, 0.5)
    with pytest.raises(ValueError, match=r"tolerance: expected a value in \[0.0, 0.5\), got 0.5"):
        DeltaCurrent(3, max_delay=2.0, tolerance=0.5)
    synapse = DeltaCurrent(3, max_delay=2.0, tolerance=0.0)
    synapse(torch.ones(1, 3, dtype=torch.bool))
    delay = torch.zeros(3)
    assert synapse.spike_at(delay, tolerance=0.49).all()
    for read in (synapse.spike_at, synapse.current_at):
        with pytest.raises(ValueError, match=r"tolerance: expected a value in \[0.0, 0.5\), got 0.5"):
            read(delay, tolerance=0.5)


@pytest.mark.parametrize(
    ("shape", "error"), [(0, ValueError), ((), TypeError), ((2, "a"), TypeError), (True, TypeError)]
)
def test_scripted_neuron_checks_its_shape(shape, error):
    with pytest.raises(error, match="shape: expected"):
        ScriptedNeuron(shape)
    assert ScriptedNeuron((2, 3)).shape == (2, 3)
