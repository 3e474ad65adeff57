"""Figure of zoo_docs/clopath.md: the pairing-frequency dependence of voltage-based STDP
(Clopath et al. 2010, Fig. 2b; the protocol of Sjöström et al. 2001).

One AdEx neuron (:class:`~plastic.neural.adex.AdEx`, the paper's parameters)
per condition, each with one plastic synapse (:class:`~plastic.learn.clopath.ClopathSTDP`,
visual-cortex parameters), all conditions run at once as the ten neurons of
one cell (a dense connection whose weights off the diagonal are zero and
masked). A burst of five pairings at a repetition frequency of 0.1 to 50 Hz,
the postsynaptic spike 10 ms after (pre-post) or before (post-pre) the
presynaptic one, forced by a 1-step current pulse; as in the authors'
simulation code (ModelDB 144566), a post-pre burst ends with a sixth
postsynaptic spike, the presynaptic spike evokes no EPSP (the initial weight
0.5 is a number the change is measured against; its current of 0.5 pA moves
``u`` by 0.002 mV), and the change of one burst counts 15 times (10 times at
0.1 Hz): bursts 10 s apart are independent, every variable has relaxed in
between (the slowest time constant is 144 ms). ``dt = 1`` ms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from plastic.functional.clopath import ClopathParameters, low_pass
from plastic.learn.clopath import ClopathSTDP
from plastic.neural.adex import AdEx
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.zoo.plotting import pyplot, save_figure

FREQUENCIES = (0.1, 10.0, 20.0, 40.0, 50.0)  # Hz
LAG = 10.0  # ms between the spikes of a pairing
ORDERS = ("pre-post", "post-pre")

#: Sjöström, Turrigiano & Nelson (2001): weight change (%) after the pairings, mean and s.e.m.,
#: the data points of Clopath et al. (2010) Fig. 2b (as tabulated with Pfister & Gerstner 2006's fit)
SJOSTROM_2001 = {
    "pre-post": ((-4.0, 5.0), (14.0, 10.0), (29.0, 14.0), (53.0, 11.0), (56.0, 26.0)),
    "post-pre": ((-29.0, 8.0), (-41.0, 11.0), (-34.0, 10.0), (56.0, 32.0), (75.0, 19.0)),
}

#: the authors' model, their published discretisation re-run in plain Python
#: (``tests/test_clopath_protocol.py::authors_discretisation``): weight change (%)
AUTHORS_CODE = {
    "pre-post": (0.0, 2.9, 15.7, 46.3, 65.0),
    "post-pre": (-28.3, -40.4, -39.5, 17.8, 73.6),
}

PULSE = 1e5  # pA for one step: u jumps by PULSE * dt / C (356 mV): the neuron fires in that step


def bursts(frequency: float) -> int:
    """How many bursts of pairings the protocol counts (the authors' code: 10 at 0.1 Hz, else 15)."""
    return 10 if frequency <= 0.1 else 15


def pairing_trains(
    frequencies: tuple[float, ...] = FREQUENCIES,
    *,
    pairs: int = 5,
    lag: float = LAG,
    dt: float = 1.0,
    start: float = 20.0,
) -> tuple[Tensor, Tensor, list[tuple[str, float]]]:
    """Presynaptic spikes ``[T, 1, N]`` and postsynaptic current pulses ``[T, 1, N]`` (pA), one
    column per condition (``(order, frequency)``, pre-post first), for one burst of ``pairs`` pairings."""
    conditions = [(order, frequency) for order in ORDERS for frequency in frequencies]
    longest = start + pairs * 1000.0 / min(frequencies) + lag + 200.0
    steps = round(longest / dt)
    spikes = torch.zeros(steps, 1, len(conditions), dtype=torch.bool)
    current = torch.zeros(steps, 1, len(conditions), dtype=torch.float64)
    for column, (order, frequency) in enumerate(conditions):
        period = 1000.0 / frequency
        post_times = []
        for k in range(pairs):
            onset = start + k * period
            pre_time, post_time = (onset, onset + lag) if order == "pre-post" else (onset + lag, onset)
            spikes[round(pre_time / dt), 0, column] = True
            post_times.append(post_time)
        if order == "post-pre":  # the authors' trains: the burst closes with one more postsynaptic spike
            post_times.append(start + pairs * period)
        for time in post_times:
            current[round(time / dt), 0, column] = PULSE
    return spikes, current, conditions


def run_pairing_protocol(
    frequencies: tuple[float, ...] = FREQUENCIES,
    *,
    pairs: int = 5,
    lag: float = LAG,
    dt: float = 1.0,
    window: int = 5000,
    initial_weight: float = 0.5,
    **rule: Any,
) -> dict[str, Any]:
    """Run the protocol through a cell and the trainer; returns the weight change (%) per condition
    (``changes[(order, frequency)]``, one burst times :func:`bursts`), the conditions, the postsynaptic
    voltages ``[T, N]`` and the spikes of the run."""
    spikes, current, conditions = pairing_trains(frequencies, pairs=pairs, lag=lag, dt=dt)
    count = len(conditions)
    diagonal = torch.eye(count, dtype=torch.bool)
    connection = LinearDense(count, count, dt=dt, step_mode="window", dtype=torch.float64, weight_init=(0.0, 0.0))
    with torch.no_grad():
        connection.weight[diagonal] = initial_weight
    neuron = AdEx(count, dt=dt, step_mode="window", dtype=torch.float64, store_voltage_sequence=True)
    cell = Cell(connection, neuron)
    cell.make_updater(mask={"weight": diagonal})
    trainer = ClopathSTDP(window=window, **rule)
    trainer.register_cell("pairs", cell)
    voltages, fired = [], []
    with torch.no_grad():
        for begin in range(0, spikes.shape[0], window):
            stop = begin + window
            fired.append(cell(spikes[begin:stop].double(), current[begin:stop]))
            sequence = neuron.voltage_sequence
            assert sequence is not None  # the neuron keeps it (store_voltage_sequence=True)
            voltages.append(sequence[:, 0].clone())
            trainer()
    assert cell.updater is not None
    potentiation, depression = cell.updater.pending("weight")
    change = (potentiation - depression).diagonal()
    changes = {
        condition: 100.0 * bursts(condition[1]) * float(change[column]) / initial_weight
        for column, condition in enumerate(conditions)
    }
    return {
        "changes": changes,
        "conditions": conditions,
        "voltages": torch.cat(voltages),
        "post_spikes": torch.cat(fired)[:, 0],
        "pre_spikes": spikes[:, 0],
        "dt": dt,
    }


def main(out_dir: str | Path = "zoo_docs/figures", frequencies: tuple[float, ...] = FREQUENCIES) -> Path:
    """Draw the figure (``frequencies``: the repetition frequencies run, 20 Hz among them)."""
    plt = pyplot()

    result = run_pairing_protocol(frequencies)
    changes = result["changes"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    for index, order in enumerate(ORDERS):
        color = f"C{index}"
        ours = [100.0 + changes[(order, frequency)] for frequency in frequencies]
        left.plot(frequencies, ours, "-o", color=color, label=f"{order}, plastic")
        left.plot(FREQUENCIES, [100.0 + v for v in AUTHORS_CODE[order]], "x", color=color, ms=8,
                  label=f"{order}, authors' code re-run")  # fmt: skip
        mean = [100.0 + m for m, _ in SJOSTROM_2001[order]]
        sem = [s for _, s in SJOSTROM_2001[order]]
        left.errorbar(FREQUENCIES, mean, yerr=sem, fmt="s", mfc="white", color=color, capsize=3,
                      label=f"{order}, Sjöström et al. 2001")  # fmt: skip
    left.axhline(100.0, color="gray", lw=0.6)
    left.set_xlabel("pairing frequency (Hz)")
    left.set_ylabel("weight after the pairings (% of initial)")
    left.set_title("Pairing-frequency dependence (Clopath et al. 2010, Fig. 2b)", fontsize=9)
    left.legend(fontsize=7, loc="upper left")

    # the mechanism: post-pre pairings at 20 Hz, the voltage and the rule's filters of it
    column = result["conditions"].index(("post-pre", 20.0))
    dt = result["dt"]
    voltage = result["voltages"][:, column]
    rule = ClopathParameters()
    rest = torch.tensor(rule.v_rest, dtype=voltage.dtype)
    span = slice(round(10 / dt), round(130 / dt))
    time = torch.arange(voltage.shape[0])[span].double() * dt
    right.plot(time.numpy(), voltage[span].numpy(), color="k", lw=0.9, label="u (AdEx)")
    for index, (name, tau) in enumerate((("u_minus", rule.tau_minus), ("u_plus", rule.tau_plus))):
        filtered, _ = low_pass(voltage, rest, tau, dt=dt)
        right.plot(
            time.numpy(), filtered[span].numpy(), color=f"C{index + 2}", lw=1.2, label=f"{name} (tau {tau:g} ms)"
        )
    for step in result["pre_spikes"][:, column].nonzero().flatten().tolist():
        if span.start <= step < span.stop:
            right.axvline(step * dt, color="C1", lw=0.8, ls=":")
    right.axhline(rule.theta_minus, color="gray", lw=0.6, ls="--", label="theta_minus, theta_plus")
    right.axhline(rule.theta_plus, color="gray", lw=0.6, ls="--")
    right.set_xlabel("time (ms); dotted: presynaptic spikes")
    right.set_ylabel("mV")
    right.set_title("post-pre pairings at 20 Hz: u and its filters", fontsize=9)
    right.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    return save_figure(figure, Path(out_dir) / "clopath.png", dpi=120)


if __name__ == "__main__":
    main()
