"""Cell and Serial: composition, consistency checks, step_mode/batch_size
propagation, the updater kept outside the module tree, state_dict and dtype."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from plastic.neural.cell import Cell, Serial
from plastic.neural.connections import Conv1d, LinearDense, LinearLateral


class StubNeuron(nn.Module):
    """Threshold units with a leaky voltage: ``v = 0.5 v + x``; spike and reset to 0 at ``v >= 1``."""

    def __init__(self, shape, *, dt=1.0, batch_size=1, step_mode="single"):
        super().__init__()
        self.shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        self.dt = dt
        self.step_mode = step_mode
        self._batch_size = batch_size
        self.register_buffer("voltage", torch.zeros(batch_size, *self.shape))
        self.register_buffer("spike", torch.zeros(batch_size, *self.shape, dtype=torch.bool), persistent=False)

    @property
    def batch_size(self):
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value):
        self._batch_size = value
        self.voltage = self.voltage.new_zeros(value, *self.shape)
        self.reset()

    def reset(self):
        self.voltage = torch.zeros_like(self.voltage)
        self.spike = torch.zeros(self.voltage.shape, dtype=torch.bool)

    def _step(self, x):
        v = 0.5 * self.voltage + x
        fired = v >= 1.0
        self.voltage = torch.where(fired, torch.zeros_like(v), v)
        return fired

    def forward(self, x):
        if self.step_mode == "single":
            self.spike = self._step(x)
        else:
            self.spike = torch.stack([self._step(step) for step in x])
        return self.spike.to(x.dtype)


def test_forward_is_neuron_of_connection():
    torch.manual_seed(0)
    cell = Cell(LinearDense(4, 3, batch_size=2, weight_init=(0.0, 1.0)), StubNeuron(3, batch_size=2))
    connection, neuron = copy.deepcopy(cell.connection), copy.deepcopy(cell.neuron)
    generator = torch.Generator().manual_seed(1)
    for _ in range(6):
        spikes = torch.rand(2, 4, generator=generator) < 0.5
        out = cell(spikes)
        assert torch.equal(out, neuron(connection(spikes)))
    assert cell.neuron.spike.dtype == torch.bool


def test_with_lif_neurons_window_equals_steps():
    from plastic.neural.neurons import LIF

    torch.manual_seed(0)
    cell = Cell(
        LinearDense(5, 3, batch_size=2, weight_init=(0.2, 0.8), delay=2.0, learn_delay_init="uniform"),
        LIF(3, tau=2.0, batch_size=2),
    )
    window = copy.deepcopy(cell)
    window.step_mode = "window"
    assert window.neuron.step_mode == "window" and window.connection.step_mode == "window"
    spikes = torch.rand(7, 2, 5, generator=torch.Generator().manual_seed(2)) < 0.6
    with torch.no_grad():
        stepped = torch.stack([cell(step) for step in spikes])
        windowed = window(spikes)
    assert torch.equal(stepped, windowed)


def test_consistency_checks():
    with pytest.raises(ValueError, match=r"^neuron"):
        Cell(LinearDense(4, 3), StubNeuron(4))
    with pytest.raises(ValueError, match=r"^neuron"):
        Cell(LinearDense(4, 3, dt=0.5), StubNeuron(3, dt=1.0))
    with pytest.raises(ValueError, match=r"^neuron"):
        Cell(LinearDense(4, 3, batch_size=2), StubNeuron(3))
    with pytest.raises(ValueError, match=r"^neuron"):
        Cell(LinearDense(4, 3), StubNeuron(3, step_mode="window"))
    with pytest.raises(TypeError, match=r"^connection"):
        Cell(nn.Linear(4, 3), StubNeuron(3))
    conv = Conv1d(1, 2, 3, in_size=5)
    assert Cell(conv, StubNeuron((2, 3))).out_shape == (2, 3)


def test_step_mode_batch_size_dt_and_reset():
    cell = Cell(LinearDense(4, 3, dt=0.5, synapse="exponential", synapse_kwargs={"tau": 2.0}), StubNeuron(3, dt=0.5))
    assert cell.dt == 0.5
    cell.batch_size = 3
    assert cell.connection.batch_size == 3 and cell.neuron.batch_size == 3
    cell(torch.ones(3, 4))
    cell.reset()
    assert cell.connection.synapse.state.abs().sum() == 0
    assert cell.neuron.voltage.abs().sum() == 0
    cell.step_mode = "window"
    assert cell(torch.ones(5, 3, 4)).shape == (5, 3, 3)
    with pytest.raises(ValueError, match=r"^step_mode"):
        cell.step_mode = "sometimes"


def test_updater_is_not_a_submodule():
    cell = Cell(LinearDense(4, 3), StubNeuron(3))
    assert cell.updater is None
    updater = cell.make_updater()
    assert cell.updater is updater
    assert updater.module is cell.connection
    assert updater.params == ("weight",)
    assert all(module is not updater for module in cell.modules())
    assert not any("potentiation" in key for key in cell.state_dict())
    # trainers write into it; applying changes the connection's weight
    before = cell.connection.weight.detach().clone()
    updater.accumulate("weight", potentiation=torch.full((3, 4), 0.25))
    updater.apply()
    torch.testing.assert_close(cell.connection.weight.detach(), before + 0.25)
    # assignment also keeps it out of the module tree
    cell.updater = None
    assert cell.updater is None
    cell.updater = updater
    assert "updater" not in dict(cell.named_modules())
    with pytest.raises(TypeError, match=r"^updater"):
        cell.updater = "not an updater"
    other = Cell(LinearDense(4, 3), StubNeuron(3))
    with pytest.raises(ValueError, match=r"^updater"):
        other.updater = updater


def test_make_updater_includes_learned_delays_and_respects_mask():
    cell = Cell(LinearDense(4, 3, delay=2.0), StubNeuron(3))
    assert cell.make_updater().params == ("weight", "delay")
    frozen = Cell(LinearDense(4, 3, delay=2.0, learn_delay=False), StubNeuron(3))
    assert frozen.make_updater().params == ("weight",)
    assert frozen.make_updater(params=("weight", "delay")).params == ("weight", "delay")
    lateral = Cell(LinearLateral(3), StubNeuron(3))
    updater = lateral.make_updater()
    updater.accumulate("weight", potentiation=torch.ones(3, 3))
    updater.apply()
    assert torch.all(lateral.connection.weight.diagonal() == 0)


@torch.no_grad()  # no autograd graph in the stub's voltage, so deepcopy works
def test_state_dict_round_trip_and_float64():
    torch.manual_seed(3)
    cell = Cell(
        LinearDense(4, 3, synapse="exponential", synapse_kwargs={"tau": 2.0}, weight_init=(0.0, 1.0)), StubNeuron(3)
    )
    for _ in range(3):
        cell(torch.ones(1, 4))
    clone = Cell(LinearDense(4, 3, synapse="exponential", synapse_kwargs={"tau": 2.0}), StubNeuron(3))
    clone.load_state_dict(cell.state_dict())
    for _ in range(3):
        assert torch.equal(cell(torch.ones(1, 4)), clone(torch.ones(1, 4)))
    wide = copy.deepcopy(cell).to(torch.float64)
    assert wide.connection.weight.dtype == torch.float64
    assert wide.connection.synapse.state.dtype == torch.float64
    assert wide.neuron.voltage.dtype == torch.float64
    assert wide(torch.ones(1, 4)).dtype == torch.float64


def test_serial_runs_cells_in_sequence():
    torch.manual_seed(0)
    first = Cell(LinearDense(4, 3, weight_init=(0.3, 1.0), batch_size=2), StubNeuron(3, batch_size=2))
    second = Cell(LinearDense(3, 2, weight_init=(0.3, 1.0), batch_size=2), StubNeuron(2, batch_size=2))
    serial = Serial(first, second)
    reference_first, reference_second = copy.deepcopy(first), copy.deepcopy(second)
    generator = torch.Generator().manual_seed(5)
    for _ in range(5):
        spikes = torch.rand(2, 4, generator=generator) < 0.7
        assert torch.equal(serial(spikes), reference_second(reference_first(spikes)))
    serial.step_mode = "window"
    assert first.step_mode == "window" and second.neuron.step_mode == "window"
    assert serial(torch.ones(3, 2, 4)).shape == (3, 2, 2)
    serial.batch_size = 1
    assert second.neuron.batch_size == 1
    serial.reset()
    assert len(serial) == 2 and serial[1] is second
    with pytest.raises(ValueError, match=r"^cells"):
        Serial(first, Cell(LinearDense(4, 2, batch_size=1), StubNeuron(2)))
    with pytest.raises(TypeError, match=r"^cells"):
        Serial(first, nn.Linear(3, 2))


def test_step_mode_reads_the_synapse_where_set_and_respects_subclasses():
    """Cell.step_mode is the connection's, whichever module was set (the read skips the properties only
    where neither the connection's class nor the synapse's redefines them)."""
    cell = Cell(LinearDense(4, 3), StubNeuron(3))
    for setter in ("cell", "connection", "synapse"):
        for mode in ("window", "single"):
            target = {"cell": cell, "connection": cell.connection, "synapse": cell.connection.synapse}[setter]
            target.step_mode = mode
            assert cell.step_mode == cell.connection.step_mode == cell.connection.synapse.step_mode == mode

    class Reporting(LinearDense):
        @property
        def step_mode(self) -> str:
            return "window"

        @step_mode.setter
        def step_mode(self, value: str) -> None:
            self.synapse.step_mode = value

    cell = Cell(Reporting(4, 3, step_mode="window"), StubNeuron(3, step_mode="window"))
    cell.connection.synapse.step_mode = "single"
    assert cell.step_mode == "window"
