"""Smoke test of the Song-Miller-Abbott experiment (``python -m plastic competitive``), small sizes.

The full run is not in the suite (minutes); here: the command runs, writes its
figure and ``run.json``, the weights stay within the hard bounds, each neuron
keeps only its own inputs (the block mask), and the near-bound fraction is
checked by hand.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from plastic.zoo.cli import main
from plastic.zoo.competitive import CompetitiveConfig, _build, near_bound_fraction, run_competitive


def test_near_bound_fraction_by_hand():
    weights = torch.tensor([0.0, 0.05, 0.1, 0.5, 0.89, 0.95, 1.0, 0.3])
    # within 0.1 of 0 or of 1: 0.0, 0.05, 0.1, 0.95, 1.0 (0.89 is not within 0.1 of 1)
    assert near_bound_fraction(weights, 1.0) == pytest.approx(5 / 8)


def test_small_run_keeps_bounds_and_the_block_mask():
    config = CompetitiveConfig(inputs=40, inhibitory_inputs=10, seconds=3, window=500, a_plus=0.05, g_max=0.4)
    result = run_competitive(config, progress=False)
    weights = result["weights"]
    assert weights.shape == (2, 40)
    assert float(weights.min()) >= 0.0 and float(weights.max()) <= 1.0  # units of g_max
    assert result["output_rates"].shape == (6, 2)
    assert result["output_rates"].sum() > 0
    assert result["near_bounds_history"].shape == (6, 2)
    assert result["near_bounds_history"][-1].tolist() == pytest.approx(result["near_bounds"])
    assert not torch.equal(weights[0], result["initial"])  # it learned something
    # the two neurons' cross synapses stay at zero: the mask, over a fresh build with the same seed
    cell, trainer, mask, inhibition = _build(config, torch.Generator().manual_seed(config.seed))
    with torch.no_grad():
        for _ in range(2):
            conductance = inhibition(torch.rand(500, 1, 20) < 0.01)
            cell(torch.rand(500, 1, 80) < 0.05, inhibitory=conductance)
            trainer()
            trainer.update()
    assert not cell.connection.weight[~mask].any()


def test_each_neuron_gets_its_own_inhibitory_conductance():
    config = CompetitiveConfig(inputs=4, inhibitory_inputs=3, g_inhibitory=0.05, tau_inhibitory=5.0)
    _, _, _, inhibition = _build(config, torch.Generator().manual_seed(0))
    spikes = torch.zeros(3, 1, 6, dtype=torch.bool)
    spikes[0, 0, 1] = True  # an inhibitory input of neuron 0 at step 0
    spikes[1, 0, 4] = True  # one of neuron 1 at step 1
    with torch.no_grad():
        conductance = inhibition(spikes)[:, 0]
    decay = math.exp(-1.0 / 5.0)
    expected = torch.tensor([[0.05, 0.0], [0.05 * decay, 0.05], [0.05 * decay**2, 0.05 * decay]])
    assert torch.allclose(conductance, expected, rtol=1e-6, atol=0.0)


def test_command_writes_the_figure_and_run_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["competitive", "--seconds", "2", "--output", str(tmp_path), "--no-progress"])
    assert code == 0
    summary = json.loads((tmp_path / "run.json").read_text())
    assert set(summary) >= {"near_bounds", "final_rates_hz", "rate_ratio", "config", "figures"}
    assert (tmp_path / "competitive.png").exists()
    assert "weights within 10% of a bound" in capsys.readouterr().out


def test_command_leaves_the_process_float_settings_as_it_found_them(tmp_path):
    # the command flushes subnormals while it runs; an in-process call must not
    # leave the whole process flushing them afterwards
    threads = torch.get_num_threads()
    main(["competitive", "--seconds", "1", "--output", str(tmp_path), "--no-progress", "--threads", "1"])
    smallest_subnormal = torch.tensor(5e-324, dtype=torch.float64)
    assert (smallest_subnormal * 1.0).item() > 0.0
    assert torch.get_num_threads() == threads
