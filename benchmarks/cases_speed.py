"""Rows of the speed cases of issue 15: S1 (a large sparse layer), S2 (the per-step path), scaling.

* **S1**: ``LinearDense(70000, 700)``, B = 1, T = 100, bool input at
  ``p_pre`` (0.02 and 0.005), post trains at ``p_post`` = 0.02, one window.
  The forward row is a real window-mode cell (``LinearDense`` + ``LIF``); the
  trainer row times ``trainer()`` + ``trainer.update()`` only, after an
  untimed forward of a cell whose neuron replays the post trains (``setup``):
  the issue's "trainer() + update()". Bounds: the two dense products of the
  window ``[700 x 100] @ [100 x 70000]`` and, for the forward, the dense
  forward GEMM ``[100 x 70000] @ [70000 x 700]``.
* **S2**: a 784 -> 400 ``LinearDense`` + ``LIF`` cell stepping in single-step
  mode (T = 100 steps of bool Poisson input at p = 0.05) with an ``STDP``
  trainer, ``trainer()`` + ``update()`` after the steps; the per-step cost is
  the call's time / T (``us/step`` in the note). A row without the trainer
  shows what the monitors add. With numba installed (``plastic[fast]``) the
  input-major rows take the fused single step
  (:mod:`plastic.neural.fused_step`); a last row switches it off.
* **Scaling**: the S1 trainer row against ``N_in`` (1k, 10k, 70k at T = 100,
  p = 0.02), ``T`` (100, 1,000, 10,000 at N_in = 10k) and the input rate
  (0.5 %, 2 %, 10 % at N_in = 70k): time and peak memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from benchmarks.cases_ours import Data, _dense_cell
from benchmarks.common import DenseCase, Prepared
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.fused_step import fused_step_available, set_fused_step
from plastic.neural.neurons import LIF


def s1_case(p_pre: float, *, n_in: int = 70000, steps: int = 100, quick: bool = False, name: str = "S1") -> DenseCase:
    """The S1 layer (``quick``: 700 -> 70, T = 10)."""
    if quick:
        return DenseCase(name=f"{name} p={p_pre}", steps=10, batch=1, n_in=700, n_out=70, p_pre=p_pre)
    return DenseCase(name=f"{name} p={p_pre}", steps=steps, batch=1, n_in=n_in, n_out=700, p_pre=p_pre)


def forward_cell(case: DenseCase, data: Data, *, weight_layout: str = "output_major") -> Prepared:
    """A window of ``data["pre"]`` (bool) through a real ``LinearDense`` + ``LIF`` cell (no trainer)."""
    device = data["pre"].device
    connection = LinearDense(case.n_in, case.n_out, step_mode="window", device=device, weight_layout=weight_layout)
    cell = Cell(connection, LIF(case.n_out, step_mode="window", device=device))
    pre = data["pre"].bool()

    def run() -> None:
        cell.reset()
        cell(pre)

    note = "Cell(LinearDense, LIF) window forward of bool spikes (torch's weight init)"
    if weight_layout == "input_major":
        note += "; weight_layout='input_major': the spikes gather their inputs' rows (gather_linear)"
    return Prepared(run, note=note)


def forward_cell_input_major(case: DenseCase, data: Data) -> Prepared:
    """:func:`forward_cell` with an input-major weight (the event-driven gather forward)."""
    return forward_cell(case, data, weight_layout="input_major")


def trainer_update(case: DenseCase, data: Data, *, weight_layout: str = "output_major") -> Prepared:
    """``trainer()`` + ``trainer.update()`` of ``STDP`` (``method="auto"``) on the window the setup recorded."""
    cell = _dense_cell(case, data, weight_layout=weight_layout)
    trainer = STDP(tau_pre=case.tau, tau_post=case.tau, batch_reduction="sum", window=case.steps)
    trainer.register_cell("cell", cell)
    weight = cell.connection.weight
    pre, post = data["pre"].bool(), data["post"].bool()

    def setup() -> None:
        with torch.no_grad():
            weight.zero_()  # the applied change is then the weight itself
        trainer.clear()
        cell.reset()
        cell.neuron.script(post)
        cell(pre)

    def run() -> Tensor:
        trainer()
        trainer.update()
        return weight.detach()

    note = "trainer() + update() only (the recording forward untimed); one product per window"
    if weight_layout == "input_major":
        note += (
            "; weight_layout='input_major' (with numba the change is written input by input into the "
            "accumulator by one compiled pass; without, computed and copied transposing into it)"
        )
    return Prepared(run, reference="exact", setup=setup, note=note)


def trainer_update_input_major(case: DenseCase, data: Data) -> Prepared:
    """:func:`trainer_update` on an input-major weight (the layout whose forward gathers rows)."""
    return trainer_update(case, data, weight_layout="input_major")


def stepping_case(batch: int, *, quick: bool = False) -> DenseCase:
    """S2 sizes as a :class:`DenseCase` (784 -> 400, T = 100, p = 0.05; ``quick``: 32 -> 16, T = 10)."""
    if quick:
        return DenseCase(name=f"S2 B={batch}", steps=10, batch=batch, n_in=32, n_out=16, p_pre=0.05)
    return DenseCase(name=f"S2 B={batch}", steps=100, batch=batch, n_in=784, n_out=400, p_pre=0.05)


def _stepping(
    case: DenseCase, data: Data, *, with_trainer: bool, weight_layout: str = "output_major", fused: bool = True
) -> Prepared:
    device = data["pre"].device
    connection = LinearDense(
        case.n_in,
        case.n_out,
        batch_size=case.batch,
        weight_init=(0.0, 0.04),
        device=device,
        weight_layout=weight_layout,
    )
    cell = Cell(connection, LIF(case.n_out, batch_size=case.batch, device=device))
    cell.make_updater(params=["weight"])
    trainer = None
    if with_trainer:
        trainer = STDP(tau_pre=case.tau, tau_post=case.tau, window=case.steps, eta_post=1e-4, eta_pre=1e-4)
        trainer.register_cell("cell", cell)
    pre = data["pre"].bool()
    steps = list(pre.unbind(0))

    def run() -> None:
        set_fused_step(fused)  # a process-wide switch: set by each row's call (rows are interleaved)
        try:
            for step in steps:
                cell(step)
            if trainer is not None:
                trainer()
                trainer.update()
        finally:
            set_fused_step(True)

    what = "monitors + STDP trainer() + update() per window" if with_trainer else "no trainer"
    if weight_layout == "input_major":
        what += "; weight_layout='input_major' (each step gathers the spiking inputs' rows)"
        if fused_step_available():
            what += "; fused step" if fused else "; fused step off (eager)"
    return Prepared(
        run, steps=case.steps,
        note=f"Cell(LinearDense, LIF) single-step mode, {case.steps} steps; {what}",
    )  # fmt: skip


def stepping_with_trainer(case: DenseCase, data: Data) -> Prepared:
    """S2: the steps, the trainer and the updater (the per-step cost of a recurrent run)."""
    return _stepping(case, data, with_trainer=True)


def stepping_without_trainer(case: DenseCase, data: Data) -> Prepared:
    """S2 without monitors or trainer: the cell's own step."""
    return _stepping(case, data, with_trainer=False)


def stepping_with_trainer_input_major(case: DenseCase, data: Data) -> Prepared:
    """S2 with an input-major weight: the steps gather the spiking inputs' rows."""
    return _stepping(case, data, with_trainer=True, weight_layout="input_major")


def stepping_without_trainer_input_major(case: DenseCase, data: Data) -> Prepared:
    """S2 without trainer, input-major weight."""
    return _stepping(case, data, with_trainer=False, weight_layout="input_major")


def stepping_with_trainer_eager(case: DenseCase, data: Data) -> Prepared:
    """S2 with an input-major weight, the fused step switched off: the eager step it replaces."""
    return _stepping(case, data, with_trainer=True, weight_layout="input_major", fused=False)


def scaling_cases(quick: bool) -> list[tuple[str, DenseCase]]:
    """``(axis, case)`` of the scaling table: N_in, T and the input rate."""
    if quick:
        return [("N_in", DenseCase(name="scale N_in=700", steps=10, batch=1, n_in=700, n_out=70, p_pre=0.02))]
    cases = []
    for n_in in (1000, 10000, 70000):
        cases.append(
            ("N_in", DenseCase(name=f"scale N_in={n_in}", steps=100, batch=1, n_in=n_in, n_out=700, p_pre=0.02))
        )
    for steps in (100, 1000, 10000):
        cases.append(("T", DenseCase(name=f"scale T={steps}", steps=steps, batch=1, n_in=10000, n_out=700, p_pre=0.02)))
    for rate in (0.005, 0.02, 0.1):
        cases.append(("rate", DenseCase(name=f"scale p={rate}", steps=100, batch=1, n_in=70000, n_out=700, p_pre=rate)))
    return cases


OURS_SPEED = {
    "S1 forward": [
        ("ours: cell forward (LinearDense + LIF, window)", forward_cell),
        ("ours: cell forward, input-major weight", forward_cell_input_major),
    ],
    "S1 update": [
        ("ours: STDP trainer() + update()", trainer_update),
        ("ours: STDP trainer() + update(), input-major weight", trainer_update_input_major),
    ],
    "S2": [
        ("ours: steps + STDP trainer + update", stepping_with_trainer),
        ("ours: steps only (no trainer)", stepping_without_trainer),
        ("ours: steps + STDP trainer + update, input-major weight", stepping_with_trainer_input_major),
        ("ours: steps only, input-major weight", stepping_without_trainer_input_major),
        ("ours: steps + STDP trainer + update, input-major weight, fused step off", stepping_with_trainer_eager),
    ],
    "SCALING": [("ours: STDP trainer() + update()", trainer_update)],
}
