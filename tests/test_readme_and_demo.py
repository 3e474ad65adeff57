"""The README's quickstart runs as written, and the demo pipeline learns at tiny size."""

import re
import runpy
from pathlib import Path

import attrs
import pytest
import torch

from plastic.zoo.demo import DemoConfig, DigitNetwork, run_demo

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.filterwarnings("error::plastic.GradModeWarning")  # the quickstart steps under no_grad
def test_readme_quickstart_runs(tmp_path, capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python block"
    script = tmp_path / "quickstart.py"
    script.write_text(blocks[0])
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out.strip()
    # the printed weight change is a positive number: the kernel did something
    assert float(re.search(r"tensor\(([0-9.e+-]+)", printed).group(1)) > 0


def test_demo_learns_at_tiny_size(tmp_path):
    config = DemoConfig(
        neurons=40, epochs=1, steps=80, batch_size=25, train_samples=500, progress=False,
        output=str(tmp_path), seed=3, threads=1,
    )  # fmt: skip
    summary = run_demo(config)
    assert summary["test_accuracy"] > 0.5, summary["test_accuracy"]
    assert summary["weight_change"] > 1e-3
    for name in ("receptive_fields.png", "stdp_window.png", "raster.png", "confusion_matrix.png", "run.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    again = run_demo(config)
    assert again["test_accuracy"] == summary["test_accuracy"]  # same seed, same accuracy


def test_demo_input_rates_by_hand():
    config = DemoConfig(neurons=2, batch_size=2, max_rate=320.0, pixel_sum=8.0).resolved()
    network = DigitNetwork(config, torch.device("cpu"), torch.Generator().manual_seed(0))
    images = torch.zeros(3, 64)
    images[0, :2] = torch.tensor([2.0, 6.0])  # sums to 8 already: unchanged, rates 40 and 120 Hz
    images[1, :4] = 1.0  # sums to 4: doubled to 2 per pixel, 40 Hz each
    images[2, 0] = 16.0  # 16 -> 8: 160 Hz; shown at max_rate 3,200 Hz it would be 1,600 Hz, capped at 1,000
    rates = network.input_rates(images, config.max_rate)
    expected = torch.zeros(3, 64)
    expected[0, :2] = torch.tensor([40.0, 120.0])
    expected[1, :4] = 40.0
    expected[2, 0] = 160.0
    assert torch.allclose(rates, expected)
    assert network.input_rates(images, 3200.0)[2, 0] == 1000.0
    raw = DigitNetwork(attrs.evolve(config, pixel_sum=None), torch.device("cpu"), torch.Generator())
    assert torch.allclose(raw.input_rates(images, 320.0), images * 20.0)  # pixel / 16 * 320 Hz
