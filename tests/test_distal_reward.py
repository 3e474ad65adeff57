"""Smoke test of the distal-reward experiment (the full run is not in the suite):
the command writes its figure and run.json, and the reward schedule respects
its delays."""

from __future__ import annotations

import json

import pytest

from plastic.zoo.cli import main
from plastic.zoo.distal_reward import DistalRewardConfig


def test_command_writes_the_figure_and_run_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["distal-reward", "--seconds", "3", "--output", str(tmp_path), "--no-progress"])
    assert code == 0
    summary = json.loads((tmp_path / "run.json").read_text())
    assert set(summary) >= {"final_rewarded", "final_others_mean", "rewards", "config", "figures"}
    assert 0.0 <= summary["final_rewarded"] <= 1.0
    assert (tmp_path / "distal_reward.png").exists()
    assert "rewarded synapse" in capsys.readouterr().out


def test_a_window_longer_than_the_shortest_delay_is_refused():
    with pytest.raises(ValueError, match="delay_min"):
        DistalRewardConfig(window=200, delay_min=100)
