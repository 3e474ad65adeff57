"""STDP windows measured by running the real trainers on spike pairs.

For each lag ``delta = t_post - t_pre`` a fresh two-input cell is simulated:
input 0 is the plastic synapse (weight 0, so it never drives the neuron) and
emits one spike at ``t_pre``; input 1 is a teacher with weight 1 that makes
the neuron fire exactly once, at ``t_post``. The trainer is called once after
the window, and the change it accumulates on the plastic synapse,
potentiation minus depression, is the window's value at ``delta``.

``python -m plastic window --rule NAME`` draws one rule; the figure goes to
``<output>/window_<NAME>.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from plastic.functional.kernels import mexican_hat
from plastic.learn.base import IndependentCellTrainer
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import IF
from plastic.zoo.plotting import pyplot, save_figure

__all__ = ["RULES", "measure_window", "plot_triplet_frequency", "plot_window"]

TrainerFactory = Callable[[], IndependentCellTrainer]


def _stdp(**kwargs: Any) -> TrainerFactory:
    from plastic.learn.stdp import STDP

    return lambda: STDP(eta_post=1.0, eta_pre=1.0, tau_pre=20.0, tau_post=20.0, **kwargs)


def _kernel(**kwargs: Any) -> TrainerFactory:
    from plastic.learn.kernel_stdp import KernelSTDP

    return lambda: KernelSTDP(batch_reduction="sum", **kwargs)


def _delay_adjusted() -> TrainerFactory:
    from plastic.learn.kernel_stdp import DelayAdjustedSTDP

    return lambda: DelayAdjustedSTDP(lr_post=1.0, lr_pre=-1.0, batch_reduction="sum")


def _triplet() -> TrainerFactory:
    from plastic.learn.triplet import TripletSTDP

    return lambda: TripletSTDP()


def _all_pairs() -> TrainerFactory:
    from plastic.learn.all_pairs import AllPairsKernelSTDP

    return lambda: AllPairsKernelSTDP(
        kernel_post=mexican_hat,
        kernel_post_kwargs={"amplitude": 1.0, "sigma": 10.0},
        kernel_pre=lambda delta: torch.zeros_like(delta),
        batch_reduction="sum",
    )


#: rule name -> (description, factory builder, connection delay)
RULES: dict[str, tuple[str, Callable[[], TrainerFactory], float | None]] = {
    "stdp": ("pair STDP, all-to-all traces (STDP)", lambda: _stdp(), None),
    "stdp-nearest": ("pair STDP, nearest-spike traces (STDP)", lambda: _stdp(pairing="nearest"), None),
    "kernel": ("kernel STDP, exponential kernels (KernelSTDP)", lambda: _kernel(), None),
    "mexican-hat": (
        "kernel STDP, Mexican-hat kernel (KernelSTDP)",
        lambda: _kernel(
            kernel_post=mexican_hat,
            kernel_post_kwargs={"amplitude": 1.0, "sigma": 10.0},
            kernel_pre=lambda delta: torch.zeros_like(delta),
        ),
        None,
    ),
    "delay-adjusted": ("delay-adjusted STDP, delay 5 ms (DelayAdjustedSTDP)", _delay_adjusted, 5.0),
    "triplet": ("triplet STDP, single pairs (TripletSTDP)", _triplet, None),
    "all-pairs": ("all-pairs kernel STDP, Mexican hat (AllPairsKernelSTDP)", _all_pairs, None),
}


def _pair_cell(delay: float | None) -> Cell:
    if delay is None:
        connection = LinearDense(2, 1, dt=1.0)
    else:
        # the plastic synapse is delayed, the teacher is not
        connection = LinearDense(2, 1, delay=delay, dt=1.0, learn_delay_init=torch.tensor([[delay, 0.0]]))
    with torch.no_grad():
        connection.weight.copy_(torch.tensor([[0.0, 1.0]]))
    cell = Cell(connection, IF(1, v_threshold=0.5, v_reset=0.0))
    cell.make_updater(params=["weight"] if delay is None else ["weight", "delay"])
    return cell


def measure_window(
    factory: TrainerFactory, lags: torch.Tensor, *, delay: float | None = None, margin: int = 60
) -> torch.Tensor:
    """The change of the plastic weight for each lag ``t_post - t_pre`` (steps)."""
    changes = []
    for lag in lags.tolist():
        lag = int(lag)
        t_pre = margin if lag >= 0 else margin - lag
        t_post = t_pre + lag
        steps = max(t_pre, t_post) + 2
        spikes = torch.zeros(steps, 1, 2)
        spikes[t_pre, 0, 0] = 1.0
        # the teacher drives the neuron on the step it spikes
        spikes[t_post, 0, 1] = 1.0
        cell = _pair_cell(delay)
        trainer = factory()
        unit = trainer.register_cell("pair", cell)
        cell.step_mode = "window"
        with torch.no_grad():  # plasticity only: no autograd graph through the neuron state
            cell(spikes)
        trainer()
        potentiation, depression = unit.updater.pending("weight")
        changes.append(float(potentiation[0, 0] - depression[0, 0]))
    return torch.tensor(changes)


def plot_window(rule: str, output: str | Path, lags: torch.Tensor | None = None) -> Path:
    """Measure and draw the window of a built-in rule; returns the PNG path."""
    description, builder, delay = RULES[rule]
    lags = torch.arange(-50, 51) if lags is None else lags
    changes = measure_window(builder(), lags, delay=delay)
    return draw_window(lags, changes, description, Path(output) / f"window_{rule}.png")


def draw_window(lags: torch.Tensor, changes: torch.Tensor, title: str, path: Path) -> Path:
    """A measured window (``changes`` against the lags ``t_post - t_pre``, ms) drawn to ``path``."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    axis.axhline(0.0, color="0.7", linewidth=0.8)
    axis.axvline(0.0, color="0.7", linewidth=0.8)
    axis.plot(lags.numpy(), changes.numpy(), "o-", markersize=2.5)
    axis.set_xlabel("t_post - t_pre (ms)")
    axis.set_ylabel("weight change")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_triplet_frequency(output: str | Path) -> Path:
    """The Pfister & Gerstner pairing-frequency protocol (see ``figures_rules``)."""
    from plastic.zoo.figures_rules import triplet_frequency

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    return triplet_frequency(out)
