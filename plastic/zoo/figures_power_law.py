"""Figure of zoo_docs/power_law_stdp.md: the power-law weight dependence of
Morrison, Aertsen & Diesmann (2007) keeps weights unimodal without bounds.

(a) The drift ``w0^(1-mu) w^mu P - alpha w N`` of one synapse under constant
potentiation ``P`` and depression ``N``: it crosses zero once, at the stable
``w* = w0 (P / (alpha N))^(1 / (1 - mu))``; the markers are where the
updater, applied 1,500 times, takes the weight from two starts.
(b) The Song, Miller & Abbott (2000) network of ``plastic.zoo.competitive``
with the power law instead of additive STDP with hard bounds: the uniform
initial weights gather in one narrow peak (additive STDP splits them to the
two bounds, see competitive.md).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from plastic.functional.bounding import Bounding
from plastic.neural.updater import Updater
from plastic.zoo.competitive import W_MAX, CompetitiveConfig, run_competitive
from plastic.zoo.plotting import pyplot, save_figure

MU = 0.4  # Morrison et al. (2007), fitted to Bi & Poo (1998)
W_REFERENCE = 1.0
ALPHA = 1.0


def settle(start: float, potentiation: float, depression: float, applications: int = 1500) -> float:
    """Where the updater takes one weight from ``start`` under constant ``potentiation``/``depression``."""
    layer = nn.Linear(1, 1, bias=False).to(torch.float64)
    with torch.no_grad():
        layer.weight.fill_(start)
    updater = Updater(layer, bounding=Bounding("power_law", w_reference=W_REFERENCE, mu=MU, alpha=ALPHA))
    for _ in range(applications):
        updater.accumulate(
            "weight",
            torch.full((1, 1), potentiation, dtype=torch.float64),
            torch.full((1, 1), depression, dtype=torch.float64),
        )
        updater.apply()
    return float(layer.weight.detach())


def main(out_dir: str | Path = "zoo_docs/figures", seconds: int = 200) -> Path:
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    weights = torch.linspace(0.0, 2.5, 251, dtype=torch.float64)
    bounding = Bounding("power_law", w_reference=W_REFERENCE, mu=MU, alpha=ALPHA)
    depression = 0.05
    for ratio, colour in ((0.5, "C0"), (1.0, "C1"), (1.5, "C3")):
        potentiation = ratio * depression
        drift = bounding.upper_factor(weights) * potentiation - bounding.lower_factor(weights) * depression
        fixed_point = W_REFERENCE * (ratio / ALPHA) ** (1.0 / (1.0 - MU))
        left.plot(weights.numpy(), drift.numpy(), color=colour, label=f"P/N = {ratio:g}: w* = {fixed_point:.2f}")
        for start in (0.05, 2.4):
            reached = settle(start, potentiation, depression)
            left.plot([reached], [0.0], "o", color=colour, markersize=4)
    left.axhline(0.0, color="0.5", lw=0.5)
    left.set_xlabel("weight w (units of w0)")
    left.set_ylabel("dw per batch")
    left.set_title(f"drift, mu = {MU}, alpha = {ALPHA} (dots: the updater)")
    left.legend(fontsize=7)

    config = CompetitiveConfig(seconds=seconds, rate=10.0)
    result = run_competitive(config, progress=False, bounding=bounding)
    top = float(result["weights"].max()) * 1.05
    bins = torch.linspace(0, max(top, W_MAX), 51).tolist()
    right.hist(result["initial"].numpy(), bins=bins, histtype="step", color="0.6", label="initial")
    for row, colour in ((0, "C0"), (1, "C3")):
        rate = config.rate * (row + 1)
        mean, spread = float(result["weights"][row].mean()), float(result["weights"][row].std())
        right.hist(result["weights"][row].numpy(), bins=bins, alpha=0.6, color=colour,
                   label=f"{rate:g} Hz inputs: {mean:.3f} +- {spread:.3f}")  # fmt: skip
    right.set_xlabel("weight (units of w0 = g_max)")
    right.set_ylabel("synapses")
    right.set_title(f"Song-Miller-Abbott network, power law, {seconds} s")
    right.legend(fontsize=7)
    figure.tight_layout()
    out = Path(out_dir)
    path = out / "power_law_stdp.png"
    save_figure(figure, path, dpi=120)
    rates = result["final_rates"]
    print(f"power law: weights {mean:.3f} +- {spread:.3f} (2x rate); output {rates[0]:.1f} -> {rates[1]:.1f} Hz")
    return path


if __name__ == "__main__":
    main()
