"""GradModeWarning: a trainer warns once per cell whose neuron state carries an autograd graph."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import make_lif_cell
from torch import nn

import plastic
from plastic.learn.reward import MSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense


def spike_steps(steps, batch=2, n_in=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n_in, generator=generator) < 0.5).double()


def run(cell, trainer, spikes, *args):
    for x in spikes:
        cell(x)
    trainer(*args)


def grad_warnings(record):
    return [w for w in record if issubclass(w.category, plastic.GradModeWarning)]


def test_exported_as_a_user_warning():
    assert issubclass(plastic.GradModeWarning, UserWarning)
    assert plastic.learn.GradModeWarning is plastic.GradModeWarning


def test_warns_once_per_trainer_and_cell_at_the_callers_line():
    cell = make_lif_cell(6, 4, batch=2)
    trainer = STDP()
    trainer.register_cell("exc", cell)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # Python's own once-per-location filter must not hide a second warning
        run(cell, trainer, spike_steps(5))
        run(cell, trainer, spike_steps(5, seed=1))
    assert cell.neuron.voltage.grad_fn is not None  # the trap itself: a graph spanning the steps
    found = grad_warnings(record)
    assert len(found) == 1
    message = str(found[0].message)
    for part in ("'exc'", "torch.no_grad()", "requires_grad_(False)", "reset()", "filterwarnings"):
        assert part in message
    assert found[0].filename == __file__  # points at run()'s trainer call, not inside plastic or torch


def test_reward_trainer_warns_too():
    cell = make_lif_cell(6, 4, batch=2)
    trainer = MSTDP()
    trainer.register_cell("exc", cell)
    with pytest.warns(plastic.GradModeWarning, match="'exc'"):
        run(cell, trainer, spike_steps(4), 1.0)


def test_no_warning_under_no_grad():
    cell = make_lif_cell(6, 4, batch=2)
    trainer = STDP()
    trainer.register_cell("exc", cell)
    with warnings.catch_warnings():
        warnings.simplefilter("error", plastic.GradModeWarning)
        with torch.no_grad():
            run(cell, trainer, spike_steps(5))
        run(cell, trainer, spike_steps(0))  # a trainer call with grad enabled, the state still graph-free


def test_no_warning_when_the_weight_requires_no_grad():
    cell = make_lif_cell(6, 4, batch=2)
    cell.connection.weight.requires_grad_(False)
    trainer = STDP()
    trainer.register_cell("exc", cell)
    with warnings.catch_warnings():
        warnings.simplefilter("error", plastic.GradModeWarning)
        run(cell, trainer, spike_steps(5))
    assert cell.neuron.voltage.grad_fn is None


def test_warns_again_for_another_cell_and_another_trainer():
    first, second = make_lif_cell(6, 4, batch=2), make_lif_cell(6, 4, batch=2, seed=1)
    trainer = STDP()
    trainer.register_cell("first", first)
    with pytest.warns(plastic.GradModeWarning, match="'first'"):
        run(first, trainer, spike_steps(3))
    trainer.register_cell("second", second)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run(second, trainer, spike_steps(3))
        run(first, trainer, spike_steps(3))
    found = grad_warnings(record)
    assert [str(w.message).split(": cell ")[1].split(" ")[0] for w in found] == ["'second'"]
    other = STDP()
    other.register_cell("first", first)
    with pytest.warns(plastic.GradModeWarning, match="'first'"):
        run(first, other, spike_steps(3))


def test_warns_again_after_the_cell_is_registered_anew():
    cell = make_lif_cell(6, 4, batch=2)
    trainer = STDP()
    trainer.register_cell("exc", cell)
    with pytest.warns(plastic.GradModeWarning):
        run(cell, trainer, spike_steps(3))
    trainer.del_cell("exc")
    trainer.register_cell("exc", cell)
    with pytest.warns(plastic.GradModeWarning):
        run(cell, trainer, spike_steps(3))


class SpikeOnlyNeuron(nn.Module):
    """A neuron module without a ``voltage``: fires where its input is positive."""

    def __init__(self, size, batch_size):
        super().__init__()
        self.shape, self.dt, self.step_mode, self.batch_size = (size,), 1.0, "single", batch_size
        self.spike = torch.zeros(batch_size, size, dtype=torch.bool)

    def forward(self, x):
        self.spike = (x > 0).detach()
        return self.spike.to(x.dtype)


def test_a_neuron_without_voltage_is_not_checked():
    cell = Cell(LinearDense(6, 4, batch_size=2, dtype=torch.float64), SpikeOnlyNeuron(4, batch_size=2))
    cell.make_updater()
    trainer = STDP()
    trainer.register_cell("plain", cell)
    with warnings.catch_warnings():
        warnings.simplefilter("error", plastic.GradModeWarning)
        run(cell, trainer, spike_steps(4))
    assert cell.updater.has_pending("weight")


@pytest.mark.parametrize("make_trainer", [STDP, MSTDP])
def test_the_learnt_change_is_the_same_with_and_without_grad(make_trainer):
    """The graph changes nothing learnt: the same spikes give the same accumulated change, exactly."""
    spikes = spike_steps(12, seed=3)
    args = (0.5,) if make_trainer is MSTDP else ()
    pending = []
    for grad in (True, False):
        cell = make_lif_cell(6, 4, batch=2, seed=7)
        trainer = make_trainer()
        trainer.register_cell("exc", cell)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", plastic.GradModeWarning)
            with torch.set_grad_enabled(grad):
                outputs = [cell(x) for x in spikes]
            trainer(*args)
        assert (cell.neuron.voltage.grad_fn is not None) == grad
        pending.append((torch.stack(outputs).detach(), *cell.updater.pending("weight")))
    assert pending[0][0].any() and pending[0][0].sum() < pending[0][0].numel()  # the cells fired, not always
    assert pending[0][1].abs().sum() > 0 and pending[0][2].abs().sum() > 0
    for with_grad, without in zip(pending[0], pending[1], strict=True):
        assert torch.equal(with_grad, without)


def test_a_refused_call_does_not_warn():
    """A trainer call refused by its checks (more steps than the window) changes nothing and warns
    nothing; the next accepted call warns once."""
    cell = make_lif_cell(6, 4, batch=2)
    trainer = STDP(window=3)
    trainer.register_cell("exc", cell)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="the window keeps 3"):
            run(cell, trainer, spike_steps(5))
        assert grad_warnings(record) == []
        trainer.clear()
        run(cell, trainer, spike_steps(2))
    assert len(grad_warnings(record)) == 1


def test_a_refused_reward_call_does_not_warn():
    cell = make_lif_cell(6, 4, batch=2)
    trainer = MSTDP()
    trainer.register_cell("exc", cell)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="reward"):
            run(cell, trainer, spike_steps(4), torch.ones(7))  # a reward of 7 steps for 4
        assert grad_warnings(record) == []
