"""Soak: 100,000 steps of a monitored, trained cell with flat memory and finite weights.

A dense cell (8 -> 4, batch 2) runs window by window (T = 1000 steps per
window, 100 windows) under KernelSTDP (event-time monitors), trace STDP
(window monitors, carried traces) and a user monitor (cumulative trace of the
output spikes); the updater applies each window's change with soft bounds and
a clamp to [0, 1]. At 1e3 and 1e5 steps the run records

* the bytes of every tensor it holds (cell parameters and buffers, trainers'
  per-cell state and monitor buffers, the user monitor, the updater's
  accumulators): they must be exactly equal;
* the process's resident set size, now and at its peak (``ru_maxrss``): equal
  within 1%.

It runs in a fresh process (this file as a script) so that the peak belongs to
the soak alone, not to whatever the test session did before. Marked ``slow``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from plastic.functional.bounding import Bounding
from plastic.learn.kernel_stdp import KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import CumulativeTraceReducer

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 1000
TOTAL_STEPS = 100_000
BATCH = 2


def tensor_bytes(*modules: nn.Module) -> int:
    """Bytes of every distinct parameter and buffer (non-persistent ones too) of ``modules``."""
    seen: dict[int, int] = {}
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            seen[id(tensor)] = tensor.numel() * tensor.element_size()
    return sum(seen.values())


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_resident_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def soak(total_steps: int = TOTAL_STEPS, checkpoints: tuple[int, ...] = (1_000, TOTAL_STEPS)) -> dict[str, dict]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    window = {"batch_size": BATCH, "step_mode": "window"}
    cell = Cell(LinearDense(8, 4, weight_init=(0.2, 0.8), **window), LIF(4, tau=5.0, v_threshold=1.0, **window))
    updater = cell.make_updater(bounding=Bounding("soft", w_min=0.0, w_max=1.0), clamp=(0.0, 1.0))
    kernel = KernelSTDP(
        kernel_post_kwargs={"eta_post": 0.01, "tau_post": 10.0},
        kernel_pre_kwargs={"eta_pre": -0.012, "tau_pre": 10.0},
    )
    kernel.register_cell("cell", cell)
    # method pinned: with "auto" the first window whose density crosses the
    # sparse/dense threshold initialises torch's CSR kernels once (~2 MB, not a leak)
    stdp = STDP(eta_post=1e-3, eta_pre=1.2e-3, tau_pre=10.0, tau_post=10.0, window=WINDOW, method="sparse")
    stdp.register_cell("cell", cell)
    monitor = Monitor(CumulativeTraceReducer(tau=20.0), cell, "neuron.spike")
    generator = torch.Generator().manual_seed(1)
    records: dict[str, dict] = {}
    steps = 0
    spikes_seen = 0
    # plasticity needs no autograd graph; in grad mode the neuron state would
    # chain each window's graph onto the previous one
    with torch.no_grad():
        while steps < total_steps:
            inputs = (torch.rand(WINDOW, BATCH, 8, generator=generator) < 0.25).float()
            cell(inputs)
            spikes_seen += int(cell.neuron.spike.sum())
            kernel()
            stdp()
            kernel.update()
            stdp.update()
            steps += WINDOW
            if steps in checkpoints:
                weight = cell.connection.weight
                records[str(steps)] = {
                    "tensor_bytes": tensor_bytes(cell, kernel, stdp, monitor, updater),
                    "rss": resident_bytes(),
                    "peak_rss": peak_resident_bytes(),
                    "finite": bool(torch.isfinite(weight).all()),
                    "in_bounds": bool(((weight >= 0) & (weight <= 1)).all()),
                    "weight_mean": float(weight.mean()),
                    "spikes": spikes_seen,
                }
    return records


@pytest.mark.slow
def test_soak_100k_steps_flat_memory_and_finite_weights() -> None:
    completed = subprocess.run(
        [sys.executable, __file__], cwd=ROOT, capture_output=True, text=True, timeout=300
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    records = json.loads(completed.stdout.strip().splitlines()[-1])
    early, late = records["1000"], records[str(TOTAL_STEPS)]
    print(f"soak: {records}")
    assert late["tensor_bytes"] == early["tensor_bytes"]
    assert abs(late["rss"] - early["rss"]) <= 0.01 * early["rss"], (early, late)
    assert abs(late["peak_rss"] - early["peak_rss"]) <= 0.01 * early["peak_rss"], (early, late)
    assert late["finite"] and late["in_bounds"]
    assert late["spikes"] > early["spikes"] > 0  # the cell kept firing: the rules had work to do


def test_tensor_bytes_counts_every_buffer_once() -> None:
    linear = nn.Linear(3, 2)
    linear.register_buffer("hidden", torch.zeros(5, dtype=torch.float64), persistent=False)
    expected = (3 * 2 + 2) * 4 + 5 * 8
    assert tensor_bytes(linear) == expected
    assert tensor_bytes(linear, linear) == expected


if __name__ == "__main__":
    print(json.dumps(soak()))
