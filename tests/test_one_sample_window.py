"""``STDP._one_sample_window`` (:func:`plastic.learn.one_sample_window.learn_one_sample_window`) against
the plain path it replaces, forced by switching it off: the same changes, weights and carried traces bit
for bit, for drawn shapes, rates, hyperparameters, dtypes and irregular call times; the windows it must
leave to the plain path (first window, non-finite traces, another layout) left there."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.bounding import Bounding
from plastic.functional.window_bags import compiled_pre_event_sums
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF

needs_numba = pytest.mark.skipif(compiled_pre_event_sums() is None, reason="the lane runs the compiled sums")


def _run(seed, n_in, n_out, lengths, density, params, dtype, *, lane, layout="input_major", updater_kwargs=None):
    """Train a cell window by window (``lengths`` steps each); the changes, carried traces, weight and how
    many windows the lane took."""
    torch.manual_seed(seed)
    connection = LinearDense(n_in, n_out, weight_init=(0.0, 0.5), dtype=dtype, weight_layout=layout)
    cell = Cell(connection, LIF(n_out, tau=2.0, v_threshold=0.3, dtype=dtype))
    cell.make_updater(**(updater_kwargs or {}))
    trainer = STDP(window=max(lengths), **params)
    taken = []
    if lane:  # counted: the windows the lane took
        trainer._one_sample_window = lambda *args: taken.append(STDP._one_sample_window(*args)) or taken[-1]  # type: ignore[method-assign]
    else:
        trainer._one_sample_window = lambda *args: False  # type: ignore[method-assign]  # the plain path
    trainer.register_cell("c", cell)
    generator = torch.Generator().manual_seed(seed)
    changes = []
    with torch.no_grad():
        for length in lengths:
            for _ in range(length):
                cell(torch.rand(1, n_in, generator=generator) < density)
            trainer()
            changes.append(cell.updater.delta("weight").clone())
            trainer.update()
    state = trainer.get_unit("c").state
    values = (state.trace_pre.clone(), state.trace_post.clone(), connection.weight.detach().clone())
    return changes, values, sum(taken)


def _assert_same(first, second):
    assert len(first[0]) == len(second[0])
    for change_first, change_second in zip(first[0], second[0], strict=True):
        assert torch.equal(change_first, change_second)
    for value_first, value_second in zip(first[1], second[1], strict=True):
        assert torch.equal(value_first, value_second)


@needs_numba
@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_in=st.integers(2, 40),
    n_out=st.integers(2, 12),
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    density=st.floats(0.0, 0.8),
    tau_pre=st.floats(1.0, 30.0),
    tau_post=st.floats(1.0, 30.0),
    exact=st.booleans(),
    amplitudes=st.tuples(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0)),
    etas=st.tuples(st.floats(-0.1, 0.1), st.floats(-0.1, 0.1)),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_one_sample_window_equals_the_plain_path(
    seed, n_in, n_out, lengths, density, tau_pre, tau_post, exact, amplitudes, etas, dtype
):
    params = {
        "tau_pre": tau_pre, "tau_post": tau_post, "exact": exact, "amplitude_pre": amplitudes[0],
        "amplitude_post": amplitudes[1], "eta_post": etas[0], "eta_pre": etas[1],
    }  # fmt: skip
    fast = _run(seed, n_in, n_out, lengths, density, params, dtype, lane=True)
    plain = _run(seed, n_in, n_out, lengths, density, params, dtype, lane=False)
    _assert_same(fast, plain)
    # every window but the first (no carried traces yet) goes through the lane
    assert fast[2] == len(lengths) - 1


@needs_numba
def test_one_sample_window_s2_shapes_float32():
    """The issue-15 S2 cell (784 -> 400, T = 100), a few windows: the lane's float32 values are the plain path's."""
    params = {"tau_pre": 20.0, "tau_post": 20.0, "eta_post": 1e-4, "eta_pre": 1e-4}
    fast = _run(3, 784, 400, [100] * 4, 0.05, params, torch.float32, lane=True)
    plain = _run(3, 784, 400, [100] * 4, 0.05, params, torch.float32, lane=False)
    _assert_same(fast, plain)
    assert fast[2] == 3


@needs_numba
@pytest.mark.parametrize(
    ("layout", "updater_kwargs"),
    [
        ("output_major", None),
        ("input_major", {"reduction": "max"}),
        ("input_major", {"bounding": Bounding("soft", w_min=-1.0, w_max=1.0)}),
    ],
)
def test_one_sample_window_leaves_other_cells_to_the_plain_path(layout, updater_kwargs):
    """An output-major weight, an updater whose reduction or bounding the one product does not serve: not
    taken, the plain path's values."""
    params = {"tau_pre": 5.0, "tau_post": 7.0, "eta_post": 0.01, "eta_pre": 0.02}
    kwargs = {"layout": layout, "updater_kwargs": updater_kwargs}
    fast = _run(1, 9, 5, [4, 4, 4], 0.4, params, torch.float64, lane=True, **kwargs)
    plain = _run(1, 9, 5, [4, 4, 4], 0.4, params, torch.float64, lane=False, **kwargs)
    _assert_same(fast, plain)
    assert fast[2] == 0


@needs_numba
def test_one_sample_window_refuses_non_finite_traces_as_the_plain_path():
    """A NaN trace set in place after a window: the lane leaves it to the plain path, which refuses it
    with its message; nothing is learnt and the traces are as they were."""
    connection = LinearDense(6, 3, weight_layout="input_major")
    cell = Cell(connection, LIF(3, v_threshold=0.1))
    updater = cell.make_updater()
    trainer = STDP(window=4)
    trainer.register_cell("c", cell)
    state = trainer.get_unit("c").state
    with torch.no_grad():
        for _ in range(2):  # the second window goes through the lane (carried traces)
            for _ in range(4):
                cell(torch.ones(1, 6, dtype=torch.bool))
            trainer()
            trainer.update()
        state.trace_post[0, 1] = float("inf")
        before = (state.trace_pre.clone(), state.trace_post.clone())
        for _ in range(4):
            cell(torch.ones(1, 6, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"^trace_post: expected finite"):
            trainer()
    assert not updater.has_pending("weight")
    assert torch.equal(state.trace_pre, before[0])
    assert torch.equal(state.trace_post, before[1])


@needs_numba
def test_one_sample_window_after_a_state_dict_load_and_a_copy():
    """Traces replaced through a state dict (same tensors, new values) after the lane kept their arrays:
    the same values as the plain path from the same state; the kept plan is not copied with the state."""
    params = {"tau_pre": 4.0, "tau_post": 6.0, "eta_post": 0.01, "eta_pre": 0.03}
    results = []
    for lane in (True, False):
        torch.manual_seed(0)
        connection = LinearDense(7, 4, weight_init=(0.0, 0.5), dtype=torch.float64, weight_layout="input_major")
        cell = Cell(connection, LIF(4, tau=2.0, v_threshold=0.3, dtype=torch.float64))
        cell.make_updater()
        trainer = STDP(window=5, **params)
        if not lane:
            trainer._one_sample_window = lambda *args: False  # type: ignore[method-assign]
        trainer.register_cell("c", cell)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for window in range(4):
                for _ in range(5):
                    cell(torch.rand(1, 7, generator=generator) < 0.5)
                trainer()
                trainer.update()
                if window == 1:
                    saved = copy.deepcopy(trainer.state_dict())
                    saved["states.c.trace_pre"] = saved["states.c.trace_pre"] * 0.5 + 0.25
                    trainer.load_state_dict(saved)
        state = trainer.get_unit("c").state
        if lane:
            assert copy.deepcopy(state).__dict__["one_sample_window_plan"] is None
        results.append((state.trace_pre.clone(), state.trace_post.clone(), connection.weight.detach().clone()))
    for fast, plain in zip(*results, strict=True):
        assert torch.equal(fast, plain)


@needs_numba
def test_spike_arrays_follow_the_recording():
    """A window viewing a ring (a slice of the kept array), a copied window, and a ring replaced by
    another tensor or given new memory: always the window's own values."""
    from plastic.learn.one_sample_window import OneSampleWindowPlan, compiled_window_traces

    params = STDP.Params(tau_pre=5.0, tau_post=5.0)
    plan = OneSampleWindowPlan(params, 1.0, 3, 4, 2, torch.float32, None, compiled_window_traces())
    generator = torch.Generator().manual_seed(0)
    ring = torch.rand(6, 1, 4, generator=generator) < 0.5
    for start in (0, 2, 3):
        window = ring[start : start + 3]
        assert (plan.spike_array("pre", window, 3, 4) == window.reshape(3, 4).numpy()).all()
    copied = ring[[5, 0, 1]]
    assert (plan.spike_array("pre", copied, 3, 4) == copied.reshape(3, 4).numpy()).all()
    ring.copy_(~ring)  # new values in place: the kept array is the same memory
    assert (plan.spike_array("pre", ring[1:4], 3, 4) == ring[1:4].reshape(3, 4).numpy()).all()
    ring.set_(torch.rand(6, 1, 4, generator=generator) < 0.5)  # new memory: made anew
    assert (plan.spike_array("pre", ring[2:5], 3, 4) == ring[2:5].reshape(3, 4).numpy()).all()
    other = torch.rand(6, 1, 4, generator=generator) < 0.5  # another ring
    assert (plan.spike_array("pre", other[0:3], 3, 4) == other[0:3].reshape(3, 4).numpy()).all()
