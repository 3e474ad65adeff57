"""The compiled sums of a one-sample STDP window (plastic.functional.window_bags, issue 15, S2).

References: the torch operations they replace (index_add_ and embedding_bag, the plain path),
bit for bit; a hand-computed window; the trainer's weights with the plain path.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import plastic.functional.window_bags as window_bags
import plastic.learn.stdp as stdp_module
from plastic.functional.stdp_engine import pre_event_tables
from plastic.functional.window_bags import pre_event_bags, pre_event_sums, sums_write_into
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.neural.updater import Updater

numpy = pytest.importorskip("numpy")

COMPILED = window_bags.compiled_pre_event_sums()
KERNELS = ["plain", "compiled"] if COMPILED is not None else ["plain"]


def _use(monkeypatch: pytest.MonkeyPatch, kernel: str) -> None:
    """Make pre_event_bags take the torch operations, the plain-Python sums or the compiled ones."""
    chosen = {"torch": None, "plain": pre_event_sums, "compiled": COMPILED}[kernel]
    monkeypatch.setattr(window_bags, "compiled_pre_event_sums", lambda: chosen)


def _window(steps, n_in, n_out, density_pre, density_post, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, n_in, generator=generator) < density_pre
    post = torch.rand(steps, n_out, generator=generator) < density_post
    tables = pre_event_tables(steps, 0.9, 0.8, 1.0, 1.5, 0.01, 0.012, dtype, torch.device("cpu"), n_in)
    return pre, post, tables


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 30),
    n_in=st.integers(1, 40),
    n_out=st.integers(1, 20),
    density_pre=st.floats(0.0, 1.0),
    density_post=st.floats(0.0, 1.0),
    float64=st.booleans(),
    with_out=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_sums_are_the_torch_operations_bit_for_bit(
    kernel, steps, n_in, n_out, density_pre, density_post, float64, with_out, seed
):
    dtype = torch.float64 if float64 else torch.float32
    pre, post, tables = _window(steps, n_in, n_out, density_pre, density_post, dtype, seed)
    with pytest.MonkeyPatch.context() as patch:
        _use(patch, "torch")
        expected = pre_event_bags(pre, post, tables, None)
        _use(patch, kernel)
        out = torch.full((n_in, n_out), float("nan"), dtype=dtype) if with_out else None  # every element written
        result = pre_event_bags(pre, post, tables, out)
    if out is not None:
        assert result[2] is out
    for value, reference in zip(result, expected, strict=True):
        assert value.dtype == reference.dtype and torch.equal(value, reference)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sums_of_a_hand_computed_window(kernel, monkeypatch):
    """T = 3, two inputs, two neurons: every sum written out by hand from the filter's entries."""
    pre = torch.tensor([[True, False], [True, False], [False, False]])  # input 0 at steps 0, 1; input 1 silent
    post = torch.tensor([[False, True], [False, False], [True, True]])  # neuron 0 at 2; neuron 1 at 0 and 2
    _, _, tables = _window(3, 2, 2, 0.0, 0.0, torch.float64, 0)
    f, c, p = tables.filter_columns.tolist(), tables.carry_columns.tolist(), tables.post_powers.tolist()
    _use(monkeypatch, kernel)
    rows, post_decayed, main, sums = pre_event_bags(pre, post, tables, torch.empty(2, 2, dtype=torch.float64))
    expected_rows = [[f[u][2], f[u][0] + f[u][2]] for u in range(4)] + [[0.0, 0.0]]
    assert rows.tolist() == expected_rows
    assert post_decayed.tolist() == [p[2], p[0] + p[2]]
    assert main.tolist() == [[f[0][2] + f[1][2], (f[0][0] + f[0][2]) + (f[1][0] + f[1][2])], [0.0, 0.0]]
    assert sums.tolist() == [[c[0][0] + c[1][0], c[0][1] + c[1][1]], [0.0, 0.0]]


def test_sums_write_into_needs_a_contiguous_cpu_float_tensor_and_numba(monkeypatch):
    plain = torch.zeros(4, 3)
    _use(monkeypatch, "plain")
    assert sums_write_into(plain) and sums_write_into(plain.double())
    assert not sums_write_into(plain.T) and not sums_write_into(plain.half())
    assert not sums_write_into(plain.requires_grad_())
    _use(monkeypatch, "torch")  # numba not installed
    assert not sums_write_into(torch.zeros(4, 3))


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
    """The same weights as with the torch operations, the change written where the updater keeps it."""
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
    assert torch.equal(weights[1], weights[0])


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
