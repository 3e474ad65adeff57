"""Competitive Hebbian learning through STDP (Song, Miller & Abbott 2000).

One LIF neuron receives ``inputs`` excitatory Poisson trains through
exponentially decaying current synapses; additive pair STDP with all-to-all
traces and hard bounds ``[0, w_max]``, depression slightly dominant
(``A_- / A_+ = 1.05``, ``tau_+ = tau_- = 20`` ms). Two results of the paper:
the weights split into two groups, near 0 and near ``w_max`` (its Fig. 2),
and the output rate becomes nearly independent of the input rate (its
Fig. 3), because a higher input rate depresses more synapses.

The run simulates two neurons side by side in one cell: neuron 0 sees
``inputs`` trains at ``rate`` Hz, neuron 1 another ``inputs`` trains at
``2 * rate`` Hz, both from the same initial weights; a block mask in the
updater keeps each neuron's synapses on its own inputs only (masked synapses
never change). Time runs in windows of ``window`` steps (dt = 1 ms): the
cell's window forward, then the trainer (one product per window) and the
updater (add, clamp to the bounds). The weights change by at most a few
``A_+`` per window, so applying them once a window instead of at every
spike changes nothing visible.

Membrane (units: mV above rest): ``tau_m dV/dt = -V + I``, threshold 16 mV
(rest -70, threshold -54 mV in the paper), reset to 10 mV (-60 mV): the
leak of :class:`~plastic.neural.neurons.LIF` pulls towards its reset, so the
connection's bias ``-v_reset`` puts the rest back at 0. Current synapses,
as the paper's Fig. 2 and 3 allow (it uses conductances; it reports the same
behaviour for current-based synapses).

Reference: S. Song, K. D. Miller and L. F. Abbott (2000), "Competitive
Hebbian learning through spike-timing-dependent synaptic plasticity", Nat.
Neurosci. 3:919-926.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import positive
from plastic.functional.bounding import Bounding
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF

__all__ = ["CompetitiveConfig", "near_bound_fraction", "run_competitive"]


@attrs.frozen
class CompetitiveConfig:
    """Settings (times in ms, dt = 1 ms; potentials in mV above rest; weights in ``w_max`` units)."""

    inputs: int = attrs.field(default=1000, validator=positive)
    rate: float = attrs.field(default=10.0, validator=positive)  # Hz, neuron 0 (neuron 1: twice)
    seconds: int = attrs.field(default=4000, validator=positive)  # simulated seconds
    a_plus: float = attrs.field(default=0.007, validator=positive)  # A_+ in units of w_max
    depression_ratio: float = attrs.field(default=1.05, validator=positive)  # A_- / A_+
    tau_plus: float = attrs.field(default=20.0, validator=positive)
    tau_minus: float = attrs.field(default=20.0, validator=positive)
    tau_membrane: float = attrs.field(default=20.0, validator=positive)
    v_threshold: float = attrs.field(default=16.0, validator=positive)
    v_reset: float = attrs.field(default=10.0, validator=positive)
    tau_synapse: float = attrs.field(default=5.0, validator=positive)
    amplitude: float = attrs.field(default=0.6, validator=positive)  # current per spike at w = w_max
    w_max: float = attrs.field(default=1.0, validator=positive)
    window: int = attrs.field(default=1000, validator=positive)  # steps per trainer call
    seed: int = 0
    device: str = "cpu"


def near_bound_fraction(weights: Tensor, w_max: float, margin: float = 0.1) -> float:
    """Fraction of ``weights`` within ``margin * w_max`` of 0 or of ``w_max``."""
    near = (weights <= margin * w_max) | (weights >= (1.0 - margin) * w_max)
    return float(near.float().mean())


def _build(
    config: CompetitiveConfig, generator: torch.Generator, bounding: Bounding | None = None
) -> tuple[Cell, STDP, Tensor]:
    device = torch.device(config.device)
    inputs = config.inputs
    connection = LinearDense(
        2 * inputs, 2, bias=True, synapse="exponential",
        synapse_kwargs={"tau": config.tau_synapse, "amplitude": config.amplitude},
        step_mode="window", weight_init=(0.0, 0.0), device=device,
    )  # fmt: skip
    mask = torch.zeros(2, 2 * inputs, dtype=torch.bool, device=device)
    mask[0, :inputs] = True
    mask[1, inputs:] = True
    initial = torch.rand(inputs, generator=generator).to(device) * config.w_max
    with torch.no_grad():
        connection.weight[0, :inputs] = initial
        connection.weight[1, inputs:] = initial
        bias = connection.bias
        assert bias is not None  # built with bias=True
        bias.fill_(-config.v_reset)
    neuron = LIF(2, tau=config.tau_membrane, v_threshold=config.v_threshold, v_reset=config.v_reset,
                 step_mode="window", device=device)  # fmt: skip
    cell = Cell(connection, neuron)
    if bounding is None:
        cell.make_updater(params=["weight"], mask={"weight": mask}, clamp=(0.0, config.w_max))
    else:
        # a weight dependence keeps the weights in range by itself: only w >= 0 is clamped
        cell.make_updater(params=["weight"], mask={"weight": mask}, clamp=(0.0, None), bounding=bounding)
    trainer = STDP(
        eta_post=config.a_plus * config.w_max, eta_pre=config.a_plus * config.depression_ratio * config.w_max,
        tau_pre=config.tau_plus, tau_post=config.tau_minus, window=config.window,
    )  # fmt: skip
    trainer.register_cell("neuron", cell)
    return cell, trainer, mask


def run_competitive(
    config: CompetitiveConfig, *, progress: bool = True, bounding: Bounding | None = None
) -> dict[str, Any]:
    """Run the experiment; returns the weights and rates (see the module notes).

    ``bounding`` replaces the additive rule with hard bounds ``[0, w_max]`` by
    a weight dependence (e.g. the power law of Morrison et al. 2007); the
    weights are then only clamped at 0.

    Keys: ``initial`` ``[inputs]``, ``weights`` ``[2, inputs]`` (neuron 0 at
    ``rate``, neuron 1 at ``2 * rate``), ``output_rates`` ``[windows, 2]`` in Hz,
    ``near_bounds`` (per neuron, :func:`near_bound_fraction`),
    ``final_rates`` (Hz, mean over the last 10 % of the run), ``rate_ratio``
    (neuron 1 / neuron 0), ``seconds`` (wall time).
    """
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    cell, trainer, _ = _build(config, generator, bounding)
    inputs, device = config.inputs, torch.device(config.device)
    initial = cell.connection.weight[0, :inputs].detach().clone()
    # spike probability per 1 ms step of each presynaptic train
    probability = torch.cat([
        torch.full((inputs,), config.rate / 1000.0), torch.full((inputs,), 2 * config.rate / 1000.0)
    ]).to(device)  # fmt: skip
    windows = max(1, round(config.seconds * 1000 / config.window))
    rates = torch.zeros(windows, 2)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=windows, desc="competitive STDP", unit="window")
    with torch.no_grad():
        for index in range(windows):
            uniform = torch.rand(config.window, 1, 2 * inputs, generator=generator).to(device)
            spikes = cell(uniform < probability)
            trainer()
            trainer.update()
            rates[index] = spikes.sum(dim=(0, 1)).cpu() / (config.window / 1000.0)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    weight = cell.connection.weight.detach().cpu()
    weights = torch.stack([weight[0, :inputs], weight[1, inputs:]])
    tail = max(1, windows // 10)
    final_rates = rates[-tail:].mean(0)
    return {
        "initial": initial.cpu(),
        "weights": weights,
        "output_rates": rates,
        "near_bounds": [near_bound_fraction(weights[0], config.w_max), near_bound_fraction(weights[1], config.w_max)],
        "final_rates": final_rates.tolist(),
        "rate_ratio": float(final_rates[1] / final_rates[0]) if final_rates[0] > 0 else float("inf"),
        "seconds": time.perf_counter() - start,
    }


def draw_competitive(result: dict[str, Any], config: CompetitiveConfig, output: Path) -> list[Path]:
    """Weight histograms (both input rates) and output rate against time: ``competitive.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = torch.linspace(0, config.w_max, 41).tolist()
    left.hist(result["initial"].numpy(), bins=bins, histtype="step", color="0.6", label="initial")
    for row, colour in ((0, "C0"), (1, "C3")):
        rate = config.rate * (row + 1)
        share = 100 * result["near_bounds"][row]
        left.hist(result["weights"][row].numpy(), bins=bins, alpha=0.6, color=colour,
                  label=f"{rate:g} Hz inputs ({share:.0f} % near a bound)")  # fmt: skip
    left.set_xlabel("weight / w_max")
    left.set_ylabel("synapses")
    left.set_title(f"weights after {config.seconds} s")
    left.legend(fontsize=7)
    seconds = torch.arange(result["output_rates"].shape[0]) * config.window / 1000.0
    for row, colour in ((0, "C0"), (1, "C3")):
        right.plot(seconds.numpy(), result["output_rates"][:, row].numpy(), color=colour, lw=0.6,
                   label=f"{config.rate * (row + 1):g} Hz inputs")  # fmt: skip
    right.set_xlabel("time (s)")
    right.set_ylabel("output rate (Hz)")
    right.set_title(f"output rate ratio at the end: {result['rate_ratio']:.2f}")
    right.legend(fontsize=7)
    figure.tight_layout()
    output.mkdir(parents=True, exist_ok=True)
    path = output / "competitive.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return [path]


def run_and_save(config: CompetitiveConfig, output: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """:func:`run_competitive`, its figure and ``run.json`` (the measured numbers) in ``output``."""
    output = Path(output)
    result = run_competitive(config, progress=progress)
    figures = draw_competitive(result, config, output)
    summary = {
        "config": attrs.asdict(config),
        "near_bounds": result["near_bounds"],
        "final_rates_hz": result["final_rates"],
        "rate_ratio": result["rate_ratio"],
        "mean_weight": result["weights"].mean(1).tolist(),
        "seconds": result["seconds"],
        "figures": [str(path) for path in figures],
    }
    (output / "run.json").write_text(json.dumps(summary, indent=2))
    return summary
