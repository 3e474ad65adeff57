"""Figure for zoo_docs/online_stdp.md, computed by the trainer itself.

Run ``python -m plastic.zoo.figures_online [out_dir]`` (default
``zoo_docs/figures``); writes ``online_stdp.png``.

A small Diehl & Cook style network: 64 Poisson inputs (an 8x8 image) drive 4
adaptive-threshold LIF neurons through a dense connection trained by
:class:`~plastic.learn.online.OnlineSTDP` (nearest traces, nearest variant:
rows normalised to ``w_norm`` and clamped to ``[0, 1]`` after every update),
with lateral inhibition between the neurons (each spike inhibits the other
neurons at the next step). The images are four bars (two horizontal, two
vertical) shown in random order. The figure shows each neuron's incoming
weights as an 8x8 image before and after learning, with the row sums.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch

from plastic.learn.online import OnlineSTDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import AdaptiveLIF
from plastic.zoo.plotting import save_figure

__all__ = ["bar_patterns", "main", "train_online"]

SIDE = 8


def bar_patterns() -> torch.Tensor:
    """Four 8x8 bar images ``[4, 64]`` (rows 1-2, rows 5-6, columns 1-2, columns 5-6)."""
    images = torch.zeros(4, SIDE, SIDE)
    images[0, 1:3, :] = 1.0
    images[1, 5:7, :] = 1.0
    images[2, :, 1:3] = 1.0
    images[3, :, 5:7] = 1.0
    return images.reshape(4, SIDE * SIDE)


def train_online(
    *, presentations: int = 160, steps: int = 20, rest: int = 5, w_norm: float = 6.4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train the network; returns the weights ``[4, 64]`` before and after."""
    generator = torch.Generator().manual_seed(seed)
    inputs, neurons = SIDE * SIDE, 4
    connection = LinearDense(
        inputs, neurons, weight_init=lambda w: w.copy_(torch.rand(w.shape, generator=generator) * 0.2)
    )
    neuron = AdaptiveLIF(neurons, tau=5.0, v_threshold=0.3, theta_plus=0.02, tau_theta=2000.0, refractory=2.0)
    cell = Cell(connection, neuron)
    OnlineSTDP.make_updater(cell, w_norm=w_norm)
    trainer = OnlineSTDP(a_post=0.05, a_pre=0.002, tau_pre=10.0, tau_post=10.0, w_norm=w_norm, window=steps + rest)
    trainer.register_cell("exc", cell)
    trainer.normalize()  # start from normalised rows, as Diehl & Cook
    before = connection.weight.detach().clone()
    patterns = bar_patterns()
    inhibition = 2.0
    with torch.no_grad():
        for _ in range(presentations):
            image = patterns[int(torch.randint(0, 4, (1,), generator=generator))]
            rates = 0.4 * image + 0.01
            previous = torch.zeros(1, neurons)
            for t in range(steps + rest):
                drive = rates if t < steps else torch.zeros_like(rates)
                spikes = (torch.rand(1, inputs, generator=generator) < drive).float()
                # each spike inhibits every other neuron at the next step
                lateral = -inhibition * (previous.sum(1, keepdim=True) - previous)
                previous = cell(spikes, lateral)
            trainer()
            trainer.update()
            cell.reset()
    return before, connection.weight.detach().clone()


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    """Write ``online_stdp.png`` into ``out_dir`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    before, after = train_online()
    figure, axes = plt.subplots(2, 4, figsize=(8, 5.0))
    for row, (label, weights) in enumerate((("before", before), ("after", after))):
        for index in range(4):
            axis = axes[row, index]
            axis.imshow(weights[index].reshape(SIDE, SIDE).numpy(), vmin=0.0, vmax=float(after.max()), cmap="viridis")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"neuron {index} {label}\nsum |w| = {float(weights[index].abs().sum()):.2f}", fontsize=8)
    figure.suptitle("Online STDP, nearest variant: rows normalised to w_norm = 6.4, clamped to [0, 1]", fontsize=9)
    figure.tight_layout()
    path = out / "online_stdp.png"
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "zoo_docs/figures"))
