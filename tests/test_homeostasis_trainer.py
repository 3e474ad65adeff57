"""Homeostasis on cells: the change against a naive EMA loop, and rates moving toward the target."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.homeostasis import Homeostasis
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, LinearDense
from plastic.neural.neurons import LIF, AdaptiveLIF

# plasticity only: cells step under torch.no_grad(), as a plasticity run should (GradModeWarning)
pytestmark = pytest.mark.usefixtures("no_grad")


def ema_change_reference(post, *, dt, tau_rate, rate_target, learning_rate, sign):
    """Per-neuron change summed over steps: sign * eta * (target - mean_b rate_t), rates by an explicit EMA loop."""
    steps, batch, n = post.shape
    alpha = 1.0 - math.exp(-dt / tau_rate)
    rate = [[0.0] * n for _ in range(batch)]
    change = [0.0] * n
    for t in range(steps):
        for b in range(batch):
            for i in range(n):
                rate[b][i] = rate[b][i] + alpha * (float(post[t, b, i]) - rate[b][i])
        for i in range(n):
            mean_rate = sum(rate[b][i] for b in range(batch)) / batch
            change[i] += sign * learning_rate * (rate_target - mean_rate)
    return torch.tensor(change, dtype=torch.float64)


def make_cell(n_in, n_out, batch, *, adaptive=False, bias=False, seed=0):
    generator = torch.Generator().manual_seed(seed)
    connection = LinearDense(
        n_in,
        n_out,
        batch_size=batch,
        dtype=torch.float64,
        bias=bias,
        weight_init=lambda w: w.copy_(torch.rand(w.shape, generator=generator, dtype=w.dtype)),
    )
    if adaptive:
        neuron = AdaptiveLIF(n_out, tau=2.0, v_threshold=0.5, theta_plus=0.0, batch_size=batch, dtype=torch.float64)
    else:
        neuron = LIF(n_out, tau=2.0, v_threshold=0.5, batch_size=batch, dtype=torch.float64)
    cell = Cell(connection, neuron)
    cell.make_updater(params=("weight", "bias") if bias else ("weight",))
    return cell


def random_spikes(shape, rate, seed):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).double()


@given(
    target=st.sampled_from(["weight", "bias", "threshold"]), batch=st.integers(1, 3), steps=st.integers(1, 20),
    calls=st.integers(1, 3), tau_rate=st.floats(2.0, 50.0), rate_target=st.floats(0.0, 0.5),
    dt=st.sampled_from([0.5, 1.0]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_change_matches_reference(target, batch, steps, calls, tau_rate, rate_target, dt, seed):
    cell = make_cell(5, 3, batch, adaptive=True, bias=True, seed=seed)
    cell.connection.dt = cell.neuron.dt = dt
    trainer = Homeostasis(target=target, rate_target=rate_target, learning_rate=0.1, tau_rate=tau_rate, window=64)
    trainer.register_cell("c", cell)
    theta_before = cell.neuron.theta.clone()
    posts = []
    cell.step_mode = "window"
    for call in range(calls):  # several calls: the EMA is carried
        cell(random_spikes((steps, batch, 5), 0.6, seed + call))
        posts.append(cell.neuron.spike.clone())
        trainer()
    sign = -1.0 if target == "threshold" else 1.0
    expected = ema_change_reference(torch.cat(posts), dt=dt, tau_rate=tau_rate, rate_target=rate_target,
                                    learning_rate=0.1, sign=sign)  # fmt: skip
    if target == "threshold":
        # theta also drives the spikes of later calls, so only one call is compared exactly
        if calls == 1:
            torch.testing.assert_close(cell.neuron.theta - theta_before, expected, rtol=1e-9, atol=1e-12)
        return
    potentiation, depression = cell.updater.pending(target)
    if target == "bias":
        torch.testing.assert_close(potentiation - depression, expected, rtol=1e-9, atol=1e-12)
    else:
        torch.testing.assert_close(potentiation - depression, expected[:, None].expand(3, 5), rtol=1e-9, atol=1e-12)


def test_multiplicative_weights_scale_rows():
    cell = make_cell(4, 2, 1, seed=1)
    trainer = Homeostasis(target="weight", weight_mode="multiplicative", rate_target=0.5, learning_rate=0.2, window=64)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((10, 1, 4), 0.5, 1))
    trainer()
    expected = ema_change_reference(
        cell.neuron.spike, dt=1.0, tau_rate=100.0, rate_target=0.5, learning_rate=0.2, sign=1.0
    )
    potentiation, depression = cell.updater.pending("weight")
    torch.testing.assert_close(potentiation - depression, cell.connection.weight.detach() * expected[:, None])


def firing_rate(cell, inputs):
    cell(inputs)
    return cell.neuron.spike.double().mean((0, 1))


@pytest.mark.parametrize("target", ["threshold", "weight"])
def test_rates_move_toward_target(target):
    n_in, n_out, batch, steps = 20, 4, 4, 50
    rate_target = 0.1
    cell = make_cell(n_in, n_out, batch, adaptive=True, seed=3)
    with torch.no_grad():  # different gains: one neuron silent, the others far too busy
        cell.connection.weight.mul_(torch.tensor([[0.1], [0.5], [1.0], [2.0]], dtype=torch.float64))
    trainer = Homeostasis(
        target=target,
        rate_target=rate_target,
        learning_rate=0.02 if target == "threshold" else 0.005,
        tau_rate=20.0,
        window=64,
    )
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    initial = firing_rate(cell, random_spikes((steps, batch, n_in), 0.3, 0))
    trainer.clear()
    for round_ in range(80):
        cell(random_spikes((steps, batch, n_in), 0.3, round_ + 1))
        trainer()
        trainer.update()
    final = torch.stack([firing_rate(cell, random_spikes((steps, batch, n_in), 0.3, 1000 + i)) for i in range(4)]).mean(
        0
    )
    error_before = (initial - rate_target).abs()
    error_after = (final - rate_target).abs()
    assert float(error_after.mean()) < 0.5 * float(error_before.mean())
    assert float(error_after.max()) < 0.05


def test_conv_weight_rows_use_position_mean():
    connection = Conv1d(2, 3, 3, in_size=6, batch_size=2, dtype=torch.float64, weight_init=(0.0, 1.0))
    cell = Cell(connection, LIF(connection.out_shape, tau=2.0, v_threshold=0.3, batch_size=2, dtype=torch.float64))
    cell.make_updater()
    trainer = Homeostasis(target="weight", rate_target=0.2, learning_rate=0.1, tau_rate=10.0, window=32)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((8, 2, 2, 6), 0.5, 0))
    trainer()
    post = cell.neuron.spike  # [T, B, C, P]
    per_position = [
        ema_change_reference(post[..., p], dt=1.0, tau_rate=10.0, rate_target=0.2, learning_rate=0.1, sign=1.0)
        for p in range(post.shape[-1])
    ]
    expected = torch.stack(per_position).mean(0)
    potentiation, depression = cell.updater.pending("weight")
    torch.testing.assert_close(potentiation - depression, expected[:, None, None].expand(3, 2, 3))


def test_refuses_cells_it_cannot_train():
    plain = make_cell(3, 2, 1)
    with pytest.raises(ValueError, match=r"^cell"):
        Homeostasis(target="threshold").register_cell("c", plain)  # LIF has no theta
    with pytest.raises(ValueError, match=r"^cell"):
        Homeostasis(target="bias").register_cell("c", plain)  # no bias
    with pytest.raises(ValueError, match=r"^target"):
        Homeostasis(target="voltage")
    with pytest.raises(ValueError, match=r"^rate_target"):
        Homeostasis(rate_target=-0.1)
