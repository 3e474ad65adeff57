"""A neuron keeps the voltage of every step of its last forward (``store_voltage_sequence``): the values (after
the reset) against a step loop and a hand-computed run, monitors recording it per step in both step modes
(on the neuron and through a Cell), state_dict / .to / reset / detach, nothing kept when off, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import IF, LIF, AdaptiveLIF
from plastic.observe.monitors import Monitor, MonitorPool
from plastic.observe.reducers import WindowReducer


def _neuron(kind, step_mode, **kwargs):
    common = {"batch_size": 2, "step_mode": step_mode, "dtype": torch.float64, "store_voltage_sequence": True, **kwargs}
    if kind == "if":
        return IF((3,), v_threshold=1.5, **common)
    if kind == "lif":
        return LIF((3,), tau=2.5, **common)
    return AdaptiveLIF((3,), tau=2.5, theta_plus=0.2, tau_theta=10.0, **common)


def _inputs(steps=9, seed=0):
    return torch.rand(steps, 2, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.6


def test_hand_computed_lif_sequence_is_after_the_reset():
    # tau = 2, V_th = 1, hard reset to 0, X = 1.5, 0.5, 2.5:
    # H1 = 0 + 1.5/2 = 0.75; H2 = 0.75 + (0.5 - 0.75)/2 = 0.625; H3 = 0.625 + (2.5 - 0.625)/2 = 1.5625: spike, V3 = 0
    neuron = LIF(1, tau=2.0, step_mode="window", dtype=torch.float64, store_voltage_sequence=True)
    spikes = neuron(torch.tensor([1.5, 0.5, 2.5], dtype=torch.float64).reshape(3, 1, 1))
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0]
    assert neuron.voltage_sequence.shape == (3, 1, 1)
    assert neuron.voltage_sequence.flatten().tolist() == [0.75, 0.625, 0.0]
    assert torch.equal(neuron.voltage, neuron.voltage_sequence[-1])


@pytest.mark.parametrize("kind", ["if", "lif", "adaptive"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("refractory", [0.0, 2.0])
def test_window_sequence_equals_the_step_loop_voltages(kind, reset, refractory):
    inputs = _inputs()
    window = _neuron(kind, "window", reset=reset, refractory=refractory)
    single = _neuron(kind, "single", reset=reset, refractory=refractory, store_voltage_sequence=False)
    with torch.no_grad():
        spikes = window(inputs)
        looped = []
        for step in inputs:
            single(step)
            looped.append(single.voltage.clone())
    assert spikes.sum() > 0
    assert window.voltage_sequence.shape == inputs.shape
    assert torch.equal(window.voltage_sequence, torch.stack(looped))


@pytest.mark.parametrize("grad", [False, True])
def test_single_step_sequence_is_the_step_voltage(grad):
    neuron = _neuron("lif", "single")
    inputs = _inputs(4).requires_grad_(grad)
    for step in inputs:
        neuron(step)
        assert neuron.voltage_sequence is neuron.voltage
        assert neuron.voltage_sequence.shape == (2, 3)
    assert neuron.voltage_sequence.requires_grad == grad


def test_window_sequence_carries_the_graph_until_detach():
    neuron = _neuron("lif", "window")
    inputs = _inputs(5).requires_grad_()
    neuron(inputs)
    (grad,) = torch.autograd.grad(neuron.voltage_sequence.sum(), inputs)
    assert grad.abs().sum() > 0
    neuron.detach()
    assert not neuron.voltage_sequence.requires_grad and not neuron.voltage.requires_grad


@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_off_keeps_nothing_and_reading_it_is_an_error(step_mode):
    neuron = LIF(3, batch_size=2, step_mode=step_mode, dtype=torch.float64)
    assert neuron.store_voltage_sequence is False
    data = _inputs(4)
    neuron(data if step_mode == "window" else data[0])
    assert neuron._buffers["_voltage_sequence"] is None  # no reference to the voltages kept
    with pytest.raises(RuntimeError, match="store_voltage_sequence=True"):
        neuron.voltage_sequence  # noqa: B018
    with pytest.raises(ValueError, match="voltage_sequence"):
        Monitor(WindowReducer(4), neuron, "voltage_sequence")
    with pytest.raises(ValueError, match="voltage_sequence"):
        MonitorPool().get_or_create(
            Cell(LinearDense(2, 3), LIF(3)), "neuron.voltage_sequence", lambda: WindowReducer(4)
        )


@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_monitor_records_the_voltage_per_step_in_both_modes(step_mode):
    inputs = _inputs(7)
    neuron = _neuron("adaptive", step_mode, refractory=1.0)
    monitor = Monitor(WindowReducer(16), neuron, "voltage_sequence")
    reference = _neuron("adaptive", "single", refractory=1.0, store_voltage_sequence=False)
    with torch.no_grad():
        if step_mode == "window":
            neuron(inputs[:3])
            neuron(inputs[3:])
        else:
            for step in inputs:
                neuron(step)
        expected = []
        for step in inputs:
            reference(step)
            expected.append(reference.voltage.clone())
    assert monitor.reducer.total == 7
    assert torch.equal(monitor.reducer.recent(7), torch.stack(expected))


@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_monitor_through_a_cell_in_both_modes(step_mode):
    # what a voltage-based rule does: a pooled monitor on the cell's neuron.voltage_sequence
    torch.manual_seed(0)
    cell = Cell(LinearDense(4, 3, batch_size=2, weight_init=(0.3, 0.9), dtype=torch.float64),
                LIF(3, tau=2.0, batch_size=2, dtype=torch.float64))  # fmt: skip
    reference = copy.deepcopy(cell)
    cell.neuron.store_voltage_sequence = True
    cell.step_mode = step_mode
    monitor = MonitorPool().get_or_create(cell, "neuron.voltage_sequence", lambda: WindowReducer(10))
    spikes = torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(3)) < 0.5
    with torch.no_grad():
        if step_mode == "window":
            cell(spikes)
        else:
            for step in spikes:
                cell(step)
        expected = []
        for step in spikes:
            reference(step)
            expected.append(reference.neuron.voltage.clone())
    assert torch.equal(monitor.reducer.recent(6), torch.stack(expected))


def test_state_dict_to_reset_and_setters():
    neuron = _neuron("lif", "window")
    assert neuron.voltage_sequence is None  # nothing before the first forward
    neuron(_inputs(3))
    # a record of the last forward, not state: not saved, and loading works either way
    assert not any("voltage_sequence" in key for key in neuron.state_dict())
    fresh = _neuron("lif", "window")
    fresh.load_state_dict(neuron.state_dict())
    LIF(3, batch_size=2, dtype=torch.float64).load_state_dict(neuron.state_dict())
    assert torch.equal(fresh.voltage, neuron.voltage)

    moved = copy.deepcopy(neuron).to(torch.float32)
    assert moved.voltage_sequence.dtype == torch.float32 and moved.voltage.dtype == torch.float32
    torch.testing.assert_close(moved.voltage_sequence, neuron.voltage_sequence.float())

    neuron.reset()
    assert neuron.voltage_sequence is None
    neuron(_inputs(3))
    neuron.batch_size = 1
    assert neuron.voltage_sequence is None
    neuron(_inputs(3)[:, :1])
    assert neuron.voltage_sequence.shape == (3, 1, 3)
    neuron.store_voltage_sequence = False
    assert neuron._buffers["_voltage_sequence"] is None
    neuron.store_voltage_sequence = True
    assert neuron.voltage_sequence is None


def test_repr_and_bad_input():
    assert "store_voltage_sequence=True" in repr(_neuron("lif", "window"))
    assert "store_voltage_sequence" not in repr(LIF(3))
    for factory in (IF, LIF, AdaptiveLIF):
        with pytest.raises(TypeError, match="store_voltage_sequence"):
            factory(3, store_voltage_sequence="yes")
    neuron = LIF(3)
    with pytest.raises(TypeError, match="store_voltage_sequence"):
        neuron.store_voltage_sequence = 1
    assert neuron.store_voltage_sequence is False
