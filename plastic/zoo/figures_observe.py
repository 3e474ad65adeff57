"""Figure for zoo_docs/observe.md: one spike train and what the reducers make of it.

Run ``python -m plastic.zoo.figures_observe [out_dir]`` (default
``zoo_docs/figures``); writes ``reducers.png``. Every curve is what the
reducers of :mod:`plastic.observe.reducers` return, step by step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch

from plastic.observe.reducers import (
    CumulativeTraceReducer,
    EventTimeReducer,
    NearestTraceReducer,
)
from plastic.zoo.plotting import save_figure

__all__ = ["main"]

DT = 1.0  # ms
TAU = 8.0  # ms
DELAY = 3.5  # ms, the synaptic delay shown in the event-time panel
SPIKE_STEPS = (6, 9, 11, 30, 33, 52)
STEPS = 64


def _record() -> dict[str, torch.Tensor]:
    spikes = torch.zeros(STEPS, 1, dtype=torch.bool)
    spikes[list(SPIKE_STEPS), 0] = True
    event_time = EventTimeReducer(DT, duration=DELAY)
    cumulative = CumulativeTraceReducer(DT, TAU)
    nearest = NearestTraceReducer(DT, TAU)
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in ("event", "delayed", "cumulative", "nearest")}
    for step in spikes:
        for reducer in (event_time, cumulative, nearest):
            reducer(step)
        rows["event"].append(event_time.peek())
        rows["delayed"].append(event_time.view(DELAY))
        rows["cumulative"].append(cumulative.peek())
        rows["nearest"].append(nearest.peek())
    out = {name: torch.cat(values) for name, values in rows.items()}
    out["spikes"] = spikes[:, 0]
    return out


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    """Draw the spike train, its event time (plain and delayed) and both traces; return the PNG path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recorded = _record()
    time = torch.arange(STEPS) * DT
    figure, axes = plt.subplots(
        4, 1, figsize=(9, 7), sharex=True, constrained_layout=True, gridspec_kw={"height_ratios": [0.4, 1, 1, 1]}
    )
    spike_times = time[recorded["spikes"]]
    axes[0].vlines(spike_times, 0, 1, color="black")
    axes[0].set_yticks([])
    axes[0].set_title("spike train s_t", fontsize=10)
    axes[1].step(time, recorded["event"], where="post", label="e_t (time since the last spike)")
    axes[1].step(
        time, recorded["delayed"], where="post", linestyle="--", label=f"view({DELAY}): seen through a {DELAY} ms delay"
    )
    axes[1].set_ylabel("ms")
    axes[1].set_title("EventTimeReducer (NaN, not drawn, before the first spike / arrival)", fontsize=10)
    axes[1].legend(fontsize=8, loc="upper left")
    axes[2].plot(time, recorded["cumulative"], marker=".", label=f"tau = {TAU} ms, A = 1")
    axes[2].set_title("CumulativeTraceReducer: x_t = a x_{t-1} + A s_t", fontsize=10)
    axes[2].legend(fontsize=8, loc="upper right")
    axes[3].plot(time, recorded["nearest"], marker=".", color="tab:green", label=f"tau = {TAU} ms, A = 1")
    axes[3].set_title("NearestTraceReducer: x_t = A where s_t, else a x_{t-1}", fontsize=10)
    axes[3].legend(fontsize=8, loc="upper right")
    axes[3].set_xlabel("time (ms), dt = 1 ms")
    for axis in axes[1:]:
        for spike_time in spike_times:
            axis.axvline(float(spike_time), color="0.85", linewidth=0.8, zorder=0)
    path = out / "reducers.png"
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
