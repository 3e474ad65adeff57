"""The compiled sums of a one-sample STDP window (plastic.functional.window_bags, issue 15, S2).

References: the torch operations they replace (index_add_, embedding_bag and addmm: the plain
path), the sums bit for bit and the change to rounding; a hand-computed window; the trainer's
weights with the plain path. (The pair-by-pair brute force of tests/test_pre_event_product.py runs
through the compiled path where numba is installed.)
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import plastic.functional.stdp_engine as stdp_engine
import plastic.functional.window_bags as window_bags
import plastic.learn.stdp as stdp_module
from plastic.functional.stdp_engine import pre_event_tables, uses_pre_event_product
from plastic.functional.window_bags import pre_event_change, pre_event_sums, sums_write_into
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.neural.updater import Updater

numpy = pytest.importorskip("numpy")

COMPILED = window_bags.compiled_pre_event_sums()
KERNELS = ["plain", "compiled"] if COMPILED is not None else ["plain"]


def _use(monkeypatch: pytest.MonkeyPatch, kernel: str) -> None:
    """Make pre_event_change take the torch operations, the plain-Python sums or the compiled ones."""
    chosen = {"torch": None, "plain": pre_event_sums, "compiled": COMPILED}[kernel]
    monkeypatch.setattr(window_bags, "compiled_pre_event_sums", lambda: chosen)


def _window(steps, n_in, n_out, density_pre, density_post, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, n_in, generator=generator) < density_pre
    post = torch.rand(steps, n_out, generator=generator) < density_post
    tables = pre_event_tables(steps, 0.9, 0.8, 1.0, 1.5, 0.01, 0.012, dtype, torch.device("cpu"), n_in)
    return pre, post, tables


def _carried(n_in, n_out, float64, carried_post, seed):
    dtype = torch.float64 if float64 else torch.float32
    generator = torch.Generator().manual_seed(seed + 1)
    trace_pre = torch.rand(n_in, generator=generator, dtype=torch.float64).to(dtype)
    carried = -0.012 * torch.rand(n_out, generator=generator, dtype=torch.float64).to(dtype) if carried_post else None
    return trace_pre, carried


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 30),
    n_in=st.integers(1, 40),
    n_out=st.integers(1, 20),
    density_pre=st.floats(0.0, 1.0),
    density_post=st.floats(0.0, 1.0),
    float64=st.booleans(),
    carried_post=st.booleans(),
    with_out=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_compiled_change_is_the_torch_operations(
    kernel, steps, n_in, n_out, density_pre, density_post, float64, carried_post, with_out, seed
):
    """The sums bit for bit; the change to the rounding of its carried terms (BLAS's addmm against
    one rounded product and sum each)."""
    dtype = torch.float64 if float64 else torch.float32
    pre, post, tables = _window(steps, n_in, n_out, density_pre, density_post, dtype, seed)
    trace_pre, carried = _carried(n_in, n_out, float64, carried_post, seed)
    with pytest.MonkeyPatch.context() as patch:
        _use(patch, "torch")
        expected, expected_decayed, expected_sums = pre_event_change(pre, post, tables, trace_pre, carried, None)
        main = pre_event_change(pre, post, tables, torch.zeros_like(trace_pre), None, None)[0]  # the sums alone
        _use(patch, kernel)
        out = torch.full((n_in, n_out), float("nan"), dtype=dtype) if with_out else None  # every element written
        change, post_decayed, sums = pre_event_change(pre, post, tables, trace_pre, carried, out)
    assert out is None or change is out
    assert torch.equal(post_decayed, expected_decayed) and torch.equal(sums, expected_sums)
    assert change.dtype == dtype and change.shape == (n_in, n_out)
    # a few roundings of the largest term that enters
    scale = float(torch.cat([main.abs().flatten(), expected.abs().flatten(), torch.ones(1, dtype=dtype)]).max())
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(change, expected, rtol=0.0, atol=8 * eps * scale)
    # without carried terms the change is the sums themselves, bit for bit (x_pre r with x_pre = 0 adds +0)
    with pytest.MonkeyPatch.context() as patch:
        _use(patch, kernel)
        alone = pre_event_change(pre, post, tables, torch.zeros_like(trace_pre), None, None)[0]
    assert torch.equal(alone, main)


@pytest.mark.parametrize("kernel", ["torch", *KERNELS])
def test_change_of_a_hand_computed_window(kernel, monkeypatch):
    """T = 3, two inputs, two neurons: every sum and the carried terms written out by hand."""
    pre = torch.tensor([[True, False], [True, False], [False, False]])  # input 0 at steps 0, 1; input 1 silent
    post = torch.tensor([[False, True], [False, False], [True, True]])  # neuron 0 at 2; neuron 1 at 0 and 2
    _, _, tables = _window(3, 2, 2, 0.0, 0.0, torch.float64, 0)
    f, c, p = tables.filter_columns.tolist(), tables.carry_columns.tolist(), tables.post_powers.tolist()
    trace_pre, carried = (
        torch.tensor([0.5, 0.25], dtype=torch.float64),
        torch.tensor([-0.125, -0.0625], dtype=torch.float64),
    )
    _use(monkeypatch, kernel)
    change, post_decayed, sums = pre_event_change(pre, post, tables, trace_pre, carried, None)
    rows = [[f[u][2], f[u][0] + f[u][2]] for u in range(4)]  # Q[u, o] for u < 3, r[o] at u = 3
    z = [c[0][1] + c[1][1], 0.0]
    main = [[rows[0][0] + rows[1][0], rows[0][1] + rows[1][1]], [0.0, 0.0]]
    expected = [
        [(main[i][o] + [0.5, 0.25][i] * rows[3][o]) + z[i] * [-0.125, -0.0625][o] for o in range(2)] for i in range(2)
    ]
    assert post_decayed.tolist() == [p[2], p[0] + p[2]]
    assert sums.tolist() == [[c[0][0] + c[1][0], z[0]], [0.0, 0.0]]
    if kernel == "torch":  # BLAS's order for the carried terms
        torch.testing.assert_close(change, torch.tensor(expected, dtype=torch.float64), rtol=1e-15, atol=1e-15)
    else:
        assert change.tolist() == expected


def _documented_sums(pre, post, filter_rows, post_powers, carry_columns, trace_pre, carried_post):
    """The module docstring's sums written out in plain Python over numpy scalars of the tables' dtype
    (each sum from zero, in the documented order; each product and sum rounded in the dtype)."""
    steps, n_in = pre.shape
    n_out = post.shape[1]
    zero = filter_rows.dtype.type(0)
    rows = [[zero] * n_out for _ in range(steps + 1)]
    post_decayed = [zero] * n_out
    for o in range(n_out):
        for t in range(steps):
            if post[t, o]:
                for u in range(steps + 1):
                    rows[u][o] = rows[u][o] + filter_rows[t, u]
                post_decayed[o] = post_decayed[o] + post_powers[t]
    change, sums = [], []
    for i in range(n_in):
        main, entering, seen = [zero] * n_out, zero, zero
        for u in range(steps):
            if pre[u, i]:
                main = [main[o] + rows[u][o] for o in range(n_out)]
                entering, seen = entering + carry_columns[u, 0], seen + carry_columns[u, 1]
        row = [main[o] + trace_pre[i] * rows[steps][o] for o in range(n_out)]
        if carried_post is not None:
            row = [row[o] + seen * carried_post[o] for o in range(n_out)]
        change.append(row)
        sums.append([entering, seen])
    return [numpy.array(values, dtype=filter_rows.dtype) for values in (change, post_decayed, sums)]


def _run_sums(kernel, pre, post, tables, trace_pre, carried_post):
    """The kernel's (change, post_decayed, sums) on numpy arrays, its outputs filled with NaN first."""
    dtype = tables.filter_rows.numpy().dtype
    n_in, n_out = pre.shape[1], post.shape[1]
    outputs = [numpy.full(shape, numpy.nan, dtype=dtype) for shape in ((n_out,), (n_in, n_out), (n_in, 2))]
    post_decayed, change, sums = outputs
    kernel(
        pre, post, tables.filter_rows.numpy(), tables.post_powers.numpy(), tables.carry_columns.numpy(),
        trace_pre, tables.post_powers.numpy() if carried_post is None else carried_post, carried_post is not None,
        post_decayed, change, sums,
    )  # fmt: skip
    return change, post_decayed, sums


def _same_bits(actual, expected):
    integer = {4: numpy.uint32, 8: numpy.uint64}[expected.dtype.itemsize]
    return actual.shape == expected.shape and numpy.array_equal(actual.view(integer), expected.view(integer))


# neurons that fire, of n_out: a few (the rows of those alone), none, exactly half, more than half, all;
# n_out a multiple of 8 or not (the neurons are read eight at a time, then the rest one by one)
FIRING = [(13, [1, 7, 12]), (9, []), (10, [0, 3, 4, 8, 9]), (10, [0, 1, 2, 3, 4, 9]), (16, list(range(16))), (3, [2])]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("n_out", "firing"), FIRING)
@pytest.mark.parametrize("float64", [False, True])
@pytest.mark.parametrize("carried_post", [False, True])
@pytest.mark.parametrize("steps", [11, 70])
def test_sums_are_the_documented_sums_bit_for_bit(kernel, n_out, firing, float64, carried_post, steps):
    """Every output, signed zeros included, against the documented order written out in plain Python:
    few and many neurons firing, rows of any length, inputs without spikes, spikes in every row; windows
    of one and of several 32-step words of packed spikes."""
    dtype = torch.float64 if float64 else torch.float32
    generator = torch.Generator().manual_seed(n_out + len(firing))
    n_in = 19
    pre = torch.rand(steps, n_in, generator=generator) < 0.3
    pre[:, 4] = False  # an input without spikes
    pre[:, 5] = True  # one spiking at every step
    post = torch.zeros(steps, n_out, dtype=torch.bool)
    post[:, firing] = torch.rand(steps, len(firing), generator=generator) < 0.5
    post[steps - 1, firing] = True  # each listed neuron fires
    tables = pre_event_tables(steps, 0.9, 0.8, 1.0, 1.5, 0.01, 0.012, dtype, torch.device("cpu"), n_in)
    trace_pre, carried = _carried(n_in, n_out, float64, carried_post, n_out)
    trace_pre[3] = -trace_pre[3]  # x_pre r is then -0 where r is zero: the carried sum keeps it +0
    arrays = [tensor.numpy() for tensor in (pre, post, trace_pre)] + [None if carried is None else carried.numpy()]
    expected = _documented_sums(
        arrays[0], arrays[1], tables.filter_rows.numpy(), tables.post_powers.numpy(),
        tables.carry_columns.numpy(), arrays[2], arrays[3],
    )  # fmt: skip
    chosen = {"plain": pre_event_sums, "compiled": COMPILED}[kernel]
    actual = _run_sums(chosen, arrays[0], arrays[1], tables, arrays[2], arrays[3])
    assert all(_same_bits(a, e) for a, e in zip(actual, expected, strict=True))
    # spikes in other layouts (transposed storage, a strided view) give the same bits
    pre_strided = torch.zeros(steps, 2 * n_in, dtype=torch.bool)[:, ::2]
    pre_strided.copy_(pre)
    post_transposed = post.T.contiguous().T
    strided = _run_sums(chosen, pre_strided.numpy(), post_transposed.numpy(), tables, arrays[2], arrays[3])
    assert all(_same_bits(a, e) for a, e in zip(strided, expected, strict=True))


def test_sums_write_into_needs_a_contiguous_cpu_float_tensor_and_numba(monkeypatch):
    plain = torch.zeros(4, 3)
    _use(monkeypatch, "plain")
    assert sums_write_into(plain) and sums_write_into(plain.double())
    assert not sums_write_into(plain.T) and not sums_write_into(plain.half())
    assert not sums_write_into(plain.requires_grad_())
    _use(monkeypatch, "torch")  # numba not installed
    assert not sums_write_into(torch.zeros(4, 3))


@pytest.mark.parametrize("kernel", ["torch", *KERNELS])
def test_compiled_pass_takes_changes_above_the_torch_forms_size_limit(kernel, monkeypatch):
    """The pre-event product is taken for any size where the compiled pass writes the change."""
    out = torch.zeros(30, 9).T.unsqueeze(0)  # an input-major accumulator [1, N_out, N_in]
    _use(monkeypatch, kernel)
    assert uses_pre_event_product(out, 10, 1)
    monkeypatch.setattr(stdp_engine, "PRE_EVENT_MAX_WEIGHT", 100)  # below 30 x 9
    assert uses_pre_event_product(out, 10, 1) == (kernel != "torch")
    assert not uses_pre_event_product(out, 10, 2)  # one sample only
    assert not uses_pre_event_product(torch.zeros(1, 9, 30), 10, 1)  # output-major


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_windows_take_the_torch_operations(dtype, monkeypatch):
    """No compiled sums in float16 or bfloat16 (numba has no such arithmetic): the torch form, whose
    values a float32 run of the same window gives to the dtype's rounding."""
    changes = []
    generator = torch.Generator().manual_seed(6)
    traces = torch.rand(20, generator=generator), -0.01 * torch.rand(6, generator=generator)
    for chosen in (dtype, torch.float32):
        pre, post, tables = _window(12, 20, 6, 0.3, 0.3, chosen, 4)
        trace_pre, carried = (trace.to(chosen) for trace in traces)
        changes.append(pre_event_change(pre, post, tables, trace_pre, carried, None)[0].float())
    torch.testing.assert_close(changes[0], changes[1], rtol=2e-2, atol=2e-2)
    connection = LinearDense(20, 6, weight_layout="input_major", dtype=dtype, weight_init=(0.0, 0.5))
    cell = Cell(connection, LIF(6, dtype=dtype, v_threshold=0.3))
    cell.make_updater()
    trainer = STDP(window=10)
    trainer.register_cell("c", cell)
    before = connection.weight.detach().clone()
    with torch.no_grad():
        for step in torch.rand(10, 1, 20, generator=torch.Generator().manual_seed(2)) < 0.3:
            cell(step)
        trainer()
        trainer.update()
    assert not torch.equal(connection.weight, before)


def _train(windows: int = 4):
    torch.manual_seed(3)
    connection = LinearDense(30, 9, weight_init=(0.0, 0.4), weight_layout="input_major")
    cell = Cell(connection, LIF(9, tau=3.0, v_threshold=0.5))
    updater = cell.make_updater()
    trainer = STDP(tau_pre=4.0, tau_post=6.0, eta_post=0.02, eta_pre=0.025, window=10)
    trainer.register_cell("c", cell)
    trains = torch.rand(10 * windows, 1, 30, generator=torch.Generator().manual_seed(8)) < 0.2
    return connection, cell, updater, trainer, trains


@pytest.mark.parametrize("kernel", KERNELS)
def test_trainer_writes_the_change_into_the_updaters_accumulator(kernel, monkeypatch):
    """The weights of the torch operations (to the rounding of the carried terms), the change written
    where the updater keeps it."""
    weights = []
    for chosen in ("torch", kernel):
        _use(monkeypatch, chosen)
        connection, cell, updater, trainer, trains = _train()
        assert isinstance(updater, Updater)
        buffers = set()
        with torch.no_grad():
            for block in trains.split(10):
                for step in block:
                    cell(step)
                trainer()
                buffers.add(updater._buffers["weight_potentiation"].data_ptr())
                trainer.update()
        # the torch bags make a new change per window, which the updater adopts; the sums write in place
        assert (len(buffers) == 1) == (chosen != "torch")
        weights.append(connection.weight.detach().clone())
    torch.testing.assert_close(weights[1], weights[0], rtol=0.0, atol=1e-6)
    assert not torch.equal(weights[1], _train()[0].weight)  # (it learnt)


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_window_failing_after_the_sums_leaves_the_accumulator_empty(kernel, monkeypatch):
    """An error after the sums wrote into the updater's accumulator: nothing pending, later windows as before."""
    _use(monkeypatch, kernel)
    reference = _train()
    connection, cell, updater, trainer, trains = _train()
    real_update = stdp_module.pre_event_window_update

    def failing(*args):
        real_update(*args)  # writes the change into the accumulator (args[-1])
        raise RuntimeError("interrupted")

    with torch.no_grad():
        for step in trains[:10]:
            cell(step)
        monkeypatch.setattr(stdp_module, "pre_event_window_update", failing)
        with pytest.raises(RuntimeError, match="interrupted"):
            trainer()
        assert not updater.has_pending("weight")
        assert torch.equal(updater.pending("weight")[0], torch.zeros(9, 30))
        monkeypatch.setattr(stdp_module, "pre_event_window_update", real_update)
        trainer()  # the same window again: the traces were not consumed
        trainer.update()
        for block in trains[10:].split(10):
            for step in block:
                cell(step)
            trainer()
            trainer.update()
        _, ref_cell, _, ref_trainer, _ = reference
        for block in trains.split(10):
            for step in block:
                ref_cell(step)
            ref_trainer()
            ref_trainer.update()
    assert torch.equal(connection.weight, reference[0].weight)
