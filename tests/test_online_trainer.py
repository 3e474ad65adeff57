"""OnlineSTDP (Diehl & Cook) on cells: the rule against a naive reference, and the normalisation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.online import OnlineSTDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, LinearDense
from plastic.neural.neurons import LIF

# plasticity only: cells step under torch.no_grad(), as a plasticity run should (GradModeWarning)
pytestmark = pytest.mark.usefixtures("no_grad")


def online_reference(pre, post, *, dt, tau_pre, tau_post, a_post, a_pre, trace):
    """dw = A_post * sum s_post (x) x_pre - A_pre * sum x_post (x) s_pre, per step and sample."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    x_pre = torch.zeros(batch, n_in, dtype=torch.float64)
    x_post = torch.zeros(batch, n_out, dtype=torch.float64)
    potentiation = torch.zeros(n_out, n_in, dtype=torch.float64)
    depression = torch.zeros(n_out, n_in, dtype=torch.float64)
    for t in range(steps):
        if trace == "nearest":
            x_pre = torch.where(pre[t] > 0, torch.ones_like(x_pre), x_pre * math.exp(-dt / tau_pre))
            x_post = torch.where(post[t] > 0, torch.ones_like(x_post), x_post * math.exp(-dt / tau_post))
        else:
            x_pre = x_pre * math.exp(-dt / tau_pre) + pre[t]
            x_post = x_post * math.exp(-dt / tau_post) + post[t]
        for b in range(batch):
            potentiation += a_post * torch.outer(post[t, b], x_pre[b])
            depression += a_pre * torch.outer(x_post[b], pre[t, b])
    return potentiation, depression


def make_cell(n_in, n_out, batch, seed=0, **updater):
    generator = torch.Generator().manual_seed(seed)
    connection = LinearDense(
        n_in,
        n_out,
        batch_size=batch,
        dtype=torch.float64,
        weight_init=lambda w: w.copy_(torch.rand(w.shape, generator=generator, dtype=w.dtype)),
    )
    cell = Cell(connection, LIF(n_out, tau=2.0, v_threshold=0.5, batch_size=batch, dtype=torch.float64))
    OnlineSTDP.make_updater(cell, **updater)
    return cell


def random_spikes(shape, rate, seed):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).double()


@given(
    n_in=st.integers(2, 6), n_out=st.integers(1, 4), batch=st.integers(1, 3), steps=st.integers(1, 25),
    rate=st.floats(0.05, 0.7), dt=st.sampled_from([0.5, 1.0]), tau_pre=st.floats(2.0, 40.0),
    tau_post=st.floats(2.0, 40.0), trace=st.sampled_from(["nearest", "cumulative"]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_rule_matches_reference(n_in, n_out, batch, steps, rate, dt, tau_pre, tau_post, trace, seed):
    params = {"tau_pre": tau_pre, "tau_post": tau_post, "a_post": 0.3, "a_pre": 0.2}
    cell = make_cell(n_in, n_out, batch, seed, w_norm=n_in / 10)
    cell.connection.dt = cell.neuron.dt = dt
    trainer = OnlineSTDP(trace=trace, window=32, w_norm=n_in / 10, **params)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((steps, batch, n_in), rate, seed))
    trainer()
    pot, dep = online_reference(cell.connection.synspike.double(), cell.neuron.spike.double(), dt=dt, trace=trace,
                                **params)  # fmt: skip
    potentiation, depression = cell.updater.pending("weight")
    # the one-product form (cumulative) gives the net change only
    torch.testing.assert_close(potentiation - depression, pot - dep, rtol=1e-9, atol=1e-12)
    if trace == "nearest":
        torch.testing.assert_close(potentiation, pot, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(depression, dep, rtol=1e-9, atol=1e-12)


@given(seed=st.integers(0, 2**16), w_norm=st.floats(0.5, 2.5), batch=st.integers(1, 3))
def test_nearest_variant_normalises_after_each_update(seed, w_norm, batch):
    n_in = 12
    cell = make_cell(n_in, 3, batch, seed, w_norm=w_norm)
    trainer = OnlineSTDP(window=32, w_norm=w_norm, a_post=0.05, a_pre=0.01)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    for round_ in range(3):
        cell(random_spikes((10, batch, n_in), 0.4, seed + round_))
        trainer()
        before = cell.connection.weight.detach().clone()
        delta = cell.updater.delta("weight")
        trainer.update()
        weight = cell.connection.weight.detach()
        # reference: add, normalise rows to w_norm, clamp to [0, 1]
        expected = before + delta
        normalised = expected * (w_norm / expected.abs().sum(1, keepdim=True))
        expected = normalised.clamp(0.0, 1.0)
        torch.testing.assert_close(weight, expected, rtol=1e-12, atol=1e-12)
        assert bool(((weight >= 0) & (weight <= 1)).all())
        if bool(((normalised >= 0) & (normalised <= 1)).all()):  # the clamp did not bite
            torch.testing.assert_close(weight.abs().sum(1), torch.full((3,), w_norm, dtype=torch.float64))


def test_row_sums_equal_w_norm_when_clamp_does_not_bite():
    n_in = 784
    cell = make_cell(n_in, 5, 2, 0)  # default w_norm = 78.4, weights ~ U(0, 1) rescaled to mean 0.1
    trainer = OnlineSTDP(window=32)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((10, 2, n_in), 0.05, 0))
    trainer()
    trainer.update()
    weight = cell.connection.weight.detach()
    torch.testing.assert_close(weight.sum(1), torch.full((5,), 78.4, dtype=torch.float64))
    assert float(weight.min()) >= 0.0 and float(weight.max()) <= 1.0


def test_full_variant_normalises_at_finish():
    cell = make_cell(10, 3, 1, 2, variant="full", w_norm=2.0)
    trainer = OnlineSTDP(window=32, variant="full", w_norm=2.0, a_post=0.1)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((15, 1, 10), 0.5, 2))
    trainer()
    trainer.update()
    weight = cell.connection.weight.detach()
    assert not torch.allclose(weight.sum(1), torch.full((3,), 2.0, dtype=torch.float64))
    assert float(weight.min()) >= 0.0 and float(weight.max()) <= 1.0
    expected = (weight * (2.0 / weight.abs().sum(1, keepdim=True))).clamp(0.0, 1.0)
    trainer.finish()
    torch.testing.assert_close(cell.connection.weight.detach(), expected)


def test_conv_rows_are_output_channels():
    connection = Conv1d(2, 3, 3, in_size=8, dtype=torch.float64, weight_init=(0.0, 1.0))
    cell = Cell(connection, LIF(connection.out_shape, tau=2.0, v_threshold=0.3, dtype=torch.float64))
    OnlineSTDP.make_updater(cell, w_norm=1.5)
    trainer = OnlineSTDP(window=32, w_norm=1.5, a_post=0.05)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((10, 1, 2, 8), 0.5, 1))
    trainer()
    trainer.update()
    sums = cell.connection.weight.detach().abs().sum((1, 2))
    torch.testing.assert_close(sums, torch.full((3,), 1.5, dtype=torch.float64))


def test_refuses_misconfigured_updater():
    connection = LinearDense(4, 2, dtype=torch.float64)
    cell = Cell(connection, LIF(2, dtype=torch.float64))
    cell.make_updater()  # no normalisation
    with pytest.raises(ValueError, match=r"^cell"):
        OnlineSTDP().register_cell("c", cell)
    with pytest.raises(ValueError, match=r"^variant"):
        OnlineSTDP(variant="sometimes")
    with pytest.raises(ValueError, match=r"^w_min"):
        OnlineSTDP(w_min=2.0, w_max=1.0)
