"""The per-step path, second round (issue 15, S2 and B4): deferred synapse currents, the attribute
reader of the monitors, the neuron's kept state layout, and the layout test the gather relies on.

Every fast path is checked against the plain path it replaces, on drawn shapes, rates and
parameters: the same module stepped through its plain forward (a forward pre hook on a synapse
sends its connection through the plain call), ``operator.attrgetter``, the neuron's full checks,
``Tensor.is_contiguous``.
"""

from __future__ import annotations

import copy
import math
import operator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.bilinear import event_positions
from plastic.functional.event_forward import is_input_major
from plastic.functional.neuron_equations import step_operand
from plastic.neural.buffers import attribute_reader
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense, LinearLateral
from plastic.neural.neurons import LIF, AdaptiveLIF
from plastic.neural.synapses import DeltaCurrent, ExponentialCurrent

# ---------------------------------------------------------------------------- deferred synapse steps


def _synapse_record(synapse: DeltaCurrent) -> dict[str, object]:
    """Everything a reader sees of a synapse's last step (each read settles a deferred one)."""
    return {
        "spike": synapse.spike.clone(),
        "state": synapse.state.clone(),
        "current": synapse.current.clone(),
        "spike_history": synapse.spike_history.data.clone(),
        "current_history": synapse.current_history.data.clone(),
        "count": (synapse.spike_history.count, synapse.current_history.count),
        "read": synapse.current_at(torch.zeros(())).clone(),
        "state_dict": {
            key: value.clone() if isinstance(value, torch.Tensor) else value
            for key, value in synapse.state_dict().items()
        },
    }


def _assert_same(first: dict[str, object], second: dict[str, object]) -> None:
    assert first.keys() == second.keys()
    for key, value in first.items():
        other = second[key]
        if isinstance(value, dict):
            _assert_same(value, other)  # type: ignore[arg-type]
        elif isinstance(value, torch.Tensor):
            assert isinstance(other, torch.Tensor) and value.dtype == other.dtype, key
            assert torch.equal(value, other), key
        else:
            assert value == other, key


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=2),
    steps=st.integers(1, 6),
    density=st.floats(0.0, 1.0),
    amplitude=st.sampled_from([1.0, -0.3, 2.5]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    read_every=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_pass_through_steps_read_as_plain_steps(batch, shape, steps, density, amplitude, dtype, read_every, seed):
    generator = torch.Generator().manual_seed(seed)
    plain = DeltaCurrent(shape, amplitude, batch_size=batch, dtype=dtype)
    deferred = DeltaCurrent(shape, amplitude, batch_size=batch, dtype=dtype)
    trains = torch.rand(steps, batch, *shape, generator=generator) < density
    for index, step in enumerate(trains):
        currents = plain(step)
        fired = deferred.pass_through(step)
        assert fired is step and deferred.spike is step  # the checked spikes, kept as the plain step keeps them
        if index % read_every == 0:  # reads between steps, or several deferred steps in a row
            _assert_same(_synapse_record(deferred), _synapse_record(plain))
            assert torch.equal(deferred.current, currents)
    _assert_same(_synapse_record(deferred), _synapse_record(plain))
    # a plain step after deferred ones, and the same after a dtype change of a pending step
    deferred.pass_through(trains[-1])
    plain(trains[-1])
    deferred.double()
    plain.double()
    _assert_same(_synapse_record(deferred), _synapse_record(plain))
    assert deferred(trains[0].double()).dtype == torch.float64  # float spikes take the plain forward


def test_pass_through_declines_what_it_does_not_keep_and_bad_input():
    synapse = DeltaCurrent(4, batch_size=2)
    spikes = torch.zeros(2, 4, dtype=torch.bool)
    assert synapse.pass_through(spikes.float()) is None  # float spikes: the plain forward
    assert synapse.pass_through(torch.zeros(3, 4, dtype=torch.bool)) is None  # wrong batch: forward raises
    with pytest.raises(ValueError, match=r"^spikes"):
        synapse(torch.zeros(3, 4, dtype=torch.bool))
    assert DeltaCurrent(4, batch_size=2, max_delay=2.0).pass_through(spikes) is None  # a history to keep
    assert DeltaCurrent(4, batch_size=2, step_mode="window").pass_through(spikes.unsqueeze(0)) is None
    assert ExponentialCurrent(4, 5.0, batch_size=2).pass_through(spikes) is None  # a current with memory


def test_deferred_step_is_reset_loaded_and_copied_as_a_plain_one():
    spikes = torch.tensor([[True, False, True]])
    synapse = DeltaCurrent(3, amplitude=2.0)
    synapse.pass_through(spikes)
    twin = copy.deepcopy(synapse)
    assert torch.equal(twin.state, torch.tensor([[2.0, 0.0, 2.0]]))
    saved = synapse.state_dict()
    assert torch.equal(saved["state"], torch.tensor([[2.0, 0.0, 2.0]]))
    synapse.pass_through(~spikes)
    synapse.load_state_dict(saved)  # the loaded state replaces the pending step
    assert torch.equal(synapse.state, torch.tensor([[2.0, 0.0, 2.0]]))
    synapse.pass_through(~spikes)
    synapse.reset()
    assert not synapse.state.any() and not synapse.spike.any() and synapse.spike_history.count == 0
    synapse.pass_through(spikes)
    synapse.state = torch.full((1, 3), 5.0)  # an assignment is not overwritten by the pending step
    assert torch.equal(synapse.state, torch.full((1, 3), 5.0))


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 3),
    n_in=st.integers(1, 30),
    n_out=st.integers(1, 6),
    steps=st.integers(1, 5),
    density=st.floats(0.0, 0.6),
    layout=st.sampled_from(["output_major", "input_major"]),
    lateral=st.booleans(),
    bias=st.booleans(),
    amplitude=st.sampled_from([1.0, 0.6]),
    seed=st.integers(0, 2**16),
)
def test_connections_step_through_deferred_synapses_as_through_plain_ones(
    batch, n_in, n_out, steps, density, layout, lateral, bias, amplitude, seed
):
    generator = torch.Generator().manual_seed(seed)
    kwargs = {"batch_size": batch, "bias": bias, "dtype": torch.float64, "weight_layout": layout}
    kwargs["synapse_kwargs"] = {"amplitude": amplitude}

    def build():
        torch.manual_seed(seed)
        return LinearLateral(n_in, **kwargs) if lateral else LinearDense(n_in, n_out, **kwargs)

    fast, plain = build(), build()
    # a hook on the synapse sends its connection through the plain call (the synapse's own forward)
    plain.synapse.register_forward_pre_hook(lambda module, args: None)
    trains = torch.rand(steps, batch, n_in, generator=generator) < density
    with torch.no_grad(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("plastic.neural.connections.GATHER_MIN_WORK", 0)  # the gather at every size
        for step in trains:
            out, expected = fast(step), plain(step)
            torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
            assert fast.synspike is step and torch.equal(fast.synspike, plain.synspike)
            assert torch.equal(fast.syncurrent, plain.syncurrent)
            assert torch.equal(fast.synapse.state, plain.synapse.state)
    assert torch.equal(fast.synapse.current_history.data, plain.synapse.current_history.data)
    fast.reset()
    assert not fast.syncurrent.any() and not fast.synapse.state.any()


# ---------------------------------------------------------------------------- attribute reader


def test_attribute_reader_reads_what_getattr_reads():
    cell = Cell(LinearDense(5, 3, weight_layout="input_major"), LIF(3, v_threshold=0.1))
    updater = cell.make_updater()
    with torch.no_grad():
        cell(torch.ones(1, 5, dtype=torch.bool))
    paths = [
        "connection.synspike",  # a buffer below a submodule
        "connection.syncurrent",  # deferred: read through the connection's __getattr__
        "connection.synapse.state",  # deferred on the synapse
        "connection.weight",  # a parameter
        "neuron.spike",
        "neuron.voltage",
        "neuron.shape",  # a plain attribute
        "connection.step_mode",  # a property
        "updater",  # a property of the cell
        "connection.synapse.spike_history.data",
    ]
    for path in paths:
        assert attribute_reader(path)(cell) is operator.attrgetter(path)(cell), path
    # a module with its own __getattr__ (the updater's split buffers) is read through getattr
    assert torch.equal(attribute_reader("weight_potentiation")(updater), updater.weight_potentiation)
    # an instance attribute shadows nothing it should not, and errors are getattr's
    with pytest.raises(AttributeError):
        attribute_reader("connection.missing")(cell)
    assert attribute_reader("training")(cell) is True


# ---------------------------------------------------------------------------- the neuron's state layout


@pytest.mark.parametrize("kind", ["lif", "adaptive"])
def test_neuron_checks_a_state_set_from_outside(kind):
    neuron = LIF(4, batch_size=2) if kind == "lif" else AdaptiveLIF(4, batch_size=2, refractory=2.0)
    inputs = torch.full((2, 4), 3.0)
    with torch.no_grad():
        neuron(inputs)
        neuron(inputs)  # the state this module stored: its layout is known
        neuron.voltage = torch.zeros(3, 4)  # set from outside: checked again
        with pytest.raises(ValueError, match=r"^state.voltage"):
            neuron(inputs)
        neuron.voltage = torch.zeros(2, 4)
        if kind == "adaptive":
            neuron.theta = torch.zeros(5)
            with pytest.raises(ValueError, match=r"^state.theta"):
                neuron(inputs)
            neuron.theta = torch.zeros(4)
            neuron.refractory_remaining = torch.zeros(2, 4)
            with pytest.raises(TypeError, match=r"^state.refractory_remaining"):
                neuron(inputs)
            neuron.refractory_remaining = torch.zeros(2, 4, dtype=torch.int32)
        spikes = neuron(inputs)
        assert spikes.shape == (2, 4)
        with pytest.raises(ValueError, match=r"^inputs"):
            neuron(torch.full((2, 4), math.nan))


# ---------------------------------------------------------------------------- layouts and events


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 9), columns=st.integers(1, 9), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_event_positions_are_the_flat_nonzeros(rows, columns, density, seed):
    events = torch.rand(rows, columns, generator=torch.Generator().manual_seed(seed)) < density
    assert torch.equal(event_positions(events), events.reshape(-1).nonzero().view(-1))
    assert torch.equal(event_positions(events.T), events.T.reshape(-1).nonzero().view(-1))  # a strided view


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    layout=st.sampled_from(["contiguous", "transposed", "strided rows", "strided columns"]),
)
def test_is_input_major_is_the_transposes_contiguity(size, layout):
    outputs, inputs = size
    if layout == "contiguous":
        weight = torch.empty(outputs, inputs)
    elif layout == "transposed":
        weight = torch.empty(inputs, outputs).T
    elif layout == "strided rows":
        weight = torch.empty(inputs, 2 * outputs).T[::2]
    else:
        weight = torch.empty(2 * inputs, outputs)[::2].T
    assert is_input_major(weight) == weight.T.is_contiguous()
    assert not is_input_major(torch.empty(3)) and not is_input_major(torch.empty(2, 2, 2))


# ---------------------------------------------------------------------------- numbers as 0-d operands


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64]),
    value=st.one_of(st.floats(-1e3, 1e3, allow_subnormal=False), st.sampled_from([0.0, -0.0, 0.3, 1e-7, 0.9999999])),
    seed=st.integers(0, 2**16),
)
def test_step_operands_compute_what_the_numbers_compute(dtype, value, seed):
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        tensor = (torch.randn(40, generator=generator, dtype=torch.float64) * 3).to(dtype)
        number: float | int = value
    else:
        tensor = torch.randint(-5, 6, (40,), generator=generator, dtype=dtype)
        number = int(value) % 7
    operand = step_operand(number, tensor)
    for operation in (torch.mul, torch.add, torch.sub, torch.ge, torch.gt):
        expected, result = operation(tensor, number), operation(tensor, operand)
        assert result.dtype == expected.dtype and torch.equal(result, expected), operation
    mask = torch.rand(40, generator=generator) < 0.5
    assert torch.equal(tensor.masked_fill(mask, operand), tensor.masked_fill(mask, number))
    if isinstance(number, float) and number == 0 and dtype.is_floating_point:
        filled = tensor.masked_fill(mask, operand)[mask]  # the sign of a zero is kept (-0.0 is not +0.0)
        assert all(math.copysign(1.0, x) == math.copysign(1.0, number) for x in filled.tolist())
