"""Trainer base: registration, hyperparameter overrides and buffers, monitors
(train/eval, pool sharing), update(), errors, and a complete example with a
dense and a conv cell learning over several batches."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import F64, ScriptedNeuron, run
from torch import nn

from plastic.learn.all_pairs import AllPairsKernelSTDP
from plastic.learn.base import reduce_batch
from plastic.learn.kernel_stdp import DelayAdjustedSTDP, DelayAdjustedSTDPD, KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, LinearDense
from plastic.neural.neurons import IF
from plastic.observe.monitors import MonitorPool


def dense_cell(n_in=3, n_out=2, batch=2, updater=True, **kwargs):
    connection = LinearDense(n_in, n_out, batch_size=batch, dtype=F64, weight_init=(0.0, 0.0), **kwargs)
    cell = Cell(connection, ScriptedNeuron(n_out, batch_size=batch))
    if updater:
        cell.make_updater()
    return cell


def causal_pair(batch=2, n_in=3, n_out=2, lag=2, steps=5):
    """Every input fires at step 0, every output ``lag`` steps later."""
    pre = torch.zeros(steps, batch, n_in, dtype=torch.bool)
    post = torch.zeros(steps, batch, n_out, dtype=torch.bool)
    pre[0] = True
    post[lag] = True
    return pre, post


# --------------------------------------------------------------------------- registration


def test_register_iterate_get_and_delete():
    trainer = KernelSTDP()
    first, second = dense_cell(), dense_cell()
    unit = trainer.register_cell("first", first)
    trainer.register_cell("second", second)
    assert unit.cell is first and trainer.get_unit("first") is unit
    assert trainer.names == ["first", "second"] and len(trainer) == 2
    cells = [cell for cell, state, monitors in trainer]
    assert cells[0] is first and cells[1] is second
    assert set(unit.monitors) == {"pre", "post"}
    monitor = unit.monitors["post"]
    trainer.del_cell("first")
    assert trainer.names == ["second"] and not monitor.attached
    with pytest.raises(KeyError, match="name"):
        trainer.get_unit("first")


def test_registration_errors():
    trainer = KernelSTDP()
    cell = dense_cell()
    trainer.register_cell("c", cell)
    with pytest.raises(ValueError, match=r"^name: a cell is already registered"):
        trainer.register_cell("c", dense_cell())
    with pytest.raises(ValueError, match=r"^cell: .*no updater"):
        trainer.register_cell("bare", dense_cell(updater=False))
    with pytest.raises(TypeError, match=r"^cell"):
        trainer.register_cell("module", nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"^cell: DelayAdjustedSTDP needs a connection with delays"):
        DelayAdjustedSTDP().register_cell("c", dense_cell())
    with pytest.raises(ValueError, match=r"^cell: .*delays"):
        KernelSTDP(delayed=True).register_cell("c", dense_cell())
    with pytest.raises(ValueError, match=r"^cell: .*delay"):
        DelayAdjustedSTDPD().register_cell("c", dense_cell())
    delayed = dense_cell(delay=2.0, updater=False)
    delayed.make_updater(params=["weight"])
    with pytest.raises(ValueError, match=r"^cell: the updater .* does not manage 'delay'"):
        DelayAdjustedSTDPD().register_cell("c", delayed)
    with pytest.raises(ValueError, match=r"^cell: .*per-synapse delays"):
        STDP().register_cell("c", dense_cell(delay=2.0))
    assert trainer.names == ["c"]


def test_unknown_and_invalid_hyperparameters_are_rejected():
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        KernelSTDP(tau=3.0)
    trainer = KernelSTDP()
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        trainer.register_cell("c", dense_cell(), learning_rate=1.0)
    with pytest.raises(ValueError, match=r"^batch_reduction"):
        trainer.register_cell("c", dense_cell(), batch_reduction="product")
    with pytest.raises(TypeError, match=r"^kernel_post"):
        KernelSTDP(kernel_post=3.0)
    with pytest.raises(ValueError, match=r"^tau_post"):
        DelayAdjustedSTDP(tau_post=0.0)
    with pytest.raises(ValueError, match=r"^window"):
        STDP(window=0)
    with pytest.raises(ValueError, match=r"^kernel_post_kwargs"):
        AllPairsKernelSTDP(kernel_post_kwargs={"tau_post": torch.ones(3)})
    assert trainer.names == []


# --------------------------------------------------------------------------- overrides and buffers


def test_overrides_apply_to_their_cell_only():
    trainer = KernelSTDP(kernel_post_kwargs={"eta_post": 1.0, "tau_post": 4.0}, batch_reduction="mean")
    default_cell, custom_cell = dense_cell(), dense_cell()
    trainer.register_cell("default", default_cell)
    trainer.register_cell("custom", custom_cell, kernel_post_kwargs={"eta_post": 3.0, "tau_post": 4.0},
                          batch_reduction="sum")  # fmt: skip
    assert trainer.get_unit("default").state.params == trainer.defaults
    assert trainer.get_unit("custom").state.params.batch_reduction == "sum"
    assert trainer.defaults.batch_reduction == "mean"
    pre, post = causal_pair(batch=2)
    for cell in (default_cell, custom_cell):
        run(cell, pre, post)
    trainer()
    value = math.exp(-2 / 4.0)
    default_pos, _ = default_cell.updater.pending("weight")
    custom_pos, _ = custom_cell.updater.pending("weight")
    assert torch.allclose(default_pos, torch.full((2, 3), value, dtype=F64), rtol=1e-12)  # mean of 2 samples
    assert torch.allclose(custom_pos, torch.full((2, 3), 2 * 3.0 * value, dtype=F64), rtol=1e-12)


def test_tensor_kwargs_are_cloned_detached_buffers_that_follow_to():
    tau = torch.tensor(4.0, requires_grad=True)
    eta = torch.full((2, 3), 0.5)
    trainer = KernelSTDP(kernel_post_kwargs={"tau_post": tau, "eta_post": eta})
    cell = dense_cell()
    trainer.register_cell("c", cell)
    state = trainer.get_unit("c").state
    buffers = dict(state.named_buffers())
    assert set(buffers) >= {"kernel_post__tau_post", "kernel_post__eta_post"}
    assert not buffers["kernel_post__tau_post"].requires_grad
    assert buffers["kernel_post__tau_post"].data_ptr() != tau.data_ptr()
    with torch.no_grad():
        tau.fill_(100.0)  # the defaults may change: the cell's copy does not
    assert float(state.kernel_post__tau_post) == 4.0
    assert "states.c.kernel_post__tau_post" in trainer.state_dict()
    # a per-synapse tensor is laid out as [G, O, K, 1]
    assert state.kernel_post__eta_post.shape == (1, 2, 3, 1)
    trainer.to(F64)
    assert state.kernel_post__tau_post.dtype == F64 and state.kernel_post__eta_post.dtype == F64
    assert state.kwargs("kernel_post")["tau_post"] is state.kernel_post__tau_post
    pre, post = causal_pair()
    run(cell, pre, post)
    trainer()
    potentiation, _ = cell.updater.pending("weight")
    assert torch.allclose(potentiation, torch.full((2, 3), 0.5 * math.exp(-2 / 4.0), dtype=F64), rtol=1e-12)


# --------------------------------------------------------------------------- batch reductions


@pytest.mark.parametrize("reduction", ["mean", "sum", "amax", "amin", "median", "callable"])
def test_batch_reductions_on_a_hand_case(reduction):
    # three samples: the output fires 1, 2 and never steps after the input
    trainer = KernelSTDP(
        kernel_post_kwargs={"eta_post": 1.0, "tau_post": 2.0},
        batch_reduction=(lambda values: values[1]) if reduction == "callable" else reduction,
    )
    cell = dense_cell(1, 1, batch=3)
    trainer.register_cell("c", cell)
    pre = torch.zeros(4, 3, 1, dtype=torch.bool)
    post = torch.zeros(4, 3, 1, dtype=torch.bool)
    pre[0] = True
    post[1, 0] = True
    post[2, 1] = True
    run(cell, pre, post)
    trainer()
    values = [math.exp(-1 / 2.0), math.exp(-2 / 2.0), 0.0]
    expected = {
        "mean": sum(values) / 3, "sum": sum(values), "amax": max(values), "amin": 0.0,
        "median": values[1], "callable": values[1],
    }[reduction]  # fmt: skip
    assert float(cell.updater.pending("weight")[0]) == pytest.approx(expected, rel=1e-12)
    assert reduce_batch(torch.tensor([[1.0], [3.0]]), "sum").tolist() == [4.0]


# --------------------------------------------------------------------------- nothing to learn


def test_no_recorded_spikes_leaves_weights_unchanged():
    trainer = KernelSTDP()
    cell = dense_cell()
    trainer.register_cell("c", cell)
    weight = cell.connection.weight.detach().clone()
    trainer()  # before any step: skipped
    assert not cell.updater.has_pending()
    silent = torch.zeros(5, 2, 3, dtype=torch.bool)
    run(cell, silent, torch.zeros(5, 2, 2, dtype=torch.bool))
    trainer()
    trainer.update()
    assert torch.equal(cell.connection.weight.detach(), weight)


def test_eval_mode_trainer_or_cell_does_nothing_and_detaches_monitors():
    trainer = KernelSTDP()
    cell = dense_cell()
    trainer.register_cell("c", cell)
    pre, post = causal_pair()
    assert cell.step_observer_count() > 0
    trainer.eval()
    assert cell.step_observer_count() == 0
    assert all(not monitor.attached for monitor in trainer.get_unit("c").monitors.values())
    run(cell, pre, post)
    trainer()
    assert not cell.updater.has_pending()
    trainer.train()
    assert cell.step_observer_count() > 0
    cell.eval()
    run(cell, pre, post)
    trainer()
    assert not cell.updater.has_pending()
    cell.train()
    run(cell, pre, post)
    trainer()
    assert cell.updater.has_pending()
    # registered while evaluating: no hooks until train()
    evaluating = KernelSTDP().eval()
    other = dense_cell()
    evaluating.register_cell("o", other)
    assert other.step_observer_count() == 0
    evaluating.train()
    assert other.step_observer_count() > 0


def test_update_applies_a_shared_updater_once_and_clears_it():
    trainer = KernelSTDP(kernel_post_kwargs={"eta_post": 1.0, "tau_post": 2.0}, batch_reduction="sum")
    cell = dense_cell(batch=1)
    trainer.register_cell("a", cell)
    trainer.register_cell("b", cell)  # the same cell (and updater) twice
    calls = []
    original = cell.updater.apply
    cell.updater.apply = lambda *args: (calls.append(1), original(*args))[1]
    pre, post = causal_pair(batch=1)
    run(cell, pre, post)
    trainer()
    trainer.update()
    assert len(calls) == 1
    assert torch.allclose(cell.connection.weight.detach(), torch.full((2, 3), 2 * math.exp(-1.0), dtype=F64))
    assert not cell.updater.has_pending()


def test_two_trainers_share_monitors_through_a_pool():
    pool = MonitorPool()
    first = KernelSTDP(pool=pool)
    second = KernelSTDP(pool=pool, kernel_post_kwargs={"eta_post": 2.0})
    cell = dense_cell()
    first.register_cell("c", cell)
    second.register_cell("c", cell)
    shared = first.get_unit("c").monitors
    assert shared["post"] is second.get_unit("c").monitors["post"]
    assert shared["pre"] is second.get_unit("c").monitors["pre"]
    assert len(pool) == 2
    first.eval()
    assert shared["post"].attached  # the second trainer still uses it
    second.eval()
    assert not shared["post"].attached and len(pool) == 0


def test_clear_forgets_the_recordings():
    trainer = KernelSTDP()
    cell = dense_cell()
    trainer.register_cell("c", cell)
    pre, post = causal_pair()
    run(cell, pre, post)
    trainer.clear()
    trainer()  # every event time is "never" again: zeros
    potentiation, depression = cell.updater.pending("weight")
    assert not bool(potentiation.any()) and not bool(depression.any())


# --------------------------------------------------------------------------- a complete example


def _conv_cell(batch):
    connection = Conv1d(1, 2, 3, padding=1, in_size=5, batch_size=batch, dtype=F64, weight_init=(0.0, 0.0))
    cell = Cell(connection, ScriptedNeuron(connection.out_shape, batch_size=batch))
    cell.make_updater()
    return cell


@pytest.mark.parametrize("mode", ["single", "window"])
def test_complete_example_dense_and_conv_cells_over_several_batches(mode):
    """Causal batches potentiate every synapse, acausal ones depress; the sizes are the kernels'."""
    batch, lag, tau = 2, 2, 5.0
    dense, conv = dense_cell(3, 2, batch), _conv_cell(batch)
    trainer = KernelSTDP(
        kernel_post_kwargs={"eta_post": 0.1, "tau_post": tau},
        kernel_pre_kwargs={"eta_pre": -0.05, "tau_pre": tau},
    )
    trainer.register_cell("dense", dense)
    trainer.register_cell("conv", conv)
    # positions each conv weight sees with padding 1: k=0 and k=2 miss one of the 5 positions
    conv_positions = torch.tensor([4.0, 5.0, 4.0], dtype=F64).expand(2, 1, 3)
    expected_dense = torch.zeros(2, 3, dtype=F64)
    expected_conv = torch.zeros(2, 1, 3, dtype=F64)
    for index in range(6):
        causal = index % 3 != 2
        for cell in (dense, conv):
            cell.reset()
            steps = 6
            pre = torch.zeros(steps, batch, *cell.connection.in_shape, dtype=torch.bool)
            post = torch.zeros(steps, batch, *cell.connection.out_shape, dtype=torch.bool)
            (pre if causal else post)[1] = True
            (post if causal else pre)[1 + lag] = True
            run(cell, pre, post, mode)
        before = (dense.connection.weight.detach().clone(), conv.connection.weight.detach().clone())
        trainer()
        trainer.update()
        change = 0.1 * math.exp(-lag / tau) if causal else -0.05 * math.exp(-lag / tau)
        expected_dense += change
        expected_conv += change * conv_positions
        dense_change = dense.connection.weight.detach() - before[0]
        conv_change = conv.connection.weight.detach() - before[1]
        assert bool((dense_change > 0).all()) if causal else bool((dense_change < 0).all())
        assert bool((conv_change > 0).all()) if causal else bool((conv_change < 0).all())
    assert torch.allclose(dense.connection.weight.detach(), expected_dense, rtol=1e-12)
    assert torch.allclose(conv.connection.weight.detach(), expected_conv, rtol=1e-12)


@pytest.mark.usefixtures("no_grad")  # a plasticity run: no autograd graph through the steps
def test_real_neurons_learn_with_three_trainers():
    """The full loop with real IF neurons and three trainers on one cell: weights move, clamped."""
    torch.manual_seed(0)
    connection = LinearDense(6, 3, batch_size=2, dtype=F64, weight_init=(0.2, 0.6))
    cell = Cell(connection, IF(3, v_threshold=1.0, batch_size=2, dtype=F64))
    cell.make_updater(clamp=(0.0, 1.0))
    trainers = [KernelSTDP(), STDP(eta_post=1e-2, eta_pre=1e-2), AllPairsKernelSTDP()]
    for trainer in trainers:
        trainer.register_cell("c", cell)
    before = connection.weight.detach().clone()
    for _ in range(3):
        cell.reset()
        for _ in range(10):
            cell((torch.rand(2, 6, dtype=F64) < 0.5).to(F64))
        for trainer in trainers:
            trainer()
        trainers[0].update()
    after = connection.weight.detach()
    assert not torch.equal(after, before) and bool(((after >= 0) & (after <= 1)).all())


def test_a_refused_call_leaves_every_updater_untouched():
    """The window of the second cell overflows: the first cell must not have learned either."""
    trainer = STDP(window=3)
    first, second = dense_cell(), dense_cell()
    trainer.register_cell("first", first)
    trainer.register_cell("second", second)
    pre, post = causal_pair(steps=3)
    run(first, pre, post)
    run(second, torch.cat([pre, pre]), torch.cat([post, post]))
    with pytest.raises(RuntimeError, match="window"):
        trainer()
    assert not first.updater.has_pending() and not second.updater.has_pending()
    with pytest.raises(TypeError, match=r"^kernel_post_kwargs"):
        KernelSTDP(kernel_post_kwargs=3)
