"""Competitive Hebbian learning through STDP (Song, Miller & Abbott 2000).

One conductance-based integrate-and-fire neuron
(:class:`~plastic.neural.conductance_lif.ConductanceLIF`) receives
``inputs`` excitatory Poisson trains through exponentially decaying
conductances (``tau`` = 5 ms, reversal 0 mV, peak ``w * g_max``) and
``inhibitory_inputs`` fixed inhibitory ones at 10 Hz (peak ``g_inhibitory``,
reversal -70 mV); additive pair STDP with all-to-all traces and hard bounds
``[0, g_max]``, depression slightly dominant (``A_- / A_+ = 1.05``,
``tau_+ = tau_- = 20`` ms). Two results of the paper: the weights split into
two groups, near 0 and near ``g_max``, and the output rate becomes nearly
independent of the input rate, because a higher input rate depresses more
synapses.

The run simulates two neurons side by side in one cell: neuron 0 sees
``inputs`` trains at ``rate`` Hz, neuron 1 another ``inputs`` trains at
``2 * rate`` Hz, both from the same initial weights (uniform in ``[0,
g_max]``); a block mask in the updater keeps each neuron's synapses on its
own inputs only (masked synapses never change). Each neuron has its own
inhibitory trains, summed by a fixed connection into the inhibitory
conductance the cell passes to the neuron. Time runs in windows of
``window`` steps (dt = 1 ms): the cell's window forward, then the trainer
(one product per window) and the updater (add, clamp to the bounds). The
weights change by at most a few ``A_+`` per window, so applying them once a
window instead of at every spike changes nothing visible.

Weights are in units of ``g_max`` (the bound is 1); conductances in units of
the leak conductance; the defaults are the paper's values, except the input
rates: 20 and 40 Hz (the paper's range is 10-40 Hz), where the weights come
close to their final split within a run of 2,000 simulated seconds (at 10 Hz
the drift is slower: see the zoo page).

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

from plastic.functional.attrs_validators import finite, positive
from plastic.functional.bounding import Bounding
from plastic.functional.conductance_lif import ConductanceLIFParams
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.conductance_lif import ConductanceLIF
from plastic.neural.connections import LinearDense
from plastic.zoo.plotting import pyplot, save_figure

__all__ = ["CompetitiveConfig", "near_bound_fraction", "run_competitive"]

#: the upper bound of the weights, in their unit (g_max)
W_MAX = 1.0


@attrs.frozen
class CompetitiveConfig:
    """Settings (times in ms, dt = 1 ms; potentials in mV; conductances in units of the leak conductance)."""

    inputs: int = attrs.field(default=1000, validator=positive)
    rate: float = attrs.field(default=20.0, validator=positive)  # Hz, neuron 0 (neuron 1: twice)
    seconds: int = attrs.field(default=2000, validator=positive)  # simulated seconds
    a_plus: float = attrs.field(default=0.005, validator=positive)  # A_+ in units of g_max
    depression_ratio: float = attrs.field(default=1.05, validator=positive)  # A_- / A_+
    tau_plus: float = attrs.field(default=20.0, validator=positive)
    tau_minus: float = attrs.field(default=20.0, validator=positive)
    g_max: float = attrs.field(default=0.015, validator=positive)  # peak conductance of a synapse at the bound
    tau_excitatory: float = attrs.field(default=5.0, validator=positive)
    inhibitory_inputs: int = attrs.field(default=200, validator=positive)
    inhibitory_rate: float = attrs.field(default=10.0, validator=positive)  # Hz
    g_inhibitory: float = attrs.field(default=0.05, validator=positive)  # peak conductance of an inhibitory synapse
    tau_inhibitory: float = attrs.field(default=5.0, validator=positive)
    tau_membrane: float = attrs.field(default=20.0, validator=positive)
    v_rest: float = attrs.field(default=-70.0, validator=finite)
    v_threshold: float = attrs.field(default=-54.0, validator=finite)
    v_reset: float = attrs.field(default=-60.0, validator=finite)
    e_excitatory: float = attrs.field(default=0.0, validator=finite)
    e_inhibitory: float = attrs.field(default=-70.0, validator=finite)
    window: int = attrs.field(default=1000, validator=positive)  # steps per trainer call
    seed: int = 0
    device: str = "cpu"


def near_bound_fraction(weights: Tensor, w_max: float, margin: float = 0.1) -> float:
    """Fraction of ``weights`` within ``margin * w_max`` of 0 or of ``w_max``."""
    near = (weights <= margin * w_max) | (weights >= (1.0 - margin) * w_max)
    return float(near.float().mean())


def _two_blocks(per_neuron: int, tau: float, amplitude: float, weight: Tensor, device: torch.device) -> LinearDense:
    """Inputs ``[0, per_neuron)`` onto neuron 0 and the next ``per_neuron`` onto neuron 1, each with
    ``weight`` ``[per_neuron]``, through exponential synapses (``tau`` ms, ``amplitude`` per spike)."""
    connection = LinearDense(
        2 * per_neuron, 2, synapse="exponential", synapse_kwargs={"tau": tau, "amplitude": amplitude},
        step_mode="window", weight_init=(0.0, 0.0), device=device,
    )  # fmt: skip
    with torch.no_grad():
        connection.weight[0, :per_neuron] = weight
        connection.weight[1, per_neuron:] = weight
    return connection


def _build(
    config: CompetitiveConfig, generator: torch.Generator, bounding: Bounding | None = None
) -> tuple[Cell, STDP, Tensor, LinearDense]:
    """The cell (excitatory inputs of both neurons -> 2 neurons), its trainer, the block mask of
    each neuron's own synapses and the fixed connection giving the inhibitory conductances."""
    device = torch.device(config.device)
    inputs = config.inputs
    initial = torch.rand(inputs, generator=generator).to(device) * W_MAX
    connection = _two_blocks(inputs, config.tau_excitatory, config.g_max, initial, device)
    mask = torch.zeros(2, 2 * inputs, dtype=torch.bool, device=device)
    mask[0, :inputs] = True
    mask[1, inputs:] = True
    neuron = ConductanceLIF(
        2,
        ConductanceLIFParams(
            tau=config.tau_membrane, v_rest=config.v_rest, v_threshold=config.v_threshold,
            v_reset=config.v_reset, e_excitatory=config.e_excitatory, e_inhibitory=config.e_inhibitory,
        ),
        step_mode="window", device=device,
    )  # fmt: skip
    cell = Cell(connection, neuron)
    if bounding is None:
        cell.make_updater(params=["weight"], mask={"weight": mask}, clamp=(0.0, W_MAX))
    else:
        # a weight dependence keeps the weights in range by itself: only w >= 0 is clamped
        cell.make_updater(params=["weight"], mask={"weight": mask}, clamp=(0.0, None), bounding=bounding)
    trainer = STDP(
        eta_post=config.a_plus * W_MAX, eta_pre=config.a_plus * config.depression_ratio * W_MAX,
        tau_pre=config.tau_plus, tau_post=config.tau_minus, window=config.window,
    )  # fmt: skip
    trainer.register_cell("neuron", cell)
    # each neuron's own inhibitory trains, weight 1 and peak conductance g_inhibitory per spike
    ones = torch.ones(config.inhibitory_inputs, device=device)
    inhibition = _two_blocks(config.inhibitory_inputs, config.tau_inhibitory, config.g_inhibitory, ones, device)
    return cell, trainer, mask, inhibition


def run_competitive(
    config: CompetitiveConfig, *, progress: bool = True, bounding: Bounding | None = None
) -> dict[str, Any]:
    """Run the experiment; returns the weights and rates (see the module notes).

    ``bounding`` replaces the additive rule with hard bounds ``[0, g_max]`` by
    a weight dependence (e.g. the power law of Morrison et al. 2007); the
    weights are then only clamped at 0.

    Keys: ``initial`` ``[inputs]``, ``weights`` ``[2, inputs]`` (units of
    ``g_max``; neuron 0 at ``rate``, neuron 1 at ``2 * rate``),
    ``output_rates`` ``[windows, 2]`` in Hz, ``near_bounds`` (per neuron,
    :func:`near_bound_fraction`) and ``near_bounds_history`` (``[windows, 2]``,
    after each window), ``final_rates`` (Hz, mean over the last 10 %
    of the run), ``rate_ratio`` (neuron 1 / neuron 0), ``seconds`` (wall time).
    """
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    cell, trainer, _, inhibition = _build(config, generator, bounding)
    inputs, device = config.inputs, torch.device(config.device)
    initial = cell.connection.weight[0, :inputs].detach().clone()
    # spike probability per 1 ms step of each presynaptic train
    probability = torch.cat([
        torch.full((inputs,), config.rate / 1000.0), torch.full((inputs,), 2 * config.rate / 1000.0)
    ]).to(device)  # fmt: skip
    inhibitory_probability = config.inhibitory_rate / 1000.0
    windows = max(1, round(config.seconds * 1000 / config.window))
    rates = torch.zeros(windows, 2)
    near_history = torch.zeros(windows, 2)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=windows, desc="competitive STDP", unit="window")
    with torch.no_grad():
        for index in range(windows):
            uniform = torch.rand(config.window, 1, 2 * inputs, generator=generator).to(device)
            inhibitory_uniform = torch.rand(config.window, 1, 2 * config.inhibitory_inputs, generator=generator).to(
                device
            )
            conductance = inhibition(inhibitory_uniform < inhibitory_probability)
            spikes = cell(uniform < probability, inhibitory=conductance)
            trainer()
            trainer.update()
            rates[index] = spikes.sum(dim=(0, 1)).cpu() / (config.window / 1000.0)
            learned = cell.connection.weight
            near_history[index, 0] = near_bound_fraction(learned[0, :inputs], W_MAX)
            near_history[index, 1] = near_bound_fraction(learned[1, inputs:], W_MAX)
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
        "near_bounds_history": near_history,
        "near_bounds": [near_bound_fraction(weights[0], W_MAX), near_bound_fraction(weights[1], W_MAX)],
        "final_rates": final_rates.tolist(),
        "rate_ratio": float(final_rates[1] / final_rates[0]) if final_rates[0] > 0 else float("inf"),
        "seconds": time.perf_counter() - start,
    }


def _moving_average(values: Tensor, width: int) -> Tensor:
    """Mean of each run of ``width`` consecutive rows of ``values`` ``[N, C]`` (``[N - width + 1, C]``)."""
    return values.unfold(0, width, 1).mean(-1)


def draw_competitive(result: dict[str, Any], config: CompetitiveConfig, output: Path) -> list[Path]:
    """Weight histograms, the fraction near a bound and the output rate against time: ``competitive.png``."""
    plt = pyplot()

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 3.8))
    bins = torch.linspace(0, W_MAX, 41).tolist()
    left.hist(result["initial"].numpy(), bins=bins, histtype="step", color="0.6", label="initial")
    for row, colour in ((0, "C0"), (1, "C3")):
        rate = config.rate * (row + 1)
        share = 100 * result["near_bounds"][row]
        left.hist(result["weights"][row].numpy(), bins=bins, alpha=0.6, color=colour,
                  label=f"{rate:g} Hz inputs ({share:.0f} % near a bound)")  # fmt: skip
    left.set_xlabel("weight / g_max")
    left.set_ylabel("synapses")
    left.set_title(f"weights after {config.seconds} s")
    left.legend(fontsize=7)
    seconds = (torch.arange(result["output_rates"].shape[0]) + 1) * config.window / 1000.0
    for row, colour in ((0, "C0"), (1, "C3")):
        middle.plot(seconds.numpy(), 100 * result["near_bounds_history"][:, row].numpy(), color=colour,
                    label=f"{config.rate * (row + 1):g} Hz inputs")  # fmt: skip
    middle.set_ylim(0, 100)
    middle.set_xlabel("time (s)")
    middle.set_ylabel("weights within 10 % of a bound (%)")
    middle.set_title("the split into two groups")
    middle.legend(fontsize=7)
    # rates over 20 s (the rate of one window is noisy); the first seconds' burst is off the scale
    width = max(1, min(round(20_000 / config.window), result["output_rates"].shape[0]))
    smooth = _moving_average(result["output_rates"], width)
    for row, colour in ((0, "C0"), (1, "C3")):
        right.plot(seconds[width - 1 :].numpy(), smooth[:, row].numpy(), color=colour, lw=0.8,
                   label=f"{config.rate * (row + 1):g} Hz inputs")  # fmt: skip
    right.set_ylim(0, max(30.0, 3.0 * max(result["final_rates"])))
    right.set_xlabel("time (s)")
    right.set_ylabel("output rate (Hz, 20 s mean)")
    right.set_title(f"output rate, ratio at the end: {result['rate_ratio']:.2f}")
    right.legend(fontsize=7)
    figure.tight_layout()
    path = output / "competitive.png"
    save_figure(figure, path, dpi=120)
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
