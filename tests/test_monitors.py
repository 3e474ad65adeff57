"""Monitors and the monitor pool, on small test-local modules shaped like a Cell.

The fake cell has the attribute names of docs/ARCHITECTURE.md
(``cell.neuron.spike``, ``cell.neuron.voltage``, ``cell.connection.synspike``,
``cell.connection.synapse.spike``, ``step_mode``) so these tests do not depend
on the real neurons and connections.
"""

from __future__ import annotations

import gc
import math

import pytest
import torch
from torch import nn

from plastic.observe import (
    CumulativeAverageReducer,
    CumulativeTraceReducer,
    EMAReducer,
    EventTimeReducer,
    Monitor,
    MonitorPool,
    NearestTraceReducer,
    PassthroughReducer,
    WindowReducer,
    parse_target,
)


class FakeSynapse(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.spike: torch.Tensor | None = None


class FakeConnection(nn.Module):
    """Identity 'connection' that records what reaches its synapses."""

    def __init__(self) -> None:
        super().__init__()
        self.synapse = FakeSynapse()
        self.synspike: torch.Tensor | None = None
        self.step_mode = "single"

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        self.synspike = spikes.bool()
        self.synapse.spike = spikes.bool()
        return spikes.float()


class FakeNeuron(nn.Module):
    """Fires where the input exceeds 0.5; the voltage accumulates the input."""

    def __init__(self, batch: int, size: int) -> None:
        super().__init__()
        self.register_buffer("voltage", torch.zeros(batch, size))
        self.spike: torch.Tensor | None = None
        self.step_mode = "single"

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "window":
            self.voltage = self.voltage + current.sum(0)
        else:
            self.voltage = self.voltage + current
        self.spike = current > 0.5
        return self.spike.float()


class FakeCell(nn.Module):
    def __init__(self, batch: int = 2, size: int = 3) -> None:
        super().__init__()
        self.connection = FakeConnection()
        self.neuron = FakeNeuron(batch, size)
        self._step_mode = "single"

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        self._step_mode = mode
        self.connection.step_mode = mode
        self.neuron.step_mode = mode

    def forward(self, spikes: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.neuron(self.connection(spikes))


def spikes(steps: int, batch: int = 2, size: int = 3, seed: int = 0, rate: float = 0.4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, size, generator=generator) < rate).float()


def hook_count(module: nn.Module) -> int:
    return len(module._forward_hooks) + len(module._forward_pre_hooks)


def tensor_bytes(module: nn.Module) -> int:
    return sum(buffer.numel() * buffer.element_size() for buffer in module.buffers())


# ---------------------------------------------------------------- targets
def test_parse_target_forms():
    assert parse_target("neuron.spike") == parse_target("attr:neuron.spike")
    assert parse_target("input") == parse_target("input:0")
    assert str(parse_target("delta:neuron.voltage")) == "delta:neuron.voltage"
    assert parse_target("output:1").index == 1
    for bad in ("", "attr:", "input:x", "what:ever", "neuron..spike"):
        with pytest.raises((ValueError, TypeError), match=r"^target"):
            parse_target(bad)


def test_attribute_targets_single_and_window():
    train = spikes(12)
    single_cell, window_cell = FakeCell(), FakeCell()
    window_cell.step_mode = "window"
    monitors = {}
    for name, cell in (("single", single_cell), ("window", window_cell)):
        monitors[name] = [
            Monitor(WindowReducer(12), cell, "connection.synspike"),
            Monitor(WindowReducer(12), cell, "attr:connection.synapse.spike"),
            Monitor(EventTimeReducer(dt=0.5), cell, "neuron.spike"),
        ]
    for step in train:
        single_cell(step)
    window_cell(train[:5])
    window_cell(train[5:])
    expected_times = torch.full((2, 3), math.nan)
    for b in range(2):
        for n in range(3):
            fired = [t for t in range(12) if train[t, b, n] > 0.5]
            if fired:
                expected_times[b, n] = (11 - fired[-1]) * 0.5
    for name in ("single", "window"):
        synspike, synapse, event_time = monitors[name]
        assert torch.equal(synspike.peek(), train.bool())
        assert torch.equal(synapse.peek(), train.bool())
        torch.testing.assert_close(event_time.peek(), expected_times, equal_nan=True)


def test_input_output_and_pre_hook_targets():
    cell = FakeCell()
    train = spikes(4)
    extra = torch.arange(6.0).reshape(2, 3)
    first_input = Monitor(PassthroughReducer(), cell, "input")
    second_input = Monitor(PassthroughReducer(), cell, "input:1", hook="pre")
    output = Monitor(PassthroughReducer(), cell, "output")
    before = Monitor(WindowReducer(4), cell, "neuron.spike", hook="pre")  # previous step's spikes
    for step in train:
        cell(step, extra + step)
    assert torch.equal(first_input.peek(), train[-1])
    assert torch.equal(second_input.peek(), extra + train[-1])
    assert torch.equal(output.peek(), train[-1])
    # the pre hook saw nothing at the first forward (spike unset), then steps 0..2
    assert before.reducer.count == 3
    assert torch.equal(before.peek()[1:], train[:3].bool())


def test_delta_target_is_change_across_forward():
    cell = FakeCell()
    monitor = Monitor(PassthroughReducer(), cell, "delta:neuron.voltage")
    train = spikes(3, seed=4)
    for step in train:
        cell(step)
        assert torch.equal(monitor.peek(), step)  # voltage += input
    cell.step_mode = "window"
    cell(train)
    assert torch.equal(monitor.peek(), train.sum(0))  # one observation per forward
    with pytest.raises(ValueError, match=r"^hook"):
        Monitor(PassthroughReducer(), cell, "delta:neuron.voltage", hook="pre")
    with pytest.raises(ValueError, match=r"^hook"):
        Monitor(PassthroughReducer(), cell, "output", hook="pre")
    with pytest.raises(ValueError, match=r"^target"):
        Monitor(PassthroughReducer(), cell, "neuronz.spike")


def test_values_are_detached():
    cell = FakeCell()
    monitor = Monitor(CumulativeTraceReducer(1.0, 5.0), cell, "input")
    output_monitor = Monitor(PassthroughReducer(), cell, "output")
    value = torch.rand(2, 3, requires_grad=True)
    cell(value)
    assert not monitor.peek().requires_grad and monitor.reducer.trace.grad_fn is None
    assert not output_monitor.reducer.latest.requires_grad


# ---------------------------------------------------------------- gating and switches
def test_train_eval_gating():
    cell = FakeCell()
    in_training = Monitor(CumulativeAverageReducer(), cell, "input", train_only="train")
    in_evaluation = Monitor(CumulativeAverageReducer(), cell, "input", train_only="eval")
    always = Monitor(CumulativeAverageReducer(), cell, "input")
    ones, zeros = torch.ones(2, 3), torch.zeros(2, 3)
    cell.train()
    cell(ones)
    cell(ones)
    cell.eval()
    cell(zeros)
    assert torch.equal(in_training.peek(), ones) and int(in_training.reducer.count) == 2
    assert torch.equal(in_evaluation.peek(), zeros) and int(in_evaluation.reducer.count) == 1
    torch.testing.assert_close(always.peek(), torch.full((2, 3), 2 / 3))
    with pytest.raises(ValueError, match=r"^train_only"):
        Monitor(CumulativeAverageReducer(), cell, "input", train_only="sometimes")


def test_enable_disable_clear():
    cell = FakeCell()
    monitor = Monitor(CumulativeAverageReducer(), cell, "input")
    cell(torch.ones(2, 3))
    monitor.disable()
    cell(torch.zeros(2, 3))
    assert torch.equal(monitor.peek(), torch.ones(2, 3)) and int(monitor.reducer.count) == 1
    monitor.enable()
    cell(torch.zeros(2, 3))
    torch.testing.assert_close(monitor.peek(), torch.full((2, 3), 0.5))
    monitor.clear()
    assert int(monitor.reducer.count) == 0 and torch.equal(monitor.peek(), torch.zeros(2, 3))
    assert monitor.attached  # clearing keeps the hooks
    cell(torch.ones(1, 3))  # after clear a new shape is accepted
    assert torch.equal(monitor.peek(), torch.ones(1, 3))


def test_remove_and_garbage_collection_remove_hooks():
    cell = FakeCell()
    monitor = Monitor(EventTimeReducer(), cell, "neuron.spike")
    delta = Monitor(PassthroughReducer(), cell, "delta:neuron.voltage")
    assert hook_count(cell) == 3
    monitor.remove()
    monitor.remove()  # idempotent
    assert hook_count(cell) == 2 and not monitor.attached
    del delta
    gc.collect()
    assert hook_count(cell) == 0
    cell(torch.ones(2, 3))  # no dangling hooks left to call


def test_shape_change_through_monitor_raises_named_error():
    cell = FakeCell()
    monitor = Monitor(EventTimeReducer(), cell, "input")
    cell(torch.ones(2, 3))
    before = monitor.peek()
    with pytest.raises(ValueError, match=r"^value"):
        cell(torch.ones(1, 3))
    torch.testing.assert_close(monitor.peek(), before, equal_nan=True)


# ---------------------------------------------------------------- pool
def test_pool_shares_identical_monitors_and_counts_users():
    cell = FakeCell()
    pool = MonitorPool()
    first = pool.get_or_create(cell, "neuron.spike", lambda: CumulativeTraceReducer(1.0, 5.0))
    second = pool.get_or_create(cell, "attr:neuron.spike", lambda: CumulativeTraceReducer(1.0, 5.0))
    assert first is second and pool.users(first) == 2 and len(pool) == 1
    assert hook_count(cell) == 1  # one monitor records once
    others = [
        pool.get_or_create(cell, "neuron.spike", lambda: CumulativeTraceReducer(1.0, 6.0)),
        pool.get_or_create(cell, "neuron.spike", lambda: NearestTraceReducer(1.0, 5.0)),
        pool.get_or_create(cell, "neuron.spike", lambda: CumulativeTraceReducer(1.0, 5.0), hook="pre"),
        pool.get_or_create(cell, "neuron.spike", lambda: CumulativeTraceReducer(1.0, 5.0), train_only="train"),
        pool.get_or_create(cell, "connection.synspike", lambda: CumulativeTraceReducer(1.0, 5.0)),
        pool.get_or_create(FakeCell(), "neuron.spike", lambda: CumulativeTraceReducer(1.0, 5.0)),
    ]
    assert len({id(monitor) for monitor in [first, *others]}) == 7
    pool.release(first)
    assert first.attached and pool.users(first) == 1
    pool.release(second)
    assert not first.attached and first not in pool
    for monitor in others:
        pool.release(monitor)
    assert hook_count(cell) == 0 and len(pool) == 0
    assert not cell._forward_hooks and not cell._forward_pre_hooks
    with pytest.raises(ValueError, match=r"^monitor"):
        pool.release(first)


def test_pool_explicit_reducer_key_and_recording_once():
    cell = FakeCell()
    pool = MonitorPool()
    made = []

    def factory():
        made.append(1)
        return EMAReducer(0.5)

    first = pool.get_or_create(cell, "input", factory, reducer_key=("ema", 0.5))
    second = pool.get_or_create(cell, "input", factory, reducer_key=("ema", 0.5))
    assert first is second and len(made) == 1
    cell(torch.ones(2, 3))
    cell(torch.zeros(2, 3))
    torch.testing.assert_close(first.peek(), torch.full((2, 3), 0.5))  # recorded once per forward
    assert EMAReducer(0.5).config_key() == EMAReducer(0.5).config_key() != EMAReducer(0.4).config_key()
    pool.clear()
    assert hook_count(cell) == 0


# ---------------------------------------------------------------- memory
def test_memory_flat_over_100k_steps():
    """A monitored cell run for 100,000 steps holds as many tensor bytes as after 1,000."""
    cell = FakeCell(batch=1, size=4)
    pool = MonitorPool()
    monitors = [
        pool.get_or_create(cell, "neuron.spike", lambda: EventTimeReducer(1.0, duration=5.0)),
        pool.get_or_create(cell, "connection.synspike", lambda: CumulativeTraceReducer(1.0, 20.0, duration=3.0)),
        pool.get_or_create(cell, "neuron.spike", lambda: NearestTraceReducer(1.0, 20.0)),
        pool.get_or_create(cell, "input", lambda: PassthroughReducer(1.0, duration=4.0)),
        pool.get_or_create(cell, "input", lambda: EMAReducer(0.01)),
        pool.get_or_create(cell, "input", lambda: CumulativeAverageReducer()),
        pool.get_or_create(cell, "neuron.spike", lambda: WindowReducer(16)),
        pool.get_or_create(cell, "delta:neuron.voltage", lambda: CumulativeAverageReducer()),
    ]
    chunk = spikes(1000, batch=1, size=4, seed=1, rate=0.1)
    # first 1,000 steps one at a time, the rest as windows of 1,000 steps
    for step in chunk:
        cell(step)
    held = sum(tensor_bytes(monitor) for monitor in monitors)
    cell.step_mode = "window"
    for _ in range(99):
        cell(chunk)
    assert sum(tensor_bytes(monitor) for monitor in monitors) == held
    assert int(monitors[5].reducer.count) == 100_000
