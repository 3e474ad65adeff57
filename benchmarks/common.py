"""Shared pieces of the benchmark: case sizes, spike data, timing, memory, rows.

Timing: ``warmup`` untimed calls, then ``repeats`` timed calls of the same
prepared callable (``time.perf_counter``, with ``torch.cuda.synchronize`` on
CUDA); the table shows the median. ``clock="cpu"`` times with
``time.process_time`` instead: the CPU time of this process, which on a
machine shared with other work does not count the time the scheduler gives
to others (wall-clock medians of the same row then vary 1.5-2.7x between
runs; CPU time by a few percent). Only for CPU rows with one torch thread
(a GPU's time is not the process's CPU time, and idle OpenMP workers spin on
CPU time).

Peak memory (what the column means, honestly):

* CPU: the peak of *torch tensor* bytes allocated during one call and not yet
  freed, above what was live before the call, read from ``torch.profiler``'s
  memory events (allocations and frees of torch's CPU allocator in event
  order). It does not count memory held outside torch tensors (numpy arrays,
  Python objects, the allocator's cache), nor tensors that were live before
  the call (weights, the spike data).
* CUDA: ``torch.cuda.max_memory_allocated()`` during one call minus the bytes
  allocated before it (same meaning, from the CUDA caching allocator).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "ConvCase",
    "DenseCase",
    "NetworkCase",
    "PeerUnavailable",
    "Prepared",
    "Row",
    "bernoulli_trains",
    "conv_case",
    "dense_case",
    "event_times",
    "max_abs_difference",
    "network_case",
    "peak_memory",
    "synchronize",
    "time_callable",
]


# ---------------------------------------------------------------------- cases


@dataclass(frozen=True)
class DenseCase:
    """B1 / B3: a dense connection ``n_in -> n_out`` over a window of ``steps``.

    Spikes are Bernoulli with ``p_pre`` / ``p_post`` per step; ``tau`` (steps,
    ``dt = 1``) is both trace time constants (and both kernel ones in B3).
    """

    name: str
    steps: int
    batch: int
    n_in: int
    n_out: int
    p_pre: float = 0.05
    p_post: float = 0.02
    tau: float = 20.0
    max_delay: float = 10.0
    seed: int = 0


@dataclass(frozen=True)
class ConvCase:
    """B2: a 2-d convolution ``in_channels x height x width -> out_channels``, no padding, stride 1."""

    name: str
    steps: int
    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: int
    p_pre: float = 0.05
    p_post: float = 0.02
    tau: float = 20.0
    seed: int = 1

    @property
    def out_height(self) -> int:
        return self.height - self.kernel + 1

    @property
    def out_width(self) -> int:
        return self.width - self.kernel + 1


@dataclass(frozen=True)
class NetworkCase:
    """B4: one training step (one presentation of ``steps`` steps) of a Diehl & Cook network.

    ``n_in`` inputs (64: scikit-learn's 8x8 digits, the demo's data set),
    ``n_neurons`` excitatory and as many inhibitory neurons (BindsNET; the
    demo's inhibition is a fixed lateral connection), ``batch`` samples per
    call. The images are digits from the demo's data set; both networks see
    Poisson trains at ``intensity / 16 * max_rate`` Hz (1 ms steps).
    """

    name: str
    steps: int
    batch: int
    n_in: int
    n_neurons: int
    max_rate: float = 300.0
    seed: int = 2


def dense_case(batch: int, quick: bool) -> DenseCase:
    """B1 sizes (issue 9): 784 -> 400, T = 100; ``quick``: 32 -> 16, T = 10."""
    if quick:
        return DenseCase(name=f"B1 B={min(batch, 4)}", steps=10, batch=min(batch, 4), n_in=32, n_out=16)
    return DenseCase(name=f"B1 B={batch}", steps=100, batch=batch, n_in=784, n_out=400)


def conv_case(quick: bool) -> ConvCase:
    """B2 sizes: 1x28x28, B = 16, 1 -> 32 channels, 5x5, T = 50; ``quick``: 1x8x8 -> 4, 3x3, T = 5."""
    if quick:
        return ConvCase(name="B2", steps=5, batch=2, in_channels=1, out_channels=4, height=8, width=8, kernel=3)
    return ConvCase(name="B2", steps=50, batch=16, in_channels=1, out_channels=32, height=28, width=28, kernel=5)


def network_case(batch: int | None, quick: bool) -> NetworkCase:
    """B4 sizes: the demo's own defaults (``plastic.zoo.demo.DemoConfig``), read at run time.

    ``batch=None`` takes the demo's training batch size; ``quick``: 8 neurons,
    10 steps, at most 2 samples.
    """
    from plastic.zoo.demo import DemoConfig

    config = DemoConfig().resolved()
    batch = config.batch_size if batch is None else batch
    assert batch is not None and config.neurons is not None and config.steps is not None
    if quick:
        return NetworkCase(name=f"B4 B={min(batch, 2)}", steps=10, batch=min(batch, 2), n_in=64, n_neurons=8)
    return NetworkCase(
        name=f"B4 B={batch}", steps=config.steps, batch=batch, n_in=64, n_neurons=config.neurons,
        max_rate=config.max_rate,
    )  # fmt: skip


# ----------------------------------------------------------------------- data


def bernoulli_trains(shape: tuple[int, ...], probability: float, generator: torch.Generator) -> Tensor:
    """Float32 {0, 1} spikes of ``shape`` (time first), each 1 with ``probability``."""
    return (torch.rand(shape, generator=generator) < probability).to(torch.float32)


def event_times(spikes: Tensor, dt: float = 1.0) -> Tensor:
    """Time since each neuron's most recent spike at the end of a window ``[T, B, ...]``.

    ``0`` for a spike at the last step, NaN where the neuron never spiked
    (the event-time record that kernel STDP reads, DESIGN.md "Kernel STDP").
    """
    steps = spikes.shape[0]
    index = torch.arange(steps, dtype=spikes.dtype, device=spikes.device).reshape(-1, *([1] * (spikes.ndim - 1)))
    last = torch.where(spikes > 0, index, torch.full_like(spikes, -1.0)).amax(0)
    times = (steps - 1 - last) * dt
    return torch.where(last >= 0, times, torch.full_like(times, math.nan))


# -------------------------------------------------------------------- results


class PeerUnavailable(Exception):
    """A peer library (or one of its features) cannot be used: the row shows the reason."""


@dataclass
class Prepared:
    """One implementation ready to time.

    ``run()`` does the timed work and returns the weight change in the
    layout of the reference (dense ``[n_out, n_in]``, conv weight shape) or
    ``None`` when there is nothing to compare. ``reference`` names the
    reference it is compared with (a key of the case's reference table:
    ``"exact"``, ``"euler"``, ``"kernel"``, ``"delay"``) or ``None``.
    """

    run: Callable[[], Tensor | None]
    reference: str | None = None
    note: str = ""
    # per-call work counted as one "sample" in samples/s (B4)
    samples: int | None = None
    # untimed work before every timed call (S1: the cell's forward that records the window
    # the timed trainer call consumes); also run before the memory pass
    setup: Callable[[], None] | None = None
    # per-call steps: the row's extra gets the time per step (S2)
    steps: int | None = None


@dataclass
class Row:
    """One line of the table (and one object of the JSON)."""

    case: str
    implementation: str
    kind: str  # "ours", "peer", "bound"
    status: str = "ok"  # "ok", "not available", "unavailable: ...", "error: ..."
    median_ms: float | None = None
    min_ms: float | None = None
    repeats: int = 0
    peak_memory_bytes: int | None = None
    max_abs_diff: float | None = None
    max_abs_dw: float | None = None
    ratio_to_bound: float | None = None
    ratio_to_ours: float | None = None
    samples_per_s: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------- measurement


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_callable(
    run: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    device: torch.device,
    budget_s: float = 30.0,
    setup: Callable[[], None] | None = None,
    clock: str = "wall",
) -> list[float]:
    """Seconds per call: ``warmup`` untimed calls, then up to ``repeats`` timed ones.

    A slow implementation is cut to fewer repeats (at least 1) once the timed
    calls have used ``budget_s`` seconds, so that a 7 s peer does not take
    minutes; the row records how many repeats it got. ``setup`` runs untimed
    before every call. ``clock``: ``"wall"`` (``time.perf_counter``) or
    ``"cpu"`` (``time.process_time``, see the module notes).
    """
    times, errors = time_interleaved(
        [(run, setup)], warmup=warmup, repeats=repeats, device=device, budget_s=budget_s, clock=clock
    )
    if errors[0] is not None:
        raise errors[0]
    return times[0]


def time_interleaved(
    calls: list[tuple[Callable[[], object], Callable[[], None] | None]],
    *,
    warmup: int,
    repeats: int,
    device: torch.device,
    budget_s: float = 30.0,
    clock: str = "wall",
) -> tuple[list[list[float]], list[Exception | None]]:
    """:func:`time_callable` for several ``(run, setup)`` pairs at once, one call of each in turn.

    Round ``r`` times the ``r``-th call of every pair, in the given order,
    so a slow spell of a shared machine (other work on the cores, memory
    bandwidth taken) falls on every row of the round rather than on the rows
    that happened to be timed during it: the ratios between rows of one case
    hold better than with each row's repeats back to back. A pair whose
    timed calls passed ``budget_s`` seconds drops out of later rounds (it
    keeps at least one time); a pair whose call raised drops out with its
    error, the others go on. Returns the seconds per call of each pair and
    each pair's error (None: none).
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.process_time
    times: list[list[float]] = [[] for _ in calls]
    errors: list[Exception | None] = [None for _ in calls]

    def call(index: int, timed: bool) -> None:
        run, setup = calls[index]
        try:
            if setup is not None:
                setup()
                synchronize(device)
            start = now()
            run()
            synchronize(device)
            if timed:
                times[index].append(now() - start)
        except Exception as error:  # this pair stops here; the others go on
            errors[index] = error

    with torch.no_grad():
        for _ in range(warmup):
            for index in range(len(calls)):
                if errors[index] is None:
                    call(index, timed=False)
        for _ in range(repeats):
            for index in range(len(calls)):
                if errors[index] is None and not (times[index] and sum(times[index]) > budget_s):
                    call(index, timed=True)
    return times, errors


def eager_op_us(device: torch.device, clock: str = "wall", calls: int = 20000) -> float:
    """Microseconds of one small eager op (``add_`` on 400 float32 values), median of five batches of
    ``calls``: the per-op dispatch cost that bounds a per-step path such as S2, so that rows whose
    cost is set by that overhead can be compared across machines."""
    values = torch.zeros(400, device=device)
    batch = max(1, calls // 5)

    def run() -> None:
        for _ in range(batch):
            values.add_(1.0)

    times = time_callable(run, warmup=1, repeats=5, device=device, clock=clock)
    return statistics.median(times) / batch * 1e6


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def peak_memory(run: Callable[[], object], device: torch.device, setup: Callable[[], None] | None = None) -> int | None:
    """Peak torch-tensor bytes allocated during one call of ``run`` (see the module notes)."""
    with torch.no_grad():
        if setup is not None:
            setup()
        if device.type == "cuda":
            synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            run()
            synchronize(device)
            return int(torch.cuda.max_memory_allocated(device) - before)
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            run()
    changes = sorted(
        (event.time_range.start, event.self_cpu_memory_usage)
        for event in profiler.events()
        if event.self_cpu_memory_usage
    )
    current = peak = 0
    for _, change in changes:
        current += change
        peak = max(peak, current)
    return int(peak)


def max_abs_difference(value: Tensor, reference: Tensor) -> float:
    """``max |value - reference|`` in float64 (shapes must agree)."""
    if tuple(value.shape) != tuple(reference.shape):
        raise ValueError(f"value: shape {tuple(value.shape)} differs from the reference {tuple(reference.shape)}")
    difference = (value.detach().double().cpu() - reference.detach().double().cpu()).abs()
    return float(difference.max()) if difference.numel() else 0.0
