"""Figure for zoo_docs/kernel_stdp.md: the STDP window measured by running the trainers.

Run ``python -m plastic.zoo.figures_kernel_stdp [out_dir]`` (default
``zoo_docs/figures``); writes ``kernel_stdp_window.png``.

Protocol: one dense cell with one input per spike-time difference
``delta = t_post - t_pre`` in ``[-40, 40]`` ms (``dt = 1`` ms) and one IF
output neuron. The weights are zero, so inputs never drive the neuron; an
external current makes it fire exactly once, at ``t_post``; input ``j`` fires
once, at ``t_post - delta_j``. Each synapse thus sees exactly one pair, and
the change a trainer writes into the cell's updater (potentiation minus
depression) is the window value at its ``delta``. Every curve is measured
this way, with the real trainers, cells and monitors:

* ``KernelSTDP`` with the exponential kernels (Bi & Poo 1998 time constants
  ``tau_post = 16.8`` ms, ``tau_pre = 33.7`` ms; amplitudes 1 and -0.5) and the
  trace-form ``STDP`` trainer with the matching parameters (the simultaneous
  pair gets both terms there);
* ``KernelSTDP`` and ``AllPairsKernelSTDP`` with a Mexican-hat kernel
  (``sigma = 10`` ms): one pair per synapse, so the two agree;
* ``DelayAdjustedSTDP`` on a connection with a 5 ms delay on every synapse,
  whose window is shifted by the delay (``delta - d``), and
  ``DelayAdjustedSTDPD``, the change it writes into the delays.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch

from plastic.functional.kernels import mexican_hat
from plastic.learn.all_pairs import AllPairsKernelSTDP
from plastic.learn.base import IndependentCellTrainer
from plastic.learn.kernel_stdp import DelayAdjustedSTDP, DelayAdjustedSTDPD, KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import IF
from plastic.zoo.plotting import save_figure

__all__ = ["main", "measure_window", "window_figure"]

DTYPE = torch.float64
TAU_POST, TAU_PRE = 16.8, 33.7  # ms, Bi & Poo (1998) fits
DELAY = 5.0  # ms


def _cell(count: int, delay: float | None) -> Cell:
    if delay is None:
        connection = LinearDense(count, 1, weight_init=(0.0, 0.0), dtype=DTYPE)
    else:
        connection = LinearDense(
            count, 1, weight_init=(0.0, 0.0), dtype=DTYPE,
            delay=2 * delay, learn_delay_init=torch.full((1, count), delay, dtype=DTYPE),
        )  # fmt: skip
    cell = Cell(connection, IF(1, v_threshold=1.0, dtype=DTYPE))
    cell.make_updater()
    return cell


def measure_window(trainer: IndependentCellTrainer, deltas: torch.Tensor, *, delay: float | None = None,
                   parameter: str = "weight") -> torch.Tensor:  # fmt: skip
    """Run the pair protocol through ``trainer`` on a fresh cell; the change per ``delta`` (ms)."""
    count = deltas.numel()
    reach = int(deltas.abs().max().item())
    t_post = reach + 2
    steps = t_post + reach + 3
    cell = _cell(count, delay)
    unit = trainer.register_cell("pairs", cell)
    pre = torch.zeros(steps, 1, count, dtype=DTYPE)
    pre[(t_post - deltas).long(), 0, torch.arange(count)] = 1.0
    with torch.no_grad():  # plasticity only: no autograd graph through the neuron state
        for step in range(steps):
            current = torch.full((1, 1), 1.0 if step == t_post else 0.0, dtype=DTYPE)
            cell(pre[step], current)
    trainer()
    potentiation, depression = unit.updater.pending(parameter)
    return (potentiation - depression).reshape(-1)


def window_figure(out: Path) -> Path:
    deltas = torch.arange(-40, 41, dtype=DTYPE)
    exp_post = {"eta_post": 1.0, "tau_post": TAU_POST}
    exp_pre = {"eta_pre": -0.5, "tau_pre": TAU_PRE}
    hat = {"amplitude": 1.0, "sigma": 10.0}
    curves = {
        "kernel": measure_window(KernelSTDP(kernel_post_kwargs=exp_post, kernel_pre_kwargs=exp_pre), deltas),
        # trace form: potentiation decays with the pre trace, depression with the post trace
        "trace": measure_window(
            STDP(eta_post=1.0, eta_pre=0.5, tau_pre=TAU_POST, tau_post=TAU_PRE, window=128), deltas
        ),
        "hat": measure_window(
            KernelSTDP(kernel_post=mexican_hat, kernel_post_kwargs=hat, kernel_pre_kwargs={"eta_pre": 0.0}), deltas
        ),
        "hat_all_pairs": measure_window(
            AllPairsKernelSTDP(kernel_post=mexican_hat, kernel_post_kwargs=hat, kernel_pre=None, window=128), deltas
        ),
        "delay_weight": measure_window(
            DelayAdjustedSTDP(lr_post=1.0, lr_pre=-0.5, tau_post=TAU_POST, tau_pre=TAU_PRE), deltas, delay=DELAY
        ),
        "delay_delay": measure_window(
            DelayAdjustedSTDPD(lr_post=1.0, lr_pre=-0.5, tau_post=TAU_POST, tau_pre=TAU_PRE),
            deltas,
            delay=DELAY,
            parameter="delay",
        ),
    }
    x = deltas.numpy()
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    axes[0].plot(x, curves["trace"].numpy(), "-", color="0.6", label="STDP (trace form)")
    axes[0].plot(x, curves["kernel"].numpy(), "o", ms=3, label="KernelSTDP (exp kernels)")
    axes[0].set_title("exponential window (Hebbian)")
    axes[1].plot(x, curves["hat_all_pairs"].numpy(), "-", color="0.6", label="AllPairsKernelSTDP")
    axes[1].plot(x, curves["hat"].numpy(), "o", ms=3, label="KernelSTDP")
    axes[1].set_title("Mexican-hat kernel (sigma = 10 ms)")
    axes[2].plot(x, curves["kernel"].numpy(), "-", color="0.6", label="no delay")
    axes[2].plot(x, curves["delay_weight"].numpy(), "o", ms=3, label=f"DelayAdjustedSTDP, d = {DELAY:g} ms")
    axes[2].plot(x, curves["delay_delay"].numpy(), "x", ms=3, label="DelayAdjustedSTDPD (delay change)")
    axes[2].set_title("delay-adjusted: delta - d")
    for axis in axes:
        axis.axhline(0.0, color="k", lw=0.5)
        axis.axvline(0.0, color="k", lw=0.5)
        axis.set_xlabel("t_post - t_pre (ms)")
        axis.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("change written to the updater")
    figure.suptitle("STDP windows measured by running the trainers on one spike pair per synapse", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, out, dpi=120)


def main(out_dir: str | Path = "zoo_docs/figures") -> list[Path]:
    """Write ``kernel_stdp_window.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    return [window_figure(out_dir / "kernel_stdp_window.png")]


if __name__ == "__main__":
    for path in main(*sys.argv[1:2]):
        print(path)
