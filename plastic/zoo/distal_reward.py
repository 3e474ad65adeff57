"""Distal reward (Izhikevich 2007): one rewarded synapse among many, the reward
arriving up to a second after the pairing that earned it, learned with the
eligibility-trace rule (MSTDP-ET, the dopamine-modulated STDP of the paper).

Network. ``outputs`` LIF neurons (units: mV above rest, ``tau_m = 20`` ms,
threshold 16, reset 10: rest -70, threshold -54, reset -60 mV) receive
``inputs`` plastic synapses from Poisson neurons firing at ``rate`` Hz, and
fixed synapses from ``noise_inputs`` Poisson noise trains of its own (private,
so that the outputs fire independently of each other) that keep each output
firing at a few Hz whatever the plastic weights. Plastic weights start at
``initial`` (in units of ``w_max``) and are clamped to ``[0, w_max]``.

Reward. The synapse from input 0 onto output 0 is the rewarded one: every
time output 0 fires within ``pairing_window`` ms after input 0 (a pre-post
pairing of that synapse), a reward is scheduled after a random delay drawn
uniformly in ``[delay_min, delay_max]`` ms. A reward adds ``dopamine_pulse``
to the dopamine concentration ``d`` (``tau_dopamine = 200`` ms, on top of a
small tonic level), and ``d`` at each step is the reward of
:class:`~plastic.learn.reward.MSTDPET`. Its eligibility trace
(``tau_eligibility = 1000`` ms, the paper's ``tau_c``) bridges the delay:
only the rewarded synapse's eligibility is reliably positive when dopamine
arrives, so it alone grows; the others see rewards uncorrelated with their
pairings and, with depression slightly stronger than potentiation
(``a_minus / a_plus = 1.5``, the paper's), drift down.

Reference: E. M. Izhikevich (2007), "Solving the distal reward problem through
linkage of STDP and dopamine signaling", Cereb. Cortex 17:2443-2452 (its
Fig. 1: the rewarded synapse reaches the maximum, 4 mV, within about an hour
of simulated time; the others stay near 0).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import attrs
import torch

from plastic.functional.attrs_validators import positive
from plastic.learn.reward import MSTDPET
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.zoo.plotting import pyplot, save_figure

__all__ = ["DistalRewardConfig", "run_and_save", "run_distal_reward"]


@attrs.frozen
class DistalRewardConfig:
    """Settings (times in ms, dt = 1 ms; weights in units of ``w_max``)."""

    inputs: int = attrs.field(default=100, validator=positive)
    outputs: int = attrs.field(default=10, validator=positive)
    noise_inputs: int = attrs.field(default=100, validator=positive)  # per output
    rate: float = attrs.field(default=5.0, validator=positive)  # Hz, plastic inputs
    noise_rate: float = attrs.field(default=20.0, validator=positive)  # Hz
    noise_weight: float = attrs.field(default=1.2, validator=positive)  # mV per spike
    amplitude: float = attrs.field(default=1.0, validator=positive)  # mV per spike at w = w_max
    initial: float = attrs.field(default=0.25, validator=positive)
    w_max: float = attrs.field(default=1.0, validator=positive)
    seconds: int = attrs.field(default=900, validator=positive)
    pairing_window: int = attrs.field(default=10, validator=positive)
    delay_min: int = attrs.field(default=100, validator=positive)
    delay_max: int = attrs.field(default=1000, validator=positive)
    tau_dopamine: float = attrs.field(default=200.0, validator=positive)
    dopamine_pulse: float = attrs.field(default=0.5, validator=positive)
    dopamine_tonic: float = attrs.field(default=0.01, validator=positive)
    tau_eligibility: float = attrs.field(default=1000.0, validator=positive)
    learning_rate: float = attrs.field(default=1.0, validator=positive)
    a_plus: float = attrs.field(default=1.0, validator=positive)
    a_minus: float = attrs.field(default=1.5, validator=positive)
    window: int = attrs.field(default=100, validator=positive)  # steps per trainer call (< delay_min)
    seed: int = 0
    device: str = "cpu"

    def __attrs_post_init__(self) -> None:
        if not self.window <= self.delay_min <= self.delay_max:
            raise ValueError(
                f"delay_min: expected window <= delay_min <= delay_max (a reward is known before its window "
                f"runs), got {self.window}, {self.delay_min}, {self.delay_max}"
            )


def _build(config: DistalRewardConfig) -> tuple[Cell, MSTDPET]:
    device = torch.device(config.device)
    total = config.inputs + config.noise_inputs * config.outputs
    connection = LinearDense(
        total, config.outputs, bias=True, synapse="exponential", synapse_kwargs={"tau": 5.0, "amplitude": 1.0},
        step_mode="window", weight_init=(0.0, 0.0), device=device,
    )  # fmt: skip
    with torch.no_grad():
        connection.weight[:, : config.inputs] = config.initial * config.w_max * config.amplitude
        for output in range(config.outputs):
            first = config.inputs + output * config.noise_inputs
            connection.weight[output, first : first + config.noise_inputs] = config.noise_weight
        bias = connection.bias
        assert bias is not None  # built with bias=True
        bias.fill_(-10.0)  # the leak pulls towards the reset (10 mV): rest back at 0
    neuron = LIF(config.outputs, tau=20.0, v_threshold=16.0, v_reset=10.0, step_mode="window", device=device)
    cell = Cell(connection, neuron)
    plastic = torch.zeros(config.outputs, total, dtype=torch.bool, device=device)
    plastic[:, : config.inputs] = True
    cell.make_updater(
        params=["weight"], mask={"weight": plastic}, clamp=(0.0, config.w_max * config.amplitude)
    )  # fmt: skip
    trainer = MSTDPET(
        tau_plus=20.0, tau_minus=20.0, a_plus=config.a_plus, a_minus=config.a_minus,
        learning_rate=config.learning_rate, tau_eligibility=config.tau_eligibility, window=config.window,
    )  # fmt: skip
    trainer.register_cell("network", cell)
    return cell, trainer


def _plastic_weights(cell: Cell, config: DistalRewardConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The plastic weights in units of ``w_max`` ``[outputs, inputs]`` (on the CPU), and the
    others: every plastic weight but the rewarded one (input 0 -> output 0), flattened."""
    weight = cell.connection.weight[:, : config.inputs].detach().cpu() / (config.w_max * config.amplitude)
    others = torch.ones_like(weight, dtype=torch.bool)
    others[0, 0] = False
    return weight, weight[others]


def run_distal_reward(config: DistalRewardConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the experiment; returns the weight history (units of ``w_max``) and the reward count."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    cell, trainer = _build(config)
    device = torch.device(config.device)
    noise = config.noise_inputs * config.outputs
    probability = torch.cat([
        torch.full((config.inputs,), config.rate / 1000.0), torch.full((noise,), config.noise_rate / 1000.0)
    ]).to(device)  # fmt: skip
    steps_total = config.seconds * 1000
    windows = steps_total // config.window
    decay = math.exp(-1.0 / config.tau_dopamine)
    dopamine = 0.0
    due: list[int] = []  # steps at which rewards arrive
    last_pre = -(10**9)  # last spike step of the rewarded synapse's input
    rewards = 0
    history_steps, rewarded, others, rates = [], [], [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=windows, desc="distal reward", unit="window")
    with torch.no_grad():
        for index in range(windows):
            offset = index * config.window
            uniform = torch.rand(config.window, 1, probability.shape[0], generator=generator).to(device)
            pre = uniform < probability
            post = cell(pre)
            # dopamine over this window's steps (rewards due were scheduled at least delay_min earlier)
            arriving = torch.zeros(config.window)
            for step in due:
                if offset <= step < offset + config.window:
                    arriving[step - offset] += config.dopamine_pulse
            due = [step for step in due if step >= offset + config.window]
            level = torch.empty(config.window)
            for t in range(config.window):
                dopamine = dopamine * decay + float(arriving[t])
                level[t] = dopamine + config.dopamine_tonic
            trainer(level.to(device=device, dtype=cell.connection.weight.dtype))
            trainer.update()
            # pairings of the rewarded synapse (input 0 -> output 0) schedule rewards
            pre_steps = torch.nonzero(pre[:, 0, 0]).flatten().tolist()
            post_steps = torch.nonzero(post[:, 0, 0]).flatten().tolist()
            events = sorted([(s, 0) for s in pre_steps] + [(s, 1) for s in post_steps])
            for step, kind in events:
                absolute = offset + step
                if kind == 0:
                    last_pre = absolute
                elif 0 < absolute - last_pre <= config.pairing_window:
                    delay = int(torch.randint(config.delay_min, config.delay_max + 1, (1,), generator=generator))
                    due.append(absolute + delay)
                    rewards += 1
                    last_pre = -(10**9)  # one reward per pairing
            if index % max(1, 1000 // config.window) == 0:
                weight, other_weights = _plastic_weights(cell, config)
                history_steps.append(offset / 1000.0)
                rewarded.append(float(weight[0, 0]))
                others.append(float(other_weights.mean()))
                rates.append(float(post.float().mean()) * 1000.0)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    weight, other_weights = _plastic_weights(cell, config)
    return {
        "time_s": history_steps,
        "rewarded": rewarded,
        "others_mean": others,
        "output_rate_hz": rates,
        "final_rewarded": float(weight[0, 0]),
        "final_others_mean": float(other_weights.mean()),
        "final_others_max": float(other_weights.max()),
        "final_weights": weight,
        "rewards": rewards,
        "seconds": time.perf_counter() - start,
    }


def draw_distal_reward(result: dict[str, Any], output: Path) -> list[Path]:
    """Rewarded synapse vs the mean of the others over time, and the final weights: ``distal_reward.png``."""
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(result["time_s"], result["rewarded"], color="C3", label="rewarded synapse")
    left.plot(result["time_s"], result["others_mean"], color="C0", label="mean of the others")
    left.set_xlabel("time (s)")
    left.set_ylabel("weight / w_max")
    left.set_ylim(0, 1.05)
    left.set_title(f"{result['rewards']} rewards, each 0.1-1 s after its pairing")
    left.legend(fontsize=7)
    weights = result["final_weights"].flatten()
    right.hist(weights[1:].numpy(), bins=40, range=(0, 1), color="C0", label="other synapses")
    right.axvline(float(weights[0]), color="C3", label="rewarded synapse")
    right.set_xlabel("final weight / w_max")
    right.set_ylabel("synapses")
    right.legend(fontsize=7)
    figure.tight_layout()
    path = output / "distal_reward.png"
    save_figure(figure, path, dpi=120)
    return [path]


def run_and_save(config: DistalRewardConfig, output: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """:func:`run_distal_reward`, its figure and ``run.json`` in ``output``."""
    output = Path(output)
    result = run_distal_reward(config, progress=progress)
    figures = draw_distal_reward(result, output)
    summary = {
        "config": attrs.asdict(config),
        "final_rewarded": result["final_rewarded"],
        "final_others_mean": result["final_others_mean"],
        "final_others_max": result["final_others_max"],
        "rewards": result["rewards"],
        "mean_output_rate_hz": sum(result["output_rate_hz"]) / max(1, len(result["output_rate_hz"])),
        "seconds": result["seconds"],
        "figures": [str(path) for path in figures],
    }
    (output / "run.json").write_text(json.dumps(summary, indent=2))
    return summary
