"""Fast paths of a monitored, trained single-step run (issue 15, S2), each against its plain path.

* ``WindowReducer.record_step`` (a monitor's every step straight into the ring) against the plain
  ``forward`` of another reducer fed the same observations: the same windows, totals and refusals;
* ``plain_single_step`` (a cell's step without the modules' call dispatch) against the same cell
  whose neuron carries a hook (the plain calls): outputs and every state a reader sees;
* ``STDP._pre_event_window`` (the trainer's one-product window of an input-major one-sample cell
  without the functional call's argument checks) against the functional call it replaces, forced by
  switching the fast path off: the same accumulator and carried traces, bit for bit (float64).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell, plain_single_step
from plastic.neural.connections import LinearDense, LinearLateral
from plastic.neural.neurons import LIF, AdaptiveLIF
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import WindowReducer

# ----------------------------------------------------------------------------
# WindowReducer.record_step
# ----------------------------------------------------------------------------

_OBSERVATIONS = st.lists(
    st.tuples(
        st.sampled_from([(2, 3), (2, 3), (2, 3), (3, 3), (3,)]),  # mostly the fixed shape
        st.sampled_from([torch.bool, torch.bool, torch.float32, torch.float64]),
        st.booleans(),  # requires grad (floating values only)
        st.integers(0, 2**16),
    ),
    min_size=1,
    max_size=12,
)


def _value(shape, dtype, requires_grad, seed):
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator) < 0.5
    value = torch.rand(shape, generator=generator, dtype=dtype)
    return value.requires_grad_() if requires_grad else value


@settings(max_examples=60, deadline=None)
@given(observations=_OBSERVATIONS, steps=st.integers(1, 5))
def test_record_step_observes_what_forward_observes(observations, steps):
    """A step recorded where it fits, forward otherwise, equals forward alone: windows, totals, refusals."""
    fast, plain = WindowReducer(steps), WindowReducer(steps)
    for shape, dtype, requires_grad, seed in observations:
        value = _value(shape, dtype, requires_grad, seed)
        refused = []
        for reducer, through_record in ((fast, True), (plain, False)):
            before = (reducer.total, reducer.shape, reducer.history.data.clone())
            try:
                if not (through_record and reducer.record_step(value)):
                    reducer(value)
            except (TypeError, ValueError) as error:
                refused.append(type(error))
                # refused: nothing changed
                assert (reducer.total, reducer.shape) == before[:2]
                assert torch.equal(reducer.history.data, before[2])
        assert len(refused) in (0, 2) and len(set(refused)) <= 1
        assert fast.total == plain.total and fast.shape == plain.shape
        if plain.shape is not None:
            assert fast.peek().dtype == plain.peek().dtype
            assert torch.equal(fast.peek(), plain.peek())


def test_record_step_takes_only_steps_that_fit():
    reducer = WindowReducer(3)
    step = torch.ones(2, dtype=torch.bool)
    assert not reducer.record_step(step)  # nothing fixed yet: forward allocates
    reducer(step)
    assert reducer.record_step(~step) and reducer.total == 2
    for other in (torch.ones(3, dtype=torch.bool), torch.ones(2), torch.ones(1, 2, dtype=torch.bool)):
        assert not reducer.record_step(other) and reducer.total == 2
    assert not reducer.record_step(torch.ones(2, requires_grad=True))
    reducer.clear()
    assert not reducer.record_step(step) and reducer.total == 0


@pytest.mark.parametrize("grad", [False, True])
def test_cell_monitors_record_through_the_fast_path_in_either_grad_mode(grad):
    """The trainers' monitors on a cell take record_step for bool steps, with or without grad mode."""
    cell = Cell(LinearDense(5, 3), LIF(3, v_threshold=0.1))
    pre = Monitor(WindowReducer(4), cell, "connection.synspike")
    post = Monitor(WindowReducer(4), cell, "neuron.spike")
    trains = torch.rand(6, 1, 5, generator=torch.Generator().manual_seed(1)) < 0.6
    seen_pre, seen_post = [], []
    with torch.set_grad_enabled(grad):
        for step in trains:
            cell(step)
            seen_pre.append(cell.connection.synspike.clone())
            seen_post.append(cell.neuron.spike.clone())
    assert torch.equal(pre.peek(), torch.stack(seen_pre[-4:]))
    assert torch.equal(post.peek(), torch.stack(seen_post[-4:]))
    assert pre.reducer.total == post.reducer.total == 6


def test_window_mode_values_still_go_through_the_window_path():
    """A value of the sample's shape seen in window mode is a window of its first dimension, as before."""
    cell = Cell(LinearDense(4, 3), LIF(3))
    voltage = Monitor(WindowReducer(5), cell, "neuron.voltage")
    cell(torch.zeros(1, 4, dtype=torch.bool))  # fixes the sample shape (1, 3)
    cell.step_mode = "window"
    with pytest.raises(ValueError, match=r"^value"):
        cell(torch.zeros(2, 1, 4, dtype=torch.bool))  # voltage (1, 3) read as a window of 1 step of (3,)
    assert voltage.reducer.total == 1


# ----------------------------------------------------------------------------
# STDP._pre_event_window
# ----------------------------------------------------------------------------


def _trained(seed, n_in, n_out, windows, steps, density, params, *, fast):
    torch.manual_seed(seed)
    connection = LinearDense(n_in, n_out, weight_init=(0.0, 0.5), dtype=torch.float64, weight_layout="input_major")
    cell = Cell(connection, LIF(n_out, tau=2.0, v_threshold=0.3, dtype=torch.float64))
    cell.make_updater()
    trainer = STDP(window=steps, **params)
    taken = []
    trainer._one_sample_window = lambda *args: False  # type: ignore[method-assign]  # its own tests: test_one_sample_window
    if fast:  # counted: the fast path is what this run takes
        trainer._pre_event_window = lambda *args: taken.append(STDP._pre_event_window(*args)) or taken[-1]  # type: ignore[method-assign]
    else:
        trainer._pre_event_window = lambda *args: None  # type: ignore[method-assign]  # the plain path
    trainer.register_cell("c", cell)
    trains = torch.rand(windows * steps, 1, n_in, generator=torch.Generator().manual_seed(seed)) < density
    changes = []
    with torch.no_grad():
        for block in trains.split(steps):
            for step in block:
                cell(step)
            trainer()
            changes.append(cell.updater.delta("weight").clone())
            trainer.update()
    state = trainer.get_unit("c").state
    if fast and n_in > 1 and n_out > 1:  # (one row or column: both layouts are contiguous, the plain path runs)
        assert len(taken) == windows and all(result is not None for result in taken)
    return changes, state.trace_pre.clone(), state.trace_post.clone(), connection.weight.detach().clone()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_in=st.integers(1, 30),
    n_out=st.integers(1, 9),
    windows=st.integers(1, 3),
    steps=st.integers(1, 15),
    density=st.floats(0.0, 0.8),
    tau_pre=st.floats(1.0, 30.0),
    tau_post=st.floats(1.0, 30.0),
    exact=st.booleans(),
    amplitudes=st.tuples(st.floats(0.1, 2.0), st.floats(0.1, 2.0)),
    etas=st.tuples(st.floats(-0.1, 0.1), st.floats(-0.1, 0.1)),
)
def test_trainer_pre_event_window_equals_the_functional_call(
    seed, n_in, n_out, windows, steps, density, tau_pre, tau_post, exact, amplitudes, etas
):
    params = {
        "tau_pre": tau_pre, "tau_post": tau_post, "exact": exact, "amplitude_pre": amplitudes[0],
        "amplitude_post": amplitudes[1], "eta_post": etas[0], "eta_pre": etas[1],
    }  # fmt: skip
    fast = _trained(seed, n_in, n_out, windows, steps, density, params, fast=True)
    plain = _trained(seed, n_in, n_out, windows, steps, density, params, fast=False)
    for change_fast, change_plain in zip(fast[0], plain[0], strict=True):
        assert torch.equal(change_fast, change_plain)
    for value_fast, value_plain in zip(fast[1:], plain[1:], strict=True):
        assert torch.equal(value_fast, value_plain)


def test_trainer_pre_event_window_refuses_carried_traces_that_are_not_finite():
    """A NaN trace set through a state dict is refused as the functional call refuses it, nothing learnt."""
    connection = LinearDense(6, 3, weight_layout="input_major")
    cell = Cell(connection, LIF(3, v_threshold=0.1))
    updater = cell.make_updater()
    trainer = STDP(window=4)
    trainer.register_cell("c", cell)
    with torch.no_grad():
        for _ in range(4):
            cell(torch.ones(1, 6, dtype=torch.bool))
        trainer()
        trainer.update()
        state = trainer.get_unit("c").state
        state.trace_pre[0, 2] = float("nan")
        for _ in range(4):
            cell(torch.ones(1, 6, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"^trace_pre: expected finite"):
            trainer()
    assert not updater.has_pending("weight")
    assert torch.equal(updater.pending("weight")[0], torch.zeros(3, 6))


# ----------------------------------------------------------------------------
# plain_single_step: a cell's step without the modules' dispatch
# ----------------------------------------------------------------------------


def _cell_record(cell):
    """What a reader sees of a cell after a step (reads settle a deferred synapse step)."""
    neuron, connection = cell.neuron, cell.connection
    record = {
        "voltage": neuron.voltage.clone(),
        "spike": neuron.spike.clone(),
        "synspike": connection.synspike.clone(),
        "syncurrent": connection.syncurrent.clone(),
        "synapse_state": connection.synapse.state.clone(),
    }
    for name in ("refractory_remaining", "theta"):
        value = neuron._buffers.get(name)
        if value is not None:
            record[name] = value.clone()
    return record


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    n_in=st.integers(1, 40),
    n_out=st.integers(1, 8),
    steps=st.integers(1, 6),
    density=st.floats(0.0, 1.0),
    layout=st.sampled_from(["output_major", "input_major"]),
    lateral=st.booleans(),
    bias=st.booleans(),
    adaptive=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    read_every=st.integers(1, 3),
    with_current=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_plain_single_step_steps_a_cell_as_its_modules_calls_do(
    batch, n_in, n_out, steps, density, layout, lateral, bias, adaptive, dtype, read_every, with_current, seed
):
    """The cell's step without dispatch against the same cell whose neuron has a hook (the plain calls)."""
    n_out = n_in if lateral else n_out

    def build():
        torch.manual_seed(seed)
        kwargs = {"batch_size": batch, "bias": bias, "dtype": dtype, "weight_layout": layout}
        connection = LinearLateral(n_in, **kwargs) if lateral else LinearDense(n_in, n_out, **kwargs)
        neuron = (
            AdaptiveLIF(n_out, batch_size=batch, dtype=dtype, refractory=2.0, theta_plus=0.05, v_threshold=0.2)
            if adaptive
            else LIF(n_out, batch_size=batch, dtype=dtype, v_threshold=0.2)
        )
        return Cell(connection, neuron)

    fast, plain = build(), build()
    plain.neuron.register_forward_pre_hook(lambda module, args: None)  # the modules' plain calls
    generator = torch.Generator().manual_seed(seed)
    trains = torch.rand(steps, batch, n_in, generator=generator) < density
    # another input onto the same neurons (lateral inhibition), or none
    currents = [None if with_current is False else torch.randn(batch, n_out, generator=generator, dtype=dtype)
                for _ in range(steps)]  # fmt: skip
    with torch.no_grad():
        for index, (step, current) in enumerate(zip(trains, currents, strict=True)):
            out = plain_single_step(fast.connection, fast.neuron, step, current)
            assert out is not None
            expected = plain(step) if current is None else plain(step, current)
            assert out.dtype == expected.dtype and torch.equal(out, expected)
            if index % read_every == 0:  # reads between steps, or deferred synapse steps in a row
                first, second = _cell_record(fast), _cell_record(plain)
                assert first.keys() == second.keys()
                for key, value in first.items():
                    assert torch.equal(value, second[key]), key
        assert torch.equal(fast(trains[0]), plain(trains[0]))  # through Cell.forward
        if currents[0] is not None:
            assert torch.equal(fast(trains[0], currents[0]), plain(trains[0], currents[0]))


def test_plain_single_step_is_not_taken_where_the_calls_do_more():
    cell = Cell(LinearDense(6, 3, weight_layout="input_major"), LIF(3))
    spikes = torch.ones(1, 6, dtype=torch.bool)
    with torch.no_grad():
        assert plain_single_step(cell.connection, cell.neuron, spikes) is not None
        handle = cell.connection.synapse.register_forward_hook(lambda module, args, out: None)
        assert plain_single_step(cell.connection, cell.neuron, spikes) is None
        handle.remove()
        cell.neuron.step_mode = "window"
        assert plain_single_step(cell.connection, cell.neuron, spikes) is None
        cell.neuron.step_mode = "single"
        delayed = Cell(LinearDense(6, 3, delay=2.0), LIF(3))
        assert plain_single_step(delayed.connection, delayed.neuron, spikes) is None
        # bad input: refused with the plain path's error, nothing changed
        voltage = cell.neuron.voltage.clone()
        with pytest.raises(ValueError, match=r"^spikes"):
            cell(torch.ones(2, 6, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"^inputs: expected finite"):
            cell.connection.weight.fill_(float("nan"))
            cell(spikes)
        assert torch.equal(cell.neuron.voltage, voltage)


def test_plain_single_step_with_a_current_checks_it_first():
    cell = Cell(LinearDense(6, 3, weight_layout="input_major"), LIF(3))
    spikes = torch.ones(1, 6, dtype=torch.bool)
    with torch.no_grad():
        # a current the fast step cannot take as it is: not taken, Cell.forward's checks and messages
        for current in (torch.zeros(1, 3, dtype=torch.float64), torch.zeros(2, 3), torch.zeros(3)):
            assert plain_single_step(cell.connection, cell.neuron, spikes, current) is None
        with pytest.raises(TypeError, match=r"^current: expected dtype torch.float32"):
            cell(spikes, torch.zeros(1, 3, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"^current: expected shape \(1, 3\)"):
            cell(spikes, torch.zeros(2, 3))
        # NaN or inf: refused before the connection or the neuron steps
        cell(spikes)
        before = _cell_record(cell)
        for bad in (float("nan"), float("inf")):
            current = torch.tensor([[0.0, bad, 0.0]])
            with pytest.raises(ValueError, match=r"^current: expected finite values"):
                plain_single_step(cell.connection, cell.neuron, torch.zeros(1, 6, dtype=torch.bool), current)
            with pytest.raises(ValueError, match=r"^current: expected finite values"):
                cell(torch.zeros(1, 6, dtype=torch.bool), current)
        after = _cell_record(cell)
        for key, value in before.items():
            assert torch.equal(value, after[key]), key
        # the current is added to the drive: one input's weights 0.25, the current -0.1 and 0.5
        cell.connection.weight.fill_(0.25)
        cell.reset()
        one = torch.zeros(1, 6, dtype=torch.bool)
        one[0, 2] = True
        plain_single_step(cell.connection, cell.neuron, one, torch.tensor([[-0.1, 0.5, 0.0]]))
        tau = cell.neuron.params.tau
        # LIF from rest (0) with decay_input: v = (drive + current) / tau
        expected = torch.tensor([[0.15, 0.75, 0.25]]) / tau
        torch.testing.assert_close(cell.neuron.voltage, expected)
