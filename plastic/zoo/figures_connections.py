"""Figures for zoo_docs/synapses.md and zoo_docs/connections.md.

Run ``python -m plastic.zoo.figures_connections [out_dir]`` (default
``zoo_docs/figures``); writes ``synapses.png`` and ``connections.png``. Every
curve is computed by the modules themselves (:mod:`plastic.neural.synapses`,
:mod:`plastic.neural.connections`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from plastic.neural.connections import Conv2d, LinearDense
from plastic.neural.synapses import DeltaCurrent, ExponentialCurrent, SpikeFilterCurrent
from plastic.zoo.plotting import save_figure

__all__ = ["draw_connections", "draw_synapses", "main"]

SPIKE_STEPS = (3, 10, 12, 14, 30)
STEPS = 45


def _spike_train(steps: int = STEPS) -> torch.Tensor:
    train = torch.zeros(steps, 1, 1, dtype=torch.bool)
    train[list(SPIKE_STEPS)] = True
    return train


@torch.no_grad()
def draw_synapses(path: Path) -> None:
    """Currents of each synapse kind for one spike train; delayed arrivals through a dense connection."""
    train = _spike_train()
    time = torch.arange(STEPS)
    synapses = {
        "delta (A = 1)": DeltaCurrent(1, step_mode="window"),
        "exponential (tau = 5 ms)": ExponentialCurrent(1, tau=5.0, step_mode="window"),
        "spike filter (tau = 5 steps)": SpikeFilterCurrent(1, tau=5.0, step_mode="window"),
    }
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    for label, synapse in synapses.items():
        axes[0].plot(time, synapse(train)[:, 0, 0], drawstyle="steps-post", label=label)
    for step in SPIKE_STEPS:
        axes[0].axvline(step, color="0.8", linewidth=0.8, zorder=0)
    axes[0].set_title("synaptic current I_t for one spike train (grey: spikes)", fontsize=10)
    axes[0].set_xlabel("step (dt = 1 ms)")
    axes[0].legend(fontsize=8)

    # one input, four outputs with delays 0, 2.5, 5, 7.5 ms at dt = 0.5 ms
    dt = 0.5
    delays = torch.tensor([[0.0], [2.5], [5.0], [7.5]])
    connection = LinearDense(1, 4, delay=8.0, dt=dt, learn_delay_init=delays, weight_init=lambda w: w.fill_(1.0))
    short = torch.zeros(40, 1, 1, dtype=torch.bool)
    short[[2, 9]] = True
    arrivals = torch.stack([connection.forward(step)[0] for step in short])
    clock = torch.arange(40) * dt
    axes[1].eventplot([clock[short[:, 0, 0]].tolist()], lineoffsets=-1, colors="k", linelengths=0.6)
    for index, _delay in enumerate(delays[:, 0].tolist()):
        axes[1].eventplot([clock[arrivals[:, index] > 0].tolist()], lineoffsets=index, linelengths=0.6)
    axes[1].set_yticks([-1, 0, 1, 2, 3], ["emitted", "d = 0", "d = 2.5", "d = 5", "d = 7.5"])
    axes[1].set_xlabel("time (ms), dt = 0.5 ms")
    axes[1].set_title("delayed arrival: out_i(t) = w_i I(t - d_i)", fontsize=10)

    # reading an exponential current between steps
    synapse = ExponentialCurrent(1, tau=3.0, max_delay=6.0, interpolation="linear")
    for step in range(12):
        synapse(torch.tensor([[step == 2]]))
    fine = torch.linspace(0.0, 6.0, 121)
    for method in ("previous", "nearest", "linear", "exp_decay"):
        values = synapse.current_at(fine.unsqueeze(-1), interpolation=method)[0, :, 0]
        axes[2].plot(11 - fine, values, label=method)
    axes[2].set_xlabel("time read, t - d (step 11 = now)")
    axes[2].set_title("current_at(d) between steps (exponential, tau = 3)", fontsize=10)
    axes[2].legend(fontsize=8)
    save_figure(figure, path)


@torch.no_grad()
def draw_connections(path: Path) -> None:
    """A Conv2d's receptive field (from ``pre_view``), its kernel and its output."""
    size = 9
    connection = Conv2d(
        1,
        1,
        3,
        stride=2,
        padding=1,
        in_size=(size, size),
        weight_init=lambda w: w.copy_(torch.tensor([[[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]]])),
    )
    spikes = torch.zeros(1, 1, size, size, dtype=torch.bool)
    spikes[0, 0, 2:7, 3:6] = True  # a bar
    output = connection(spikes)[0, 0]

    # which inputs feed output position p: the view of an index map, column p
    index_map = torch.arange(1.0, size * size + 1).reshape(1, 1, size, size)
    view = connection.pre_view(index_map)  # [1, G=1, K=9, P]
    position = (1, 2)
    p = position[0] * connection.out_shape[2] + position[1]
    field = [int(v) - 1 for v in view[0, 0, :, p].tolist() if v > 0]  # 0: padding

    figure, axes = plt.subplots(1, 3, figsize=(12, 4), constrained_layout=True)
    axes[0].imshow(spikes[0, 0].float(), cmap="Greys", vmin=0, vmax=1.5)
    for flat in field:
        row, column = divmod(flat, size)
        axes[0].add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2))
    axes[0].set_title(f"input spikes; red: pre_view field of output {position}", fontsize=10)
    image = axes[1].imshow(connection.weight[0, 0], cmap="coolwarm", vmin=-2, vmax=2)
    figure.colorbar(image, ax=axes[1], shrink=0.7)
    axes[1].set_title("weight (3x3, stride 2, padding 1)", fontsize=10)
    image = axes[2].imshow(output, cmap="coolwarm", vmin=-4, vmax=4)
    axes[2].add_patch(
        Rectangle((position[1] - 0.5, position[0] - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2)
    )
    figure.colorbar(image, ax=axes[2], shrink=0.7)
    axes[2].set_title(f"Conv2d output {tuple(output.shape)}", fontsize=10)
    save_figure(figure, path)


def main(out_dir: str | Path = "zoo_docs/figures") -> list[Path]:
    """Draw both figures into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "synapses.png", out / "connections.png"]
    draw_synapses(paths[0])
    draw_connections(paths[1])
    return paths


if __name__ == "__main__":
    for written in main(*sys.argv[1:2]):
        print(written)
