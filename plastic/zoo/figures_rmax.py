"""Figure of zoo_docs/rmax.md: an escape-noise neuron learns by R-max to fire for one input pattern
and stay silent for another (Vasilaki et al. 2009's reward-modulated policy gradient).

Task: two frozen Poisson patterns ``A`` and ``B`` of 50 inputs (10 Hz, 100 ms
each) drive one SRM0 neuron with escape noise
(:class:`~plastic.neural.escape_noise.EscapeNoiseNeuron`). A trial is correct
when the neuron fires at least once for ``A`` and not at all for ``B``; the
reward, ``+1`` or ``-1`` minus a running average per pattern (a critic), is
given at the trial's last step. Trials run as a batch (half ``A``, half
``B``, one reward per sample) and the :class:`~plastic.learn.rmax.Rmax`
trainer applies the change after each batch.

(a) The fraction of correct trials per batch, for each pattern, over the
batches; (b) the probability of at least one spike in a trial,
``1 - prod_t (1 - p_t)``, averaged per pattern, from the neuron's own
``spike_probability``; (c) the weights before and after, sorted by how
much each input fires in ``A`` minus ``B``.

Run ``python -m plastic.zoo.figures_rmax [out_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless

import matplotlib.pyplot as plt
import numpy as np
import torch

from plastic.learn.rmax import Rmax
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.escape_noise import EscapeNoiseNeuron
from plastic.zoo.plotting import save_figure

__all__ = ["TASK", "main", "run_task"]

#: the task's parameters (times in ms, rates in Hz, voltages in mV)
TASK: dict[str, float] = {
    "inputs": 50,
    "steps": 100,  # one trial, dt = 1 ms
    "input_rate": 10.0,
    "batch": 32,  # trials per batch: half A, half B
    "tau_membrane": 10.0,
    "epsilon_0": 1.0,
    "u_rest": -70.0,
    "theta": -58.0,
    "delta_u": 2.0,
    "rho_0": 20.0,
    "refractory": 2.0,
    "initial_weight": 2.0,  # uniform in [0, initial_weight]
    "learning_rate": 0.05,
    "tau_eligibility": 200.0,
    "critic_rate": 0.1,  # running average of the reward per pattern
}


def run_task(batches: int = 150, seed: int = 0, task: dict[str, float] = TASK) -> dict[str, Any]:
    """Train for ``batches`` batches; return per batch the fraction correct and the firing
    probability per pattern, and the weights before and after."""
    inputs, steps, batch = int(task["inputs"]), int(task["steps"]), int(task["batch"])
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(2, steps, inputs, generator=generator) < task["input_rate"] / 1000.0  # A, B
    neuron = EscapeNoiseNeuron(
        1, tau_membrane=task["tau_membrane"], epsilon_0=task["epsilon_0"], u_rest=task["u_rest"],
        theta=task["theta"], delta_u=task["delta_u"], rho_0=task["rho_0"], refractory=task["refractory"],
        seed=seed + 1, batch_size=batch, step_mode="window",
    )  # fmt: skip
    connection = LinearDense(inputs, 1, batch_size=batch, step_mode="window")
    with torch.no_grad():
        connection.weight.copy_(torch.rand(1, inputs, generator=generator) * task["initial_weight"])
    cell = Cell(connection, neuron)
    cell.make_updater(clamp=(0.0, None))
    trainer = Rmax(
        learning_rate=task["learning_rate"], tau_psp=task["tau_membrane"],
        amplitude_psp=task["epsilon_0"] / task["delta_u"], tau_eligibility=task["tau_eligibility"],
        window=steps,
    )  # fmt: skip
    trainer.register_cell("out", cell)
    which = torch.arange(batch) % 2  # 0: A (fire), 1: B (stay silent)
    window = patterns[which].transpose(0, 1).float()  # [T, B, inputs]
    critic = torch.zeros(2)
    before = connection.weight.detach().clone()
    correct, fire_probability = [], []
    with torch.no_grad():
        for _ in range(batches):
            cell.reset()
            trainer.clear()
            fired = cell(window).sum(0)[:, 0] > 0
            success = torch.where(which == 0, fired, ~fired)
            outcome = success.float() * 2.0 - 1.0
            reward = torch.zeros(steps, batch)
            reward[-1] = outcome - critic[which]
            for pattern in (0, 1):
                critic[pattern] += task["critic_rate"] * (outcome[which == pattern].mean() - critic[pattern])
            trainer(reward)
            trainer.update()
            chance = 1.0 - torch.prod(1.0 - neuron.spike_probability[:, :, 0], dim=0)
            correct.append([float(success[which == pattern].float().mean()) for pattern in (0, 1)])
            fire_probability.append([float(chance[which == pattern].mean()) for pattern in (0, 1)])
    drive = (patterns[0].float().sum(0) - patterns[1].float().sum(0)).numpy()
    return {
        "correct": np.mean(np.array(correct), axis=1),
        "correct_per_pattern": np.array(correct),
        "fire_probability": np.array(fire_probability),
        "weight_before": before[0].numpy(),
        "weight_after": connection.weight.detach()[0].numpy(),
        "drive": drive,
    }


def main(out_dir: str | Path = "zoo_docs/figures", *, batches: int = 150) -> Path:
    """Draw ``rmax.png``; return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = run_task(batches=batches)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    trials = np.arange(1, batches + 1)
    per_pattern = result["correct_per_pattern"]
    axes[0].plot(trials, per_pattern[:, 0], label="pattern A (fire)")
    axes[0].plot(trials, per_pattern[:, 1], label="pattern B (stay silent)")
    axes[0].plot(trials, result["correct"], "k", linewidth=2, label="both")
    axes[0].set_xlabel(f"batch ({int(TASK['batch'])} trials of 100 ms)")
    axes[0].set_ylabel("fraction correct")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    axes[0].set_title("(a) reward: correct trials rise", fontsize=10)
    axes[1].plot(trials, result["fire_probability"][:, 0], label="A")
    axes[1].plot(trials, result["fire_probability"][:, 1], label="B")
    axes[1].set_xlabel("batch")
    axes[1].set_ylabel("P(at least one spike) = 1 - prod_t (1 - p_t)")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=8)
    axes[1].set_title("(b) firing probability per pattern (from spike_probability)", fontsize=10)
    order = np.argsort(result["drive"])
    axes[2].plot(result["weight_before"][order], "o", markersize=3, label="before")
    axes[2].plot(result["weight_after"][order], "o", markersize=3, label="after")
    axes[2].set_xlabel("input, sorted by spikes in A minus spikes in B")
    axes[2].set_ylabel("weight")
    axes[2].legend(fontsize=8)
    axes[2].set_title("(c) weights: inputs of A up, of B down", fontsize=10)
    path = out / "rmax.png"
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
