"""Figure of zoo_docs/short_term.md: depressing and facilitating Tsodyks-Markram
synapses driven by the same regular train (8 spikes at 20 Hz, then one
recovery spike 500 ms after the last), postsynaptic current ``tau = 3`` ms."""

from __future__ import annotations

from pathlib import Path

import torch

from plastic.neural.short_term import TsodyksMarkramCurrent
from plastic.zoo.plotting import pyplot, save_figure

DT = 0.1  # ms
SYNAPSES = {
    # name: (U, tau_recovery, tau_facilitation), ms
    "depressing (U = 0.5, tau_rec = 800 ms)": (0.5, 800.0, None),
    "facilitating (U = 0.03, tau_rec = 130 ms, tau_facil = 530 ms)": (0.03, 130.0, 530.0),
}


def regular_train(rate: float = 20.0, count: int = 8, recovery_after: float = 500.0) -> tuple[torch.Tensor, list[int]]:
    """Spikes ``[T, 1, 1]`` (dt = 0.1 ms) and their steps."""
    period = round(1000.0 / rate / DT)
    spike_steps = [10 + k * period for k in range(count)]
    spike_steps.append(spike_steps[-1] + round(recovery_after / DT))
    spikes = torch.zeros(spike_steps[-1] + round(100.0 / DT), 1, 1, dtype=torch.bool)
    spikes[spike_steps] = True
    return spikes, spike_steps


def responses() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per synapse: the current trace and the efficacy ``r`` of each spike of :func:`regular_train`."""
    spikes, spike_steps = regular_train()
    result = {}
    for name, (increment, tau_recovery, tau_facilitation) in SYNAPSES.items():
        synapse = TsodyksMarkramCurrent(
            1, increment, tau_recovery, tau_facilitation, tau=3.0, dt=DT, step_mode="window", dtype=torch.float64
        )
        current = synapse(spikes).flatten()
        efficacy = TsodyksMarkramCurrent(1, increment, tau_recovery, tau_facilitation, dt=DT, step_mode="window",
                                         dtype=torch.float64)(spikes).flatten()[spike_steps]  # fmt: skip
        result[name] = (current, efficacy)
    return result


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    plt = pyplot()

    figure, axes = plt.subplots(2, 2, figsize=(11, 5.4), gridspec_kw={"width_ratios": [3, 1]})
    for row, (name, (current, efficacy)) in enumerate(responses().items()):
        time = torch.arange(current.shape[0]) * DT
        axes[row, 0].plot(time.numpy(), (current / current.max()).numpy(), color=f"C{row}", lw=0.8)
        axes[row, 0].set_title(name, fontsize=9)
        axes[row, 0].set_ylabel("current / max")
        relative = efficacy / efficacy[0]
        axes[row, 1].bar(range(1, len(relative) + 1), relative.numpy(), color=f"C{row}")
        axes[row, 1].set_ylabel("r_n / r_1")
        axes[row, 1].set_xticks(range(1, len(relative) + 1), [*map(str, range(1, len(relative))), "rec"])
    axes[1, 0].set_xlabel("time (ms)")
    axes[1, 1].set_xlabel("spike")
    figure.tight_layout()
    return save_figure(figure, Path(out_dir) / "short_term.png", dpi=120)


if __name__ == "__main__":
    main()
