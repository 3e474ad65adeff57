"""The pieces of first-spike STDP (Masquelier & Thorpe 2007; Kheradpisheh et
al. 2018): the logistic weight dependence w(1 - w), event times that start at
-inf, and KernelSTDP's unfired_pre option, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from plastic import Bounding, Cell, EventTimeReducer, KernelSTDP, LinearDense
from plastic.functional.bounding import logistic_factor
from plastic.functional.kernels import rectangular
from plastic.neural.neurons import IF


def test_logistic_factor_by_hand():
    w = torch.tensor([-0.5, 0.0, 0.25, 0.5, 1.0, 1.5])
    assert torch.allclose(logistic_factor(w), torch.tensor([0.0, 0.0, 0.1875, 0.25, 0.0, 0.0]))
    # [w_min, w_max] = [-1, 3]: (w + 1)(3 - w)/4
    assert torch.allclose(logistic_factor(torch.tensor([1.0, 0.0]), -1.0, 3.0), torch.tensor([1.0, 0.75]))
    bounding = Bounding("logistic", w_min=0.0, w_max=1.0)
    w = torch.tensor([0.2, 0.9])
    dw = bounding(w, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    assert torch.allclose(dw, torch.tensor([0.16, -2 * 0.09]))
    with pytest.raises(ValueError, match=r"^w_min"):
        Bounding("logistic", w_max=1.0)
    with pytest.raises(ValueError, match=r"^w_max"):
        Bounding("logistic", w_min=0.0, side="lower")
    with pytest.raises(ValueError, match=r"^mu"):
        Bounding("logistic", w_min=0.0, w_max=1.0, mu=2.0)


def test_event_times_before_any_event_can_be_minus_inf():
    reducer = EventTimeReducer(1.0, initial="-inf")
    reducer(torch.tensor([[True, False]]))
    reducer(torch.tensor([[False, False]]))
    assert reducer.peek().tolist() == [[1.0, -math.inf]]
    reducer.clear()
    reducer(torch.tensor([[False, True]]))
    assert reducer.peek().tolist() == [[-math.inf, 0.0]]


def _network(unfired_pre: str | None):
    connection = LinearDense(3, 1, weight_init=(0.5, 0.5), step_mode="window")
    cell = Cell(connection, IF(1, v_threshold=0.9, step_mode="window"))
    cell.make_updater()
    options = {} if unfired_pre is None else {"unfired_pre": unfired_pre}
    trainer = KernelSTDP(
        kernel_post=rectangular, kernel_post_kwargs={"amplitude": 0.1, "start": 0.0, "stop": math.inf},
        kernel_pre=rectangular, kernel_pre_kwargs={"amplitude": -0.05, "start": -math.inf, "stop": 0.0},
        batch_reduction="sum", **options,
    )  # fmt: skip
    trainer.register_cell("cell", cell)
    return connection, cell, trainer


@pytest.mark.parametrize("unfired_pre", [None, "ignore", "late"])
def test_unfired_presynaptic_neurons(unfired_pre):
    connection, cell, trainer = _network(unfired_pre)
    spikes = torch.zeros(3, 1, 3, dtype=torch.bool)
    spikes[0, 0, 0] = spikes[1, 0, 0] = True  # input 0 twice: the post neuron fires at step 1 (0.5 + 0.5)
    spikes[2, 0, 1] = True  # input 1 after the post spike; input 2 never
    with torch.no_grad():
        assert cell(spikes)[:, 0, 0].tolist() == [0.0, 1.0, 0.0]
        trainer()
        trainer.update()
    silent = 0.5 - 0.05 if unfired_pre == "late" else 0.5
    assert torch.allclose(connection.weight.detach(), torch.tensor([[0.6, 0.45, silent]]))


def test_unfired_pre_is_validated():
    with pytest.raises(ValueError, match="unfired_pre"):
        KernelSTDP(unfired_pre="never")
