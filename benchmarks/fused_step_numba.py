"""Experiment (issue 15, S2): what one native kernel per step would cost, against plastic's eager step.

Not part of plastic and not run by ``benchmarks/run.py``: a measurement to
decide how the S2 target (<= 30 us per step at B = 1) could be closed. It
needs numba, which is not a dependency of plastic or of the benchmark
environment::

    .venv-bench/bin/pip install numba
    .venv-bench/bin/python benchmarks/fused_step_numba.py

The kernel does in one call what an S2 step does in ~14 eager operations
plus the two monitors' writes: the gather of the spiking inputs' rows of an
input-major 784 -> 400 weight, the finiteness check of the current, the LIF
step of :mod:`plastic.functional.neurons` (``decay_input``, hard reset to
0, the same operations in the same order, float32), and the writes of the
input and output spikes into two 100-step rings (what the STDP trainer's
monitors record). It first checks that its spikes and voltages equal those
of ``Cell(LinearDense(..., weight_layout="input_major"), LIF(...))`` on the
same 100-step train, then times both (process time, one thread).
"""

from __future__ import annotations

import time

import numba
import numpy as np
import torch

from plastic import LIF, STDP, Cell, LinearDense

STEPS, INPUTS, OUTPUTS, RATE, TAU = 100, 784, 400, 0.05, 2.0


@numba.njit(cache=True)
def fused_step(spikes, rows, voltage, new_voltage, out, ring_pre, ring_post, slot, tau, threshold):
    """One step; False where the current is not finite (nothing written but the input ring's slot)."""
    current = np.zeros(rows.shape[1], dtype=rows.dtype)
    for i in range(rows.shape[0]):
        ring_pre[slot, i] = spikes[i]
        if spikes[i]:
            for o in range(rows.shape[1]):
                current[o] += rows[i, o]
    for o in range(rows.shape[1]):
        if not np.isfinite(current[o]):
            return False
    tau_divisor = rows.dtype.type(tau)
    for o in range(rows.shape[1]):
        # V + (X - V) / tau (v_reset = +0), then a hard reset: plastic's LIF step, operation by operation
        charged = voltage[o] + (current[o] - voltage[o]) / tau_divisor
        fired = charged >= threshold
        ring_post[slot, o] = fired
        out[o] = 1.0 if fired else 0.0
        new_voltage[o] = 0.0 if fired else charged
    return True


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    connection = LinearDense(INPUTS, OUTPUTS, weight_init=(0.0, 0.04), weight_layout="input_major")
    cell = Cell(connection, LIF(OUTPUTS, tau=TAU))
    trains = list((torch.rand(STEPS, 1, INPUTS) < RATE).unbind(0))
    rows = connection.weight.detach().T.contiguous().numpy()  # [N_in, N_out], the input-major storage
    ring_pre = np.zeros((STEPS, INPUTS), dtype=np.bool_)
    ring_post = np.zeros((STEPS, OUTPUTS), dtype=np.bool_)
    state = {"voltage": torch.zeros(1, OUTPUTS)}

    def step(spikes: torch.Tensor, slot: int) -> torch.Tensor:
        # fresh output and voltage tensors each step, as plastic's step makes them
        out, new_voltage = torch.empty(1, OUTPUTS), torch.empty(1, OUTPUTS)
        voltage = state["voltage"]
        if not fused_step(
            spikes.numpy()[0], rows, voltage.numpy()[0], new_voltage.numpy()[0], out.numpy()[0],
            ring_pre, ring_post, slot, TAU, 1.0,
        ):  # fmt: skip
            raise ValueError("inputs: expected finite values, found NaN or inf")
        state["voltage"] = new_voltage
        return out

    with torch.no_grad():
        for slot, spikes in enumerate(trains):  # the same values as plastic's cell, step by step
            expected = cell(spikes)
            assert torch.equal(step(spikes, slot), expected)
            assert torch.equal(state["voltage"], cell.neuron.voltage)
        print(f"fused step equals Cell(LinearDense, LIF) on {STEPS} steps ({int(ring_post.sum())} output spikes)")

        trainer = STDP(tau_pre=20.0, tau_post=20.0, window=STEPS, eta_post=1e-4, eta_pre=1e-4)
        cell.make_updater(params=["weight"])
        trainer.register_cell("cell", cell)

        def fused_window() -> None:
            for slot, spikes in enumerate(trains):
                step(spikes, slot)

        def eager_window() -> None:
            for spikes in trains:
                cell(spikes)

        def trainer_window() -> None:
            eager_window()
            trainer()
            trainer.update()

        results: dict[str, list[float]] = {"fused": [], "eager": [], "eager + trainer": []}
        variants = (("fused", fused_window), ("eager", eager_window), ("eager + trainer", trainer_window))
        for _ in range(3):
            fused_window()
            trainer_window()
        for _ in range(7):  # interleaved rounds (a shared machine)
            for name, run in variants:
                elapsed = 0.0
                for _ in range(10):
                    start = time.process_time()
                    run()
                    elapsed += time.process_time() - start
                    if name == "eager":
                        trainer.clear()  # untimed: the monitors' window starts over
                results[name].append(elapsed / (10 * STEPS) * 1e6)
        medians = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
        print(f"fused kernel step (gather, LIF, both rings): {medians['fused']:.1f} us/step")
        print(f"eager step, monitors recording:            {medians['eager']:.1f} us/step")
        print(f"eager S2 (steps + trainer() + update()):     {medians['eager + trainer']:.1f} us/step")
        trainer_share = medians["eager + trainer"] - medians["eager"]
        print(f"the trainer's share: {trainer_share:.1f} us/step; fused step + trainer: "
              f"{medians['fused'] + trainer_share:.1f} us/step")  # fmt: skip


if __name__ == "__main__":
    main()
