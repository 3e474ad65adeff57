"""Figures for zoo_docs/triplet.md, reward.md and integer.md, computed by the rules themselves.

Run ``python -m plastic.zoo.figures_rules [out_dir]`` (default
``zoo_docs/figures``); writes ``triplet_frequency.png``, ``mstdp.png``,
``integer_stdp.png`` and ``homeostasis.png``.

* ``triplet_frequency.png``: the pairing protocol of Pfister & Gerstner (2006)
  (their Fig. 4, data of Sjöström et al. 2001): 60 pre/post pairs at
  ``Delta t = +10`` and ``-10`` ms, repeated at 0.1 to 50 Hz, with the paper's
  visual-cortex all-to-all parameters; one neuron pair per condition, all run
  at once as one network, in chained windows, ``dt = 1`` ms.
* ``mstdp.png``: one synapse with a causal pre -> post pair every 100 ms; the
  reward is +1 for the first half and -1 for the second half, delivered 1 ms
  or 10 ms after each postsynaptic spike. MSTDP learns only from the
  immediate reward, MSTDP-ET from both.
* ``integer_stdp.png``: an integer trace next to the exponential it
  approximates, and the integer weights of one neuron whose spikes follow
  shared events of half of its inputs (the others carry noise only).
* ``homeostasis.png``: threshold homeostasis bringing five neurons with
  different input gains to one target rate.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from plastic.functional.homeostasis import homeostatic_change, rate_ema_alpha, rate_ema_step
from plastic.functional.integer import (
    IntegerSTDPParameters,
    integer_stdp_window,
    integer_trace_window,
)
from plastic.functional.reward import (
    RewardState,
    RewardSTDPParameters,
    RewardUpdate,
    mstdp_et_window,
    mstdp_window,
)
from plastic.functional.triplet import (
    TripletParameters,
    triplet_initial_traces,
    triplet_stdp_window,
)
from plastic.zoo.plotting import save_figure

__all__ = ["homeostasis_figure", "integer_figure", "main", "mstdp_figure", "triplet_frequency"]

FREQUENCIES = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)


def triplet_frequency(out: Path, *, dt: float = 1.0, pairs: int = 60, lag: float = 10.0) -> Path:
    """Weight change after ``pairs`` pairings vs pairing frequency, both signs of ``Delta t``."""
    parameters = TripletParameters()  # Pfister & Gerstner 2006, visual cortex, all-to-all
    cases = [(f, sign) for f in FREQUENCIES for sign in (+1, -1)]
    lag_steps = round(lag / dt)
    periods = [round(1000.0 / f / dt) for f, _ in cases]  # spike times on the dt grid
    steps = max(periods) * pairs + 2 * lag_steps
    pre = torch.zeros(steps, 1, len(cases), dtype=torch.bool)
    post = torch.zeros(steps, 1, len(cases), dtype=torch.bool)
    for index, ((_, sign), period) in enumerate(zip(cases, periods, strict=False)):
        first = lag_steps if sign > 0 else 2 * lag_steps
        pre_steps = torch.arange(pairs) * period + first
        pre[pre_steps, 0, index] = True
        post[pre_steps + sign * lag_steps, 0, index] = True
    traces = triplet_initial_traces(1, (len(cases),), (len(cases),), dtype=torch.float64)
    dw = torch.zeros(len(cases), dtype=torch.float64)
    chunk = 50_000  # chained windows keep memory bounded; the traces carry the pairs across
    for start in range(0, steps, chunk):
        result = triplet_stdp_window(pre[start : start + chunk], post[start : start + chunk], traces, parameters, dt=dt)
        traces = result.traces
        dw += (result.potentiation - result.depression).diagonal()
    figure, axis = plt.subplots(figsize=(6.0, 4.0), constrained_layout=True)
    for sign, marker, label in ((+1, "o", "pre -> post, Δt = +10 ms"), (-1, "s", "post -> pre, Δt = -10 ms")):
        values = [100.0 * float(dw[i]) for i, (_, s) in enumerate(cases) if s == sign]
        axis.plot(FREQUENCIES, values, marker=marker, label=label)
    axis.axhline(0.0, color="0.7", linewidth=0.8)
    axis.set_xlabel("pairing frequency (Hz)")
    axis.set_ylabel("Δw after 60 pairs (% of w = 1)")
    axis.set_title("Triplet STDP, pairing protocol (Pfister & Gerstner 2006, all-to-all)", fontsize=9)
    axis.legend(fontsize=8)
    path = out / "triplet_frequency.png"
    return save_figure(figure, path)


def _reward_protocol(steps: int, period: int, delay: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pre = torch.zeros(steps, 1, 1, dtype=torch.float64)
    post = torch.zeros(steps, 1, 1, dtype=torch.float64)
    reward = torch.zeros(steps, dtype=torch.float64)
    for start in range(10, steps - period, period):
        pre[start] = 1.0
        post[start + 5] = 1.0  # causal pair: z > 0
        reward[start + 5 + delay] = 1.0 if start < steps // 2 else -1.0
    return pre, post, reward


def _chained_weight(
    window: Callable[[Tensor, Tensor, Tensor, RewardState | None, RewardSTDPParameters], RewardUpdate[RewardState]],
    pre: Tensor,
    post: Tensor,
    reward: Tensor,
    parameters: RewardSTDPParameters,
) -> list[float]:
    """The weight of a reward rule after each 50 ms window, the windows chained through their state."""
    state: RewardState | None = None
    weight, history = 0.0, []
    for start in range(0, pre.shape[0], 50):
        stop = start + 50
        result = window(pre[start:stop], post[start:stop], reward[start:stop], state, parameters)
        state = result.state
        weight += float(result.update)
        history.append(weight)
    return history


def mstdp_figure(out: Path) -> Path:
    """Weight under MSTDP and MSTDP-ET for an immediate and a delayed reward."""
    steps, period = 2000, 100
    parameters = RewardSTDPParameters(learning_rate=1.0)
    figure, axes = plt.subplots(3, 1, figsize=(7.0, 6.5), sharex=True, constrained_layout=True)
    for delay, style in ((1, "-"), (10, "--")):
        pre, post, reward = _reward_protocol(steps, period, delay)
        for history, name, axis in (
            (_chained_weight(mstdp_window, pre, post, reward, parameters), "MSTDP", axes[1]),
            (_chained_weight(mstdp_et_window, pre, post, reward, parameters), "MSTDP-ET", axes[2]),
        ):
            axis.plot(range(50, steps + 1, 50), history, style, label=f"{name}, reward {delay} ms after post")
        axes[0].plot(reward.numpy(), style, label=f"reward, {delay} ms after each post spike")
    axes[0].set_ylabel("reward r(t)")
    axes[0].legend(fontsize=8, loc="lower left")
    for axis in axes[1:]:
        axis.set_ylabel("Δw (cumulative)")
        axis.axhline(0.0, color="0.7", linewidth=0.8)
        axis.legend(fontsize=8)
    axes[2].set_xlabel("time (ms)")
    axes[0].set_title("A causal pair every 100 ms; reward +1, then -1 (Florian 2007)", fontsize=9)
    path = out / "mstdp.png"
    return save_figure(figure, path)


def integer_figure(out: Path) -> Path:
    """An integer trace vs its exponential, and integer weights learning from correlated input."""
    parameters = IntegerSTDPParameters(
        trace_scale=127,
        trace_decay_pre=240,
        trace_decay_post=240,
        trace_decay_shift=8,
        nu_pre=4,
        nu_post=3,
        rounding_shift=7,
        w_min=0,
        w_max=63,
    )
    figure, axes = plt.subplots(1, 2, figsize=(11.0, 4.0), constrained_layout=True)
    spikes = torch.zeros(60, 1, dtype=torch.bool)
    spikes[[0, 25]] = True
    trace, _ = integer_trace_window(spikes, 240, 8, 127, torch.zeros(1, dtype=torch.int64))
    exact = [127.0 * (240 / 256) ** (t if t < 25 else t - 25) for t in range(60)]
    axes[0].step(range(60), trace[:, 0].numpy(), where="post", label="integer: x <- (240 x) >> 8")
    axes[0].plot(range(60), exact, ":", label="127 (240/256)^t")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("trace")
    axes[0].legend(fontsize=8)
    axes[0].set_title("integer trace (spikes at 0 and 25)", fontsize=9)

    generator = torch.Generator().manual_seed(0)
    steps, inputs = 4000, 20
    # background noise on every input; a shared event drives the first half together,
    # and the postsynaptic neuron fires 2 steps after each shared event
    pre = torch.rand(steps, 1, inputs, generator=generator) < 0.01
    events = torch.rand(steps, 1, 1, generator=generator) < 0.01
    pre[:, :, : inputs // 2] |= events
    post = torch.zeros(steps, 1, 1, dtype=torch.bool)
    post[2:] = events[:-2]
    weight = torch.full((1, inputs), 32, dtype=torch.int64)
    traces, history = None, []
    rounding = torch.Generator().manual_seed(1)
    for start in range(0, steps, 100):
        result = integer_stdp_window(
            pre[start : start + 100], post[start : start + 100], weight, traces, parameters, generator=rounding
        )
        weight, traces = result.weight, result.traces
        history.append(weight[0].clone())
    history_tensor = torch.stack(history)
    times = range(100, steps + 1, 100)
    for j in range(inputs):
        axes[1].step(
            times,
            history_tensor[:, j].numpy(),
            where="post",
            color="tab:blue" if j < inputs // 2 else "tab:orange",
            linewidth=0.9,
        )
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("integer weight")
    axes[1].set_title("correlated inputs (blue) potentiate, others (orange) depress; [0, 63]", fontsize=9)
    path = out / "integer_stdp.png"
    return save_figure(figure, path)


def homeostasis_figure(out: Path) -> Path:
    """Threshold homeostasis: five neurons with different input gains reach one target rate."""
    generator = torch.Generator().manual_seed(0)
    steps, target, eta = 3000, 0.05, 0.05
    gains = torch.tensor([0.5, 1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    threshold = torch.full_like(gains, 0.5)
    rate = torch.zeros_like(gains)
    alpha = rate_ema_alpha(1.0, 100.0)
    rates, thresholds = [], []
    for _ in range(steps):
        drive = gains * torch.rand(gains.shape, generator=generator, dtype=torch.float64)
        spikes = drive > threshold
        rate = rate_ema_step(rate, spikes, alpha)
        threshold = threshold + homeostatic_change(rate, target, eta, target="threshold")
        rates.append(rate)
        thresholds.append(threshold)
    figure, axes = plt.subplots(1, 2, figsize=(11.0, 3.8), constrained_layout=True)
    for index, gain in enumerate(gains.tolist()):
        axes[0].plot(torch.stack(rates)[:, index].numpy(), label=f"input gain {gain:g}")
        axes[1].plot(torch.stack(thresholds)[:, index].numpy())
    axes[0].axhline(target, color="0.4", linestyle="--", linewidth=0.8, label="target")
    axes[0].set_ylabel("EMA rate (spikes / step)")
    axes[1].set_ylabel("threshold")
    for axis in axes:
        axis.set_xlabel("step")
    axes[0].legend(fontsize=8)
    axes[0].set_title("rate (tau_rate = 100 steps) approaches the target", fontsize=9)
    axes[1].set_title("threshold += eta (rate - target)", fontsize=9)
    path = out / "homeostasis.png"
    return save_figure(figure, path)


def main(out_dir: str | Path = "zoo_docs/figures") -> list[Path]:
    """Write the figures into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [triplet_frequency(out), mstdp_figure(out), integer_figure(out), homeostasis_figure(out)]


if __name__ == "__main__":
    for written in main(sys.argv[1] if len(sys.argv) > 1 else "zoo_docs/figures"):
        print(written)
