"""Figure of zoo_docs/inhibitory_stdp.md: inhibitory STDP (Vogels et al. 2011)
drives a neuron's rate to the target ``rho_0``.

One LIF neuron per target rate (3, 5 and 10 Hz), each driven by the same 800
excitatory Poisson trains (10 Hz, fixed weights) and 200 inhibitory ones
(10 Hz) whose weights start at 0 and learn with :class:`InhibitorySTDP`. All
inputs reach the neuron through one dense connection with exponential current
synapses (``tau = 5`` ms); the inhibitory weights are negative
(``weight_sign=-1``), an updater mask keeps the excitatory ones fixed, and
the clamp keeps the inhibitory ones ``<= 0``. Membrane in mV above rest,
``tau_m = 20`` ms, threshold 16 mV, reset 10 mV (rest -70, threshold -54,
reset -60 mV). Without inhibition the neurons fire at about 70 Hz.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from plastic.learn.inhibitory import InhibitorySTDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.zoo.plotting import pyplot, save_figure

TARGET_RATES = (3.0, 5.0, 10.0)  # Hz


def _inhibited_neuron(excitatory: int, inhibitory: int, excitatory_weight: float) -> Cell:
    inputs = excitatory + inhibitory
    connection = LinearDense(
        inputs, 1, bias=True, synapse="exponential", synapse_kwargs={"tau": 5.0, "amplitude": 1.0},
        step_mode="window", weight_init=(0.0, 0.0),
    )  # fmt: skip
    with torch.no_grad():
        connection.weight[0, :excitatory] = excitatory_weight
        bias = connection.bias
        assert bias is not None  # built with bias=True
        bias.fill_(-10.0)  # the leak pulls towards the reset (10 mV): rest back at 0
    cell = Cell(connection, LIF(1, tau=20.0, v_threshold=16.0, v_reset=10.0, step_mode="window"))
    learned = torch.zeros(1, inputs, dtype=torch.bool)
    learned[0, excitatory:] = True
    cell.make_updater(params=["weight"], mask={"weight": learned}, clamp=(None, 0.0))
    return cell


def run_inhibitory_balance(
    seconds: int = 150,
    *,
    excitatory: int = 800,
    inhibitory: int = 200,
    input_rate: float = 10.0,
    excitatory_weight: float = 0.5,
    eta: float = 0.01,
    tau: float = 20.0,
    window: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Rates (Hz per window of ``window`` 1-ms steps) and mean inhibitory weights of one neuron per target."""
    generator = torch.Generator().manual_seed(seed)
    cells, trainers = [], []
    for target in TARGET_RATES:
        cell = _inhibited_neuron(excitatory, inhibitory, excitatory_weight)
        trainer = InhibitorySTDP(eta=eta, tau=tau, target_rate=target, weight_sign=-1, window=window)
        trainer.register_cell("neuron", cell)
        cells.append(cell)
        trainers.append(trainer)
    probability = input_rate / 1000.0
    windows = max(1, round(seconds * 1000 / window))
    rates = torch.zeros(windows, len(TARGET_RATES))
    weights = torch.zeros(windows, len(TARGET_RATES))
    with torch.no_grad():
        for index in range(windows):
            spikes = torch.rand(window, 1, excitatory + inhibitory, generator=generator) < probability
            for column, (cell, trainer) in enumerate(zip(cells, trainers, strict=True)):
                output: Tensor = cell(spikes)
                trainer()
                trainer.update()
                rates[index, column] = float(output.sum()) / (window / 1000.0)
                weights[index, column] = float(cell.connection.weight[0, excitatory:].mean())
    tail = max(1, windows // 5)
    return {
        "rates": rates,
        "weights": weights,
        "final_rates": rates[-tail:].mean(0).tolist(),
        "window_seconds": window / 1000.0,
        "eta": eta,
        "tau": tau,
    }


def main(out_dir: str | Path = "zoo_docs/figures", seconds: int = 150) -> Path:
    plt = pyplot()

    result = run_inhibitory_balance(seconds)
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.6))
    lags = torch.linspace(-100, 100, 401)
    alpha = 2 * 5.0 * result["tau"] / 1000.0
    left.plot(lags.numpy(), torch.exp(-lags.abs() / result["tau"]).numpy(), color="C0", label="pair term / eta")
    left.axhline(-alpha, color="C3", ls="--", label=f"per pre spike: -alpha = -{alpha:g} (rho_0 = 5 Hz)")
    left.set_xlabel("t_post - t_pre (ms)")
    left.set_ylabel("dw / eta")
    left.set_title("symmetric window")
    left.legend(fontsize=7)
    seconds_axis = (torch.arange(result["rates"].shape[0]) * result["window_seconds"]).numpy()
    for column, target in enumerate(TARGET_RATES):
        colour = f"C{column}"
        final = result["final_rates"][column]
        middle.plot(seconds_axis, result["rates"][:, column].numpy(), color=colour, lw=0.7,
                    label=f"rho_0 = {target:g} Hz: {final:.2f} Hz at the end")  # fmt: skip
        middle.axhline(target, color=colour, ls="--", lw=0.8)
        right.plot(seconds_axis, result["weights"][:, column].numpy(), color=colour, label=f"rho_0 = {target:g} Hz")
    middle.set_xlabel("time (s)")
    middle.set_ylabel("output rate (Hz)")
    middle.set_title("rates converge to the target")
    middle.legend(fontsize=7)
    right.set_xlabel("time (s)")
    right.set_ylabel("mean inhibitory weight")
    right.set_title("inhibition grows until the rate matches")
    right.legend(fontsize=7)
    figure.tight_layout()
    out = Path(out_dir)
    path = out / "inhibitory_stdp.png"
    save_figure(figure, path, dpi=120)
    finals = ", ".join(
        f"{target:g} -> {rate:.2f}" for target, rate in zip(TARGET_RATES, result["final_rates"], strict=True)
    )
    print(f"inhibitory STDP: target -> final rate (Hz, last 20 % of {seconds} s): {finals}")
    return path


if __name__ == "__main__":
    main()
