"""Device-parametrised checks (issue 15): the main paths on ``--device`` (default CPU).

``pytest tests/test_devices.py --device cuda`` runs them on a GPU (``make
test-cuda``); without one they run on the CPU, so the suite never needs a GPU.
Each test runs the same work on the device and on the CPU in float64 and
compares: the CPU float64 run is the reference (device kernels sum in other
orders, so float32 agrees to rounding), and every state tensor must live on
the device afterwards (nothing silently falls back to the CPU).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from plastic import (
    LIF,
    STDP,
    AdaptiveLIF,
    Cell,
    Conv2d,
    KernelSTDP,
    LinearDense,
    LinearLateral,
    TripletSTDP,
)
from plastic.functional.stdp import stdp_window, stdp_window_net


def _trains(shape: tuple[int, ...], probability: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) < probability


def _states_on(module: nn.Module, device: torch.device) -> None:
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        assert tensor.device.type == device.type, f"{name} is on {tensor.device}, expected {device}"


def _close(value: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> None:
    tolerance = 1e-10 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(
        value.detach().cpu().double(), reference.detach().cpu().double(), rtol=tolerance, atol=tolerance
    )


def _train(device: torch.device, dtype: torch.dtype, trainer_class: type, step_mode: str, kind: str) -> nn.Module:
    """A cell trained over two windows (window mode) or 2 x 12 steps (single-step mode)."""
    torch.manual_seed(0)
    if kind == "conv":
        connection = Conv2d(2, 3, 3, in_size=(6, 6), batch_size=2, step_mode=step_mode, padding=1)
        neuron = LIF((3, 6, 6), batch_size=2, step_mode=step_mode, tau=2.0, v_threshold=0.3)
        pre = _trains((12, 2, 2, 6, 6), 0.2, 1)
    elif kind == "lateral":
        connection = LinearLateral(9, batch_size=2, step_mode=step_mode)
        neuron = AdaptiveLIF(9, batch_size=2, step_mode=step_mode, tau=2.0, v_threshold=0.2)
        pre = _trains((12, 2, 9), 0.3, 1)
    else:
        layout = "input_major" if kind == "dense_input_major" else "output_major"
        connection = LinearDense(300, 5, batch_size=2, step_mode=step_mode, weight_layout=layout)
        neuron = LIF(5, batch_size=2, step_mode=step_mode, tau=2.0, v_threshold=0.05)
        pre = _trains((12, 2, 300), 0.03, 1)  # sparse enough for the event-driven forward
    cell = Cell(connection, neuron).to(device=device, dtype=dtype)
    cell.make_updater(params=["weight"])
    trainer = trainer_class()
    trainer.register_cell("cell", cell)
    pre = pre.to(device)
    with torch.no_grad():
        for _ in range(2):
            if step_mode == "window":
                cell(pre)
            else:
                for step in pre:
                    cell(step)
            trainer()
            trainer.update()
    _states_on(cell, device)
    _states_on(trainer, device)
    return cell


@pytest.mark.parametrize("kind", ["dense", "dense_input_major", "lateral", "conv"])
@pytest.mark.parametrize("step_mode", ["window", "single"])
@pytest.mark.parametrize("trainer_class", [STDP, TripletSTDP, KernelSTDP])
def test_trainers_on_the_device_match_the_cpu(device, kind, step_mode, trainer_class, monkeypatch):
    import plastic.functional.event_forward as event_forward

    monkeypatch.setattr(event_forward, "EVENT_FORWARD_MIN_ROWS", 0)  # the event-driven forward too
    monkeypatch.setattr("plastic.neural.connections.GATHER_MIN_WORK", 0)  # and the input-major gather
    reference = _train(torch.device("cpu"), torch.float64, trainer_class, step_mode, kind)
    for dtype in (torch.float32, torch.float64):
        trained = _train(device, dtype, trainer_class, step_mode, kind)
        _close(trained.connection.weight, reference.connection.weight, dtype)
        _close(trained.neuron.voltage, reference.neuron.voltage, dtype)


@pytest.mark.parametrize("method", ["dense", "sparse"])
def test_one_product_window_on_the_device(device, method):
    """The blocked, event-driven and dense one-product forms on the device equal the two-product CPU form."""
    from unittest import mock

    import plastic.functional.stdp as stdp_module

    pre = _trains((20, 2, 40), 0.1, 3)
    post = _trains((20, 2, 7), 0.1, 4)
    trace_post = torch.rand(2, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    two = stdp_window(pre.double(), post.double(), None, trace_post, tau_pre=5.0, tau_post=8.0)
    expected = 0.7 * two.potentiation - 1.3 * two.depression
    for blocked in (False, True):
        with (
            mock.patch.object(stdp_module, "MATRIX_FILTER_MAX_ELEMENTS", 0 if blocked else 1 << 20),
            mock.patch.object(stdp_module, "FILTER_BLOCK_ELEMENTS", 160),
            mock.patch.object(stdp_module, "PRODUCT_BLOCK_ELEMENTS", 320),
        ):
            net = stdp_window_net(
                pre.to(device), post.to(device), None, trace_post.to(device), tau_pre=5.0, tau_post=8.0,
                eta_post=0.7, eta_pre=1.3, method=method,
            )  # fmt: skip
        assert net.delta_weight.device.type == device.type
        _close(net.delta_weight, expected, torch.float64)
        _close(net.trace_pre, two.trace_pre, torch.float64)


def _train_clopath(device: torch.device, dtype: torch.dtype, kind: str) -> tuple[Cell, torch.Tensor, bool]:
    """The AdEx and voltage-based STDP (Clopath et al. 2010) over two windows: the cell, its initial
    weight and whether it spiked."""
    from plastic import AdEx, ClopathSTDP

    torch.manual_seed(0)
    if kind == "conv":
        connection = Conv2d(2, 3, 3, in_size=(5, 5), batch_size=2, step_mode="window", padding=1, weight_init=(0, 200))
        shape, pre = (3, 5, 5), _trains((30, 2, 2, 5, 5), 0.2, 1)
    else:
        connection = LinearDense(20, 4, batch_size=2, step_mode="window", weight_init=(0, 200))
        shape, pre = (4,), _trains((30, 2, 20), 0.2, 1)
    cell = Cell(connection, AdEx(shape, batch_size=2, step_mode="window", store_voltage_sequence=True))
    cell = cell.to(device=device, dtype=dtype)
    initial = cell.connection.weight.detach().clone()
    cell.make_updater(params=["weight"])
    trainer = ClopathSTDP(homeostasis=True, a_ltd=1e-2, a_ltp=1e-2)
    trainer.register_cell("cell", cell)
    drive = torch.full((30, 2, *shape), 450.0, dtype=dtype, device=device)
    spiked = False
    with torch.no_grad():
        for _ in range(2):
            spiked |= bool(cell(pre.to(device=device, dtype=dtype), drive).any())
            trainer()
            trainer.update()
    _states_on(cell, device)
    _states_on(trainer, device)
    return cell, initial, spiked


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_voltage_based_stdp_on_the_device_matches_the_cpu(device, kind):
    reference, initial, spiked = _train_clopath(torch.device("cpu"), torch.float64, kind)
    assert spiked and not torch.equal(reference.connection.weight, initial)  # it fired and learned
    trained = _train_clopath(device, torch.float64, kind)[0]
    _close(trained.connection.weight, reference.connection.weight, torch.float64)
    _close(trained.neuron.voltage, reference.neuron.voltage, torch.float64)
