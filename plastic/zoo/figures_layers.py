"""Figures for zoo_docs/layers.md and zoo_docs/encoders.md.

Run ``python -m plastic.zoo.figures_layers [out_dir]`` (default
``zoo_docs/figures``); writes ``synapse_filter.png`` (the SynapseFilter's
current for one spike train at several ``tau``, fixed and learnable) and
``poisson_raster.png`` (a Poisson raster at rates rising across neurons, with
the measured against the requested rate). Every value is computed by
:mod:`plastic.neural.layers` and :mod:`plastic.functional.encoders` themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch

from plastic.functional.encoders import poisson_encode
from plastic.neural.layers import SynapseFilter
from plastic.zoo.plotting import save_figure

__all__ = ["main"]

SPIKE_STEPS = (5, 8, 10, 11, 12, 30, 31, 55)  # a burst, a pair, an isolated spike
FILTER_STEPS = 80


def _synapse_filter_figure(path: Path) -> None:
    spikes = torch.zeros(FILTER_STEPS, 1, 1, dtype=torch.bool)
    spikes[list(SPIKE_STEPS), 0, 0] = True
    steps = torch.arange(FILTER_STEPS)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 4.2), sharex=True, height_ratios=(1, 4), constrained_layout=True
    )
    top.vlines(list(SPIKE_STEPS), 0, 1, color="k")
    top.set_yticks([])
    top.set_ylabel("S_t")
    top.set_title("SynapseFilter: I_t = I_{t-1} - (1 - S_t) I_{t-1} / tau + S_t", fontsize=10)
    for tau in (1.5, 3.0, 10.0):
        layer = SynapseFilter(tau, step_mode="window")
        with torch.no_grad():
            current = layer(spikes)[:, 0, 0]
        bottom.step(steps, current, where="post", label=f"tau = {tau:g} steps")
    learnable = SynapseFilter(3.0, learnable=True, step_mode="window")
    with torch.no_grad():
        learnable.weight.fill_(-2.0)  # as if trained: 1/tau = sigmoid(-2), tau = 1 + e^2
        current = learnable(spikes)[:, 0, 0]
    bottom.step(steps, current, where="post", linestyle="--", label=f"learnable, w = -2 (tau = {learnable.tau:.2f})")
    bottom.set_xlabel("step t")
    bottom.set_ylabel("current I_t")
    bottom.legend(fontsize=8)
    save_figure(figure, path)


def _poisson_raster_figure(path: Path) -> None:
    neurons, steps, dt = 20, 1000, 1.0
    rates = torch.linspace(5.0, 100.0, neurons)[None, :]  # Hz
    spikes = poisson_encode(rates, steps, dt, torch.Generator().manual_seed(0))[:, 0, :]
    times, cells = torch.nonzero(spikes, as_tuple=True)
    measured = spikes.sum(dim=0).double() / (steps * dt / 1000.0)
    figure, (raster, rate_axis) = plt.subplots(
        1, 2, figsize=(10, 3.8), width_ratios=(3, 1), sharey=True, constrained_layout=True
    )
    raster.scatter(times.numpy() * dt, cells.numpy(), marker="|", s=12, color="k", linewidths=0.8)
    raster.set_xlabel("time (ms)")
    raster.set_ylabel("neuron")
    raster.yaxis.get_major_locator().set_params(integer=True)
    raster.set_title(f"poisson_encode: p = rate * dt / 1000 per step, dt = {dt:g} ms", fontsize=10)
    index = torch.arange(neurons)
    rate_axis.plot(rates[0].numpy(), index.numpy(), "o-", markersize=3, label="requested")
    rate_axis.plot(measured.numpy(), index.numpy(), "x", label="measured (1 s)")
    rate_axis.set_xlabel("rate (Hz)")
    rate_axis.legend(fontsize=8)
    save_figure(figure, path)


def main(out_dir: str | Path = "zoo_docs/figures") -> list[Path]:
    """Draw both figures into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "synapse_filter.png", out / "poisson_raster.png"]
    _synapse_filter_figure(paths[0])
    _poisson_raster_figure(paths[1])
    return paths


if __name__ == "__main__":
    for written in main(sys.argv[1] if len(sys.argv) > 1 else "zoo_docs/figures"):
        print(written)
