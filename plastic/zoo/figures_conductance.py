"""Figure of ``zoo_docs/neurons.md`` (conductance-based LIF): what a conductance input does.

(a) The potential a :class:`~plastic.neural.conductance_lif.ConductanceLIF`
settles at under constant conductances (the module run for 300 steps with
the threshold out of reach, dots) against the closed form ``V_inf = (E_L +
g_e E_e + g_i E_i) / (1 + g_e + g_i)`` (lines): it saturates towards ``E_e``
instead of growing with the input as a current-driven LIF would, and an
inhibitory conductance at the rest potential only divides it (shunting).
(b) One neuron of Song, Miller & Abbott (2000) for half a second: 1,000
excitatory Poisson inputs at 10 Hz with weights uniform in ``[0, g_max]``
and 200 inhibitory ones, their conductances and the potential.

Regenerate: ``python -m plastic.zoo.figures_conductance zoo_docs/figures``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from plastic.functional.conductance_lif import ConductanceLIFParams
from plastic.neural.conductance_lif import ConductanceLIF
from plastic.neural.connections import LinearDense
from plastic.zoo.plotting import pyplot, save_figure


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    params = ConductanceLIFParams(v_threshold=10.0, v_reset=-60.0)  # no spike: the settled potential
    excitatory = torch.linspace(0.0, 4.0, 17, dtype=torch.float64)
    for g_i, colour in ((0.0, "C0"), (0.5, "C1"), (2.0, "C3")):
        neuron = ConductanceLIF(17, params, step_mode="window", dtype=torch.float64)
        drive = excitatory.expand(300, 1, 17)
        with torch.no_grad():
            neuron(drive, torch.full_like(drive, g_i))
        closed = (params.v_rest + excitatory * params.e_excitatory + g_i * params.e_inhibitory) / (
            1.0 + excitatory + g_i
        )
        left.plot(excitatory.numpy(), closed.numpy(), color=colour, lw=1.0, label=f"g_i = {g_i:g}")
        left.plot(excitatory.numpy(), neuron.voltage[0].numpy(), "o", color=colour, markersize=3)
    left.axhline(ConductanceLIFParams().v_threshold, color="0.6", ls="--", lw=0.8)
    left.text(4.0, ConductanceLIFParams().v_threshold + 1.0, "threshold of (b)", ha="right", fontsize=7, color="0.4")
    left.set_xlabel("excitatory conductance g_e (units of the leak)")
    left.set_ylabel("settled potential (mV)")
    left.set_title("(a) V_inf: closed form (lines), the module (dots)")
    left.legend(fontsize=7)

    generator = torch.Generator().manual_seed(0)
    steps, g_max = 500, 0.015
    excitation = LinearDense(
        1000, 1, synapse="exponential", synapse_kwargs={"tau": 5.0, "amplitude": g_max},
        step_mode="window", weight_init=lambda w: None,
    )  # fmt: skip
    inhibition = LinearDense(
        200, 1, synapse="exponential", synapse_kwargs={"tau": 5.0, "amplitude": 0.05},
        step_mode="window", weight_init=(1.0, 1.0),
    )  # fmt: skip
    neuron = ConductanceLIF(1, step_mode="window", store_voltage_sequence=True)
    with torch.no_grad():
        excitation.weight.copy_(torch.rand(1, 1000, generator=generator))
        g_e = excitation(torch.rand(steps, 1, 1000, generator=generator) < 0.01)
        g_i = inhibition(torch.rand(steps, 1, 200, generator=generator) < 0.01)
        spikes = neuron(g_e, g_i)
    voltage = neuron.voltage_sequence
    assert voltage is not None
    time = torch.arange(steps)
    trace = voltage[:, 0, 0].clone()
    trace[spikes[:, 0, 0].bool()] = 0.0  # draw each spike as a line up to 0 mV
    right.plot(time.numpy(), trace.numpy(), color="k", lw=0.7, label="V (spikes drawn to 0 mV)")
    right.set_xlabel("time (ms)")
    right.set_ylabel("V (mV)")
    right.set_ylim(-75, 2)
    conductance_axis = right.twinx()
    conductance_axis.plot(time.numpy(), g_e[:, 0, 0].numpy(), color="C2", lw=0.6, label="g_e")
    conductance_axis.plot(time.numpy(), g_i[:, 0, 0].numpy(), color="C3", lw=0.6, label="g_i")
    conductance_axis.set_ylabel("conductance (units of the leak)")
    conductance_axis.set_ylim(0, 2.5)
    right.set_title(f"(b) Song et al.'s neuron, 10 Hz inputs: {int(spikes.sum())} spikes in {steps} ms")
    lines = right.get_legend_handles_labels()
    more = conductance_axis.get_legend_handles_labels()
    right.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper right")
    figure.tight_layout()
    return save_figure(figure, Path(out_dir) / "conductance_lif.png", dpi=120)


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
