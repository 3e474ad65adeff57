"""Figure of ``zoo_docs/neurons.md``: membrane voltage and spikes of IF, LIF and
adaptive-threshold LIF neurons under the same input current.

Regenerate: ``python -m plastic.zoo.figures_neurons zoo_docs/figures``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from plastic.neural.neurons import IF, LIF, AdaptiveLIF
from plastic.zoo.plotting import pyplot, save_figure


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    plt = pyplot()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = 200
    current = torch.full((steps, 1, 1), 0.12)
    current[120:] = 0.0
    neurons = {
        "IF (hard reset)": IF(1, v_threshold=1.0, step_mode="window"),
        "LIF tau=20 (hard reset)": LIF(1, tau=20.0, v_threshold=1.0, step_mode="window"),
        "LIF tau=20, refractory 10 ms": LIF(1, tau=20.0, v_threshold=1.0, refractory=10.0, step_mode="window"),
        "adaptive LIF theta+=0.2": AdaptiveLIF(
            1, tau=20.0, v_threshold=1.0, theta_plus=0.2, tau_theta=100.0, step_mode="window"
        ),
    }
    figure, axes = plt.subplots(len(neurons), 1, figsize=(7, 7), sharex=True)
    for axis, (name, neuron) in zip(axes, neurons.items(), strict=False):
        voltages = []
        with torch.no_grad():
            for t in range(steps):
                neuron.step_mode = "single"
                neuron(current[t])
                voltages.append(float(neuron.voltage[0, 0]))
                if bool(neuron.spike[0, 0]):
                    axis.axvline(t, color="tab:red", linewidth=0.6, alpha=0.6)
        axis.plot(voltages, color="black", linewidth=1.0)
        axis.set_ylabel("V")
        axis.set_title(name, fontsize=9)
    axes[-1].set_xlabel("time (ms); input 0.12 per step until 120 ms; red: spikes")
    figure.tight_layout()
    path = out / "neurons.png"
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
