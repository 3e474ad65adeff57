"""Figure of zoo_docs/pairing_schemes.md: which spike pairs each pairing scheme of pair STDP counts.

(a) One pre/post train, and the pairs the rule itself counts under each
scheme (Morrison, Diesmann & Gerstner 2008, Fig. 7): read from
:func:`~plastic.functional.stdp.stdp_step` run step by step with no decay
(``tau = inf``) and the trace jump at step ``t`` equal to ``2^t``, so that the
potentiation added at a post spike ``q`` is ``sum 2^p`` over the pre spikes
``p`` it pairs with (and the depression at a pre spike the same over its post
partners): the binary digits name the pairs (:func:`counted_pairs_by_the_rule`).
(b) The weight change per pairing of the classic protocol (60 pairings,
``t_post - t_pre = +10`` or ``-10`` ms) against the pairing frequency.
(c) The mean drift ``dw/dt`` of a synapse between independent Poisson
trains, the presynaptic one at 10 Hz, against the postsynaptic rate
(simulated, 64 trains of 20 s, and the closed form of :func:`drift_closed_form`): with
depression slightly stronger than potentiation over the window
(``eta_pre tau_post > eta_post tau_pre``) all-to-all pairing depresses at
every rate, the nearest-neighbour schemes depress at low and potentiate at
high postsynaptic rates (BCM-like; Izhikevich & Desai 2003).

Run ``python -m plastic.zoo.figures_pairing [out_dir]``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from torch import Tensor

from plastic.functional.bilinear import BatchReduction
from plastic.functional.pairing_schemes import STATEFUL_PAIRINGS, PairingState, initial_pairing_state
from plastic.functional.stdp import Pairing, stdp_step, stdp_window
from plastic.zoo.plotting import save_figure

__all__ = ["SCHEMES", "counted_pairs_by_the_rule", "drift_closed_form", "main", "pairing_protocol", "poisson_drift"]

#: the schemes drawn, with the names Morrison et al. (2008) and NEST give them
SCHEMES: dict[Pairing, str] = {
    "all": "all-to-all (stdp_synapse)",
    "nearest": "symmetric, Fig. 7A (stdp_nn_symm_synapse)",
    "presynaptic_centred": "presynaptic-centred, Fig. 7B (stdp_nn_pre_centered_synapse)",
    "restricted": "restricted, Fig. 7C (stdp_nn_restr_synapse)",
}
DT = 1.0  # ms
TAU_PRE = 16.8  # ms (tau_+, Bi & Poo 1998 fit)
TAU_POST = 33.7  # ms (tau_-)
ETA_POST = 1.0
ETA_PRE = 0.6  # eta_pre * tau_post = 20.2 > eta_post * tau_pre = 16.8: depression dominates all-to-all
EXAMPLE_PRE = (2, 5, 9, 16, 18, 27, 30)
EXAMPLE_POST = (7, 10, 12, 18, 24, 33)
EXAMPLE_STEPS = 36


def _fresh_start(pre: torch.Tensor, post: torch.Tensor, pairing: Pairing) -> tuple[Tensor, Tensor, PairingState | None]:
    """Zero float64 traces and the scheme's initial state: a start without history, computed in float64."""
    dtype = torch.float64
    state = None
    if pairing in STATEFUL_PAIRINGS:
        state = initial_pairing_state(pairing, spikes_pre=pre, spikes_post=post, view=None, dtype=dtype)
    return torch.zeros(pre.shape[1:], dtype=dtype), torch.zeros(post.shape[1:], dtype=dtype), state


def counted_pairs_by_the_rule(
    pre_times: tuple[int, ...], post_times: tuple[int, ...], steps: int, pairing: Pairing
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """``(potentiation pairs, depression pairs)`` ``(p, q)`` of one synapse, as :func:`stdp_step` counts them.

    The traces do not decay and jump by ``2^t`` at step ``t``: the
    potentiation of step ``q`` is ``sum 2^p`` over the pre spikes paired with
    the post spike at ``q``, the depression of step ``p`` ``sum 2^q`` over the
    post spikes paired with the pre spike at ``p``. Exact in float64 for
    ``steps <= 52``.
    """
    if steps > 52:
        raise ValueError(f"steps: at most 52 (float64 holds the sums of 2^t exactly), got {steps}")
    pre = torch.zeros(steps, 1, 1, dtype=torch.bool)
    post = torch.zeros(steps, 1, 1, dtype=torch.bool)
    pre[list(pre_times)] = True
    post[list(post_times)] = True
    trace_pre, trace_post, state = _fresh_start(pre, post, pairing)
    potentiation: set[tuple[int, int]] = set()
    depression: set[tuple[int, int]] = set()
    for t in range(steps):
        result = stdp_step(
            pre[t], post[t], trace_pre, trace_post, decay_pre=1.0, decay_post=1.0, amplitude_pre=2.0**t,
            amplitude_post=2.0**t, pairing=pairing, pairing_state=state,
        )  # fmt: skip
        trace_pre, trace_post, state = result.trace_pre, result.trace_post, result.pairing_state
        # the binary digits of this step's sums: the partners' steps
        paired_pre = int(result.potentiation.item())
        paired_post = int(result.depression.item())
        potentiation.update((partner, t) for partner in range(t + 1) if paired_pre >> partner & 1)
        depression.update((t, partner) for partner in range(t + 1) if paired_post >> partner & 1)
    return potentiation, depression


def _net_change(pre: Tensor, post: Tensor, pairing: Pairing, batch_reduction: BatchReduction = "sum") -> Tensor:
    trace_pre, trace_post, state = _fresh_start(pre, post, pairing)
    out = stdp_window(
        pre, post, trace_pre, trace_post, tau_pre=TAU_PRE, tau_post=TAU_POST, dt=DT, pairing=pairing,
        pairing_state=state, batch_reduction=batch_reduction,
    )  # fmt: skip
    return (ETA_POST * out.potentiation - ETA_PRE * out.depression).reshape(())


def pairing_protocol(pairing: Pairing, frequency: float, lag: float, pairings: int = 60) -> float:
    """Weight change per pairing: ``pairings`` pre spikes at ``frequency`` (Hz), each with a post spike
    ``lag`` ms later (earlier when negative)."""
    period = round(1000.0 / frequency / DT)
    shift = round(lag / DT)
    steps = pairings * period + 2 * abs(shift) + 1
    pre = torch.zeros(steps, 1, 1, dtype=torch.bool)
    post = torch.zeros(steps, 1, 1, dtype=torch.bool)
    times = torch.arange(pairings) * period + abs(shift)
    pre[times] = True
    post[times + shift] = True
    return float(_net_change(pre, post, pairing)) / pairings


def poisson_drift(
    pairing: Pairing, rate_post: float, rate_pre: float = 10.0, seconds: float = 20.0, samples: int = 64, seed: int = 0
) -> float:
    """Mean ``dw/dt`` (per second) between independent Poisson trains (rates in Hz), over ``samples``
    trains of ``seconds`` each (the batch, reduced by its mean)."""
    generator = torch.Generator().manual_seed(seed)
    steps = round(seconds * 1000.0 / DT)
    pre = torch.rand(steps, samples, 1, generator=generator) < rate_pre * DT / 1000.0
    post = torch.rand(steps, samples, 1, generator=generator) < rate_post * DT / 1000.0
    return float(_net_change(pre, post, pairing, batch_reduction="mean")) / seconds


def drift_closed_form(pairing: Pairing, rate_post: float, rate_pre: float = 10.0) -> float:
    """The stationary mean ``dw/dt`` (per second) of :func:`poisson_drift` in closed form (``"all"``,
    ``"nearest"``, ``"presynaptic_centred"``).

    Spikes are independent Bernoulli steps with ``p = rate_pre dt``, ``q = rate_post dt``; the
    steps from a spike back to the latest partner at or before it (or on to the first at or
    after it) are geometric, ``P(k) = q (1 - q)^k``, so ``E[a^k] = q / (1 - (1 - q) a)``; an
    all-to-all trace holds ``p / (1 - a)`` on average. Per step::

        all:                 eta_post p q / (1 - a_pre)             - eta_pre p q / (1 - a_post)
        nearest:             eta_post p q / (1 - (1 - p) a_pre)     - eta_pre p q / (1 - (1 - q) a_post)
        presynaptic_centred: eta_post p q / (1 - (1 - q) a_pre)     - eta_pre p q / (1 - (1 - q) a_post)
    """
    p, q = rate_pre * DT / 1000.0, rate_post * DT / 1000.0
    a_pre, a_post = math.exp(-DT / TAU_PRE), math.exp(-DT / TAU_POST)
    depression = p * q / ((1.0 - a_post) if pairing == "all" else (1.0 - (1.0 - q) * a_post))
    if pairing == "all":
        potentiation = p * q / (1.0 - a_pre)
    elif pairing == "nearest":
        potentiation = p * q / (1.0 - (1.0 - p) * a_pre)
    elif pairing == "presynaptic_centred":
        potentiation = p * q / (1.0 - (1.0 - q) * a_pre)
    else:
        raise ValueError(f"pairing: a closed form for 'all', 'nearest' or 'presynaptic_centred', got {pairing!r}")
    return (ETA_POST * potentiation - ETA_PRE * depression) * 1000.0 / DT


def _draw_pairs(axis: Axes, row: int, pairing: Pairing) -> None:
    potentiation, depression = counted_pairs_by_the_rule(EXAMPLE_PRE, EXAMPLE_POST, EXAMPLE_STEPS, pairing)
    top, bottom = row + 0.8, row + 0.2
    for p, q in potentiation:
        axis.plot([p, q], [top, bottom], color="tab:orange", linewidth=2.2, alpha=0.8)
    for p, q in depression:
        axis.plot([p, q], [top, bottom], color="tab:blue", linewidth=1.2, linestyle="--")
    axis.vlines(EXAMPLE_PRE, top, top + 0.12, color="black")
    axis.vlines(EXAMPLE_POST, bottom - 0.12, bottom, color="black")
    axis.text(-0.5, row + 0.5, f"{SCHEMES[pairing]}\n{len(potentiation)} LTP, {len(depression)} LTD pairs",
              ha="right", va="center", fontsize=7)  # fmt: skip


def main(
    out_dir: str | Path = "zoo_docs/figures", *, pairings: int = 60, seconds: float = 20.0, samples: int = 64
) -> Path:
    """Draw ``pairing_schemes.png`` (``pairings`` per protocol, ``samples`` Poisson trains of ``seconds``);
    return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = plt.figure(figsize=(13, 7.5), constrained_layout=True)
    grid = figure.add_gridspec(2, 2, height_ratios=[1.25, 1])
    pairs_axis = figure.add_subplot(grid[0, :])
    for row, pairing in enumerate(reversed(list(SCHEMES))):
        _draw_pairs(pairs_axis, row, pairing)
    pairs_axis.plot([], [], color="tab:orange", linewidth=2.2, label="potentiation pair (pre before post)")
    pairs_axis.plot([], [], color="tab:blue", linestyle="--", label="depression pair (post before pre)")
    pairs_axis.set_xlim(-16, EXAMPLE_STEPS)
    pairs_axis.set_yticks([])
    pairs_axis.set_xticks(range(0, EXAMPLE_STEPS + 1, 5))
    pairs_axis.set_xlabel("step (pre spikes: ticks above each row, post spikes: below; 18 is a simultaneous pair)")
    pairs_axis.legend(loc="upper right", fontsize=8)
    pairs_axis.set_title("(a) the pairs each scheme counts, read from stdp_step (jumps 2^t, no decay)", fontsize=10)

    frequencies = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0]
    protocol_axis = figure.add_subplot(grid[1, 0])
    rates = [2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0]
    drift_axis = figure.add_subplot(grid[1, 1])
    for pairing, marker in zip(SCHEMES, "osd^", strict=True):
        for lag, style in ((10.0, "-"), (-10.0, ":")):
            changes = [pairing_protocol(pairing, frequency, lag, pairings) for frequency in frequencies]
            protocol_axis.plot(frequencies, changes, style, marker=marker, markersize=4,
                               label=f"{pairing}, {lag:+.0f} ms")  # fmt: skip
        drifts = [poisson_drift(pairing, rate, seconds=seconds, samples=samples) for rate in rates]
        line = drift_axis.plot(
            rates, drifts, linestyle="none", marker=marker, markersize=5, label=f"{pairing} (simulated)"
        )[0]
        if pairing != "restricted":
            fine = [1.0 + 0.5 * k for k in range(119)]
            drift_axis.plot(fine, [drift_closed_form(pairing, rate) for rate in fine], "--", linewidth=1,
                            color=line.get_color(), label=f"{pairing} (closed form)")  # fmt: skip
        else:
            drift_axis.plot(rates, drifts, "-", linewidth=1, color=line.get_color())
    protocol_axis.axhline(0.0, color="grey", linewidth=0.5)
    protocol_axis.set_xlabel("pairing frequency (Hz)")
    protocol_axis.set_ylabel("weight change per pairing (units of eta)")
    protocol_axis.set_title(f"(b) {pairings} pairings, t_post - t_pre = +10 ms (solid) or -10 ms (dotted)", fontsize=10)
    protocol_axis.legend(fontsize=6, ncol=2)
    drift_axis.axhline(0.0, color="grey", linewidth=0.5)
    drift_axis.set_xlabel("postsynaptic rate (Hz); pre: 10 Hz (independent Poisson, same trains for all)")
    drift_axis.set_ylabel("mean dw/dt (units of eta per s)")
    drift_axis.set_title(
        f"(c) drift, eta_post = {ETA_POST}, eta_pre = {ETA_PRE}, tau_pre = {TAU_PRE} ms, tau_post = {TAU_POST} ms",
        fontsize=10,
    )
    drift_axis.legend(fontsize=7, ncol=2)
    path = out / "pairing_schemes.png"
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
