"""Figure for zoo_docs/updater.md: the bounding factors and the net change they give.

Run ``python -m plastic.zoo.figures_bounding [out_dir]`` (default
``zoo_docs/figures``); writes ``bounding.png``. Every curve is computed by
:mod:`plastic.functional.bounding` itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch

from plastic.functional.bounding import Bounding
from plastic.zoo.plotting import save_figure

__all__ = ["main"]

W_MIN = 0.0
W_MAX = 1.0


def _cases() -> list[tuple[str, Bounding]]:
    return [
        ("hard", Bounding("hard", w_min=W_MIN, w_max=W_MAX)),
        ("soft (mu=1)", Bounding("soft", w_min=W_MIN, w_max=W_MAX)),
        ("power mu=0.5", Bounding("power", w_min=W_MIN, w_max=W_MAX, mu=0.5)),
        ("power mu=2", Bounding("power", w_min=W_MIN, w_max=W_MAX, mu=2.0)),
        ("scaled mu=1, [-1, 1]", Bounding("scaled", w_min=-1.0, w_max=W_MAX)),
    ]


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    """Draw upper factors, lower factors and ``dw`` for ``pos = neg = 1``; return the PNG path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weight = torch.linspace(-0.2, 1.2, 561, dtype=torch.float64)
    ones = torch.ones_like(weight)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for label, bounding in _cases():
        axes[0].plot(weight, bounding.upper_factor(weight), label=label)
        axes[1].plot(weight, bounding.lower_factor(weight), label=label)
        axes[2].plot(weight, bounding(weight, ones, ones), label=label)
    titles = (
        "upper factor f+(w) (scales potentiation)",
        "lower factor f-(w) (scales depression)",
        "dw = f+(w) - f-(w) for pos = neg = 1",
    )
    for axis, title in zip(axes, titles, strict=False):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("weight w")
        for edge in (W_MIN, W_MAX):
            axis.axvline(edge, color="0.7", linewidth=0.8, linestyle="--")
    axes[2].axhline(0.0, color="0.7", linewidth=0.8)
    axes[0].legend(fontsize=8)
    path = out / "bounding.png"
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "zoo_docs/figures"))
