"""The README's quickstart runs as written, and the demo pipeline learns at tiny size."""

import re
import runpy
from pathlib import Path

from plastic.zoo.demo import DemoConfig, run_demo

ROOT = Path(__file__).resolve().parents[1]


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
        neurons=40, steps=80, batch_size=25, train_samples=500, progress=False,
        output=str(tmp_path), seed=3, threads=1,
    )  # fmt: skip
    summary = run_demo(config)
    assert summary["test_accuracy"] > 0.5, summary["test_accuracy"]
    assert summary["weight_change"] > 1e-3
    for name in ("receptive_fields.png", "stdp_window.png", "raster.png", "confusion_matrix.png", "run.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    again = run_demo(config)
    assert again["test_accuracy"] == summary["test_accuracy"]  # same seed, same accuracy
