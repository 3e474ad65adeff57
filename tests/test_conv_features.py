"""Smoke test of the convolutional STDP features experiment (the full run of
three seeds is not in the suite): the command writes its figure and run.json
with the three readouts, and the encoding is the documented one."""

from __future__ import annotations

import json

import pytest
import torch

from plastic.zoo.cli import main
from plastic.zoo.conv_features import ConvFeaturesConfig, encode


def test_command_writes_the_figure_and_run_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    code = main([
        "conv-features", "--runs", "1", "--maps", "4", "--train-samples", "20",
        "--output", str(tmp_path), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["seeds"] == [0] and summary["train_images"] == 20
    run = summary["runs"][0]
    for name in ("learned", "random", "initial", "pixels"):
        assert 0.0 <= run[f"{name}_accuracy"] <= 1.0
    assert run["pixels_accuracy"] > 0.9  # logistic regression on the raw 8x8 digits
    assert 0 < run["winners_per_image"] <= 4  # at most k winners, one per map
    assert (tmp_path / "conv_features.png").exists()
    assert "STDP features" in capsys.readouterr().out


def test_encoding_gives_at_most_one_spike_per_input():
    images = torch.zeros(2, 8, 8)
    images[0, 2:6, 3] = 1.0  # a vertical bar; the second image is blank
    spikes = encode(images, ConvFeaturesConfig(steps=5))
    assert spikes.shape == (5, 2, 2, 8, 8)
    assert int(spikes.sum(0).max()) == 1
    assert spikes[:, 0, 0].any() and spikes[:, 0, 1].any()  # on-centre on the bar, off-centre beside it
    assert not spikes[:, 1].any()


def test_config_is_validated():
    with pytest.raises(ValueError, match=r"^kernel"):
        ConvFeaturesConfig(kernel=9)
    with pytest.raises(ValueError, match=r"^maps"):
        ConvFeaturesConfig(maps=0)
