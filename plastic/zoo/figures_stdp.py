"""Figures for zoo_docs/stdp.md and zoo_docs/kernels.md.

Run ``python -m plastic.zoo.figures_stdp [out_dir]`` (default
``zoo_docs/figures``); writes ``stdp_window.png`` (the pair-STDP window: the
weight change of one pre/post spike pair against ``t_post - t_pre``, computed
by running :func:`plastic.functional.stdp.stdp_window` and
:func:`plastic.functional.all_pairs.all_pairs_window` on single spike pairs)
and ``kernels.png`` (the built-in spike-time kernels of
:mod:`plastic.functional.kernels`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI machines

import matplotlib.pyplot as plt
import torch

from plastic.functional.all_pairs import all_pairs_window
from plastic.functional.kernels import (
    Kernel,
    exp_post,
    exp_pre,
    gaussian,
    mexican_hat,
    rectangular,
    symmetric_exp,
)
from plastic.functional.stdp import stdp_delta_weight, stdp_window
from plastic.zoo.plotting import save_figure

__all__ = ["main", "pair_window"]

DT = 1.0  # ms
TAU_PRE = 16.8  # ms, presynaptic trace (Bi & Poo 1998 fit, potentiation side)
TAU_POST = 33.7  # ms, postsynaptic trace (depression side)
ETA_POST = 1.0
ETA_PRE = 0.5  # depression amplitude, trace form (positive = Hebbian)
MAX_LAG = 80


def _pair(lag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A window with one pre spike and one post spike ``lag`` steps later (or earlier)."""
    steps = 2 * MAX_LAG + 1
    pre = torch.zeros(steps, 1, 1, dtype=torch.bool)
    post = torch.zeros(steps, 1, 1, dtype=torch.bool)
    pre[MAX_LAG] = True
    post[MAX_LAG + lag] = True
    return pre, post


def pair_window(pairing: Literal["all", "nearest"] = "all", exact: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lags in ms, dw)`` of one spike pair per lag, by the trace form."""
    lags = torch.arange(-MAX_LAG, MAX_LAG + 1)
    weight = torch.zeros(1, 1, dtype=torch.float64)
    changes = []
    for lag in lags.tolist():
        pre, post = _pair(lag)
        out = stdp_window(
            pre, post, torch.zeros(1, 1, dtype=torch.float64), None, tau_pre=TAU_PRE, tau_post=TAU_POST,
            dt=DT, exact=exact, pairing=pairing,
        )  # fmt: skip
        dw = stdp_delta_weight(out.potentiation, out.depression, weight, eta_post=ETA_POST, eta_pre=ETA_PRE)
        changes.append(dw.item())
    return lags.to(torch.float64) * DT, torch.tensor(changes, dtype=torch.float64)


def _all_pairs_window(kernel: Kernel | Sequence[Kernel]) -> torch.Tensor:
    changes = []
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        pre, post = _pair(lag)
        out = all_pairs_window(pre, post, kernel, dt=DT, dtype=torch.float64)
        changes.append((out.potentiation - out.depression).item())
    return torch.tensor(changes, dtype=torch.float64)


def _soft_bound_window(weight_value: float) -> torch.Tensor:
    lags = range(-MAX_LAG, MAX_LAG + 1)
    weight = torch.full((1, 1), weight_value, dtype=torch.float64)
    changes = []
    for lag in lags:
        pre, post = _pair(lag)
        out = stdp_window(
            pre, post, torch.zeros(1, 1, dtype=torch.float64), None, tau_pre=TAU_PRE, tau_post=TAU_POST, dt=DT
        )
        dw = stdp_delta_weight(
            out.potentiation, out.depression, weight, eta_post=ETA_POST, eta_pre=ETA_PRE,
            f_post=lambda w: (1.0 - w), f_pre=lambda w: w,
        )  # fmt: skip
        changes.append(dw.item())
    return torch.tensor(changes, dtype=torch.float64)


def main(out_dir: str | Path = "zoo_docs/figures") -> list[Path]:
    """Draw ``stdp_window.png`` and ``kernels.png``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    lags, additive = pair_window()
    euler = pair_window(exact=False)[1]
    kernel = [
        partial(exp_post, eta_post=ETA_POST, tau_post=TAU_PRE),
        partial(exp_pre, eta_pre=-ETA_PRE, tau_pre=TAU_POST),
    ]
    from_kernels = _all_pairs_window(kernel)
    hat = _all_pairs_window(partial(mexican_hat, amplitude=0.8, sigma=15.0))

    figure, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    axes[0].plot(lags, additive, "o", markersize=3, label="stdp_window (traces, exact decay)")
    axes[0].plot(lags, euler, "-", linewidth=1, label="stdp_window (Euler decay)")
    axes[0].plot(lags, from_kernels, "x", markersize=4, label="all_pairs_window (exp_post + exp_pre)")
    axes[0].plot(lags, hat, "-", linewidth=1, label="all_pairs_window (mexican_hat, sigma = 15 ms)")
    axes[0].set_title(
        f"pair STDP window: eta_post = {ETA_POST}, eta_pre = {ETA_PRE}, "
        f"tau_pre = {TAU_PRE} ms, tau_post = {TAU_POST} ms",
        fontsize=9,
    )
    for weight_value in (0.2, 0.5, 0.8):
        axes[1].plot(lags, _soft_bound_window(weight_value), label=f"w = {weight_value}")
    axes[1].set_title("multiplicative (soft-bound) weight dependence, w in [0, 1]", fontsize=9)
    for axis in axes:
        axis.axhline(0.0, color="0.7", linewidth=0.8)
        axis.axvline(0.0, color="0.7", linewidth=0.8)
        axis.set_xlabel("t_post - t_pre (ms)")
        axis.set_ylabel("weight change of one pair")
        axis.legend(fontsize=8)
    window_path = out / "stdp_window.png"
    save_figure(figure, window_path)

    delta = torch.linspace(-60.0, 60.0, 1201, dtype=torch.float64)
    kernels = [
        ("exp_post (eta_post = 1, tau_post = 20)", exp_post(delta)),
        ("exp_pre (eta_pre = -1, tau_pre = 20)", exp_pre(delta)),
        ("mexican_hat (A = 1, sigma = 10)", mexican_hat(delta)),
        ("rectangular (A = 1, [0, 20))", rectangular(delta)),
        ("gaussian (A = 1, center = 0, sigma = 10)", gaussian(delta)),
        ("symmetric_exp (A = 1, tau = 20)", symmetric_exp(delta)),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(12, 6), constrained_layout=True, sharex=True)
    for axis, (label, values) in zip(axes.flat, kernels, strict=False):
        axis.plot(delta, values)
        axis.axhline(0.0, color="0.7", linewidth=0.8)
        axis.axvline(0.0, color="0.7", linewidth=0.8)
        axis.set_title(label, fontsize=9)
    for axis in axes[1]:
        axis.set_xlabel("delta = t_post - t_pre (ms)")
    kernels_path = out / "kernels.png"
    save_figure(figure, kernels_path)
    return [window_path, kernels_path]


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "zoo_docs/figures"))
