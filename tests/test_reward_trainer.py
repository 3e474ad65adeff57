"""MSTDP and MSTDP-ET on cells against naive per-step, per-sample references."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_lif_cell
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.reward import MSTDP, MSTDPET
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, LinearDense
from plastic.neural.neurons import IF, LIF

# plasticity only: cells step under torch.no_grad(), as a plasticity run should (GradModeWarning)
pytestmark = pytest.mark.usefixtures("no_grad")


def reward_reference(pre, post, reward, *, dt, tau_plus, tau_minus, a_plus, a_minus, learning_rate,
                     tau_eligibility=None, pairing="all"):  # fmt: skip
    """Florian (2007) step by step. pre [T, B, N_in], post [T, B, N_out], reward [T, B].

    ``tau_eligibility=None``: MSTDP, ``dw_t = sum_b r_{b,t} z_{b,t-1}``; else MSTDP-ET,
    ``e_t = c e_{t-1} + z_{t-1}/tau_e``, ``dw_t = sum_b r_{b,t} e_{b,t}``.
    """
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    decay_pre, decay_post = math.exp(-dt / tau_plus), math.exp(-dt / tau_minus)
    x_pre = torch.zeros(batch, n_in, dtype=torch.float64)
    x_post = torch.zeros(batch, n_out, dtype=torch.float64)
    z_previous = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
    eligibility_trace = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
    dw = torch.zeros(n_out, n_in, dtype=torch.float64)
    for t in range(steps):
        if pairing == "all":
            x_pre = x_pre * decay_pre + a_plus * pre[t]
            x_post = x_post * decay_post + a_minus * post[t]
        else:
            x_pre = torch.where(pre[t] > 0, torch.full_like(x_pre, a_plus), x_pre * decay_pre)
            x_post = torch.where(post[t] > 0, torch.full_like(x_post, a_minus), x_post * decay_post)
        z = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
        for b in range(batch):
            z[b] = torch.outer(post[t, b], x_pre[b]) - torch.outer(x_post[b], pre[t, b])
        if tau_eligibility is None:
            for b in range(batch):
                dw += reward[t, b] * z_previous[b]
        else:
            eligibility_trace = eligibility_trace * math.exp(-dt / tau_eligibility) + z_previous / tau_eligibility
            for b in range(batch):
                dw += reward[t, b] * eligibility_trace[b]
        z_previous = z
    return learning_rate * dw


def net_pending(cell):
    potentiation, depression = cell.updater.pending("weight")
    return potentiation - depression


def random_spikes(shape, rate, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < rate).to(dtype)


@given(
    n_in=st.integers(1, 4), n_out=st.integers(1, 3), batch=st.integers(1, 3), steps=st.integers(1, 20),
    rate=st.floats(0.05, 0.7), dt=st.sampled_from([0.5, 1.0]), tau_plus=st.floats(2.0, 40.0),
    tau_minus=st.floats(2.0, 40.0), tau_e=st.floats(3.0, 50.0), trace=st.sampled_from([True, False]),
    reward_kind=st.sampled_from(["scalar", "batch", "time", "both"]), pairing=st.sampled_from(["all", "nearest"]),
    seed=st.integers(0, 2**16),
)  # fmt: skip
def test_window_matches_reference(n_in, n_out, batch, steps, rate, dt, tau_plus, tau_minus, tau_e, trace,
                                  reward_kind, pairing, seed):  # fmt: skip
    params = {"tau_plus": tau_plus, "tau_minus": tau_minus, "a_plus": 1.0, "a_minus": 0.7, "learning_rate": 0.5}
    cell = make_lif_cell(n_in, n_out, batch, seed)
    cell.connection.dt = cell.neuron.dt = dt
    trainer = (MSTDPET(tau_eligibility=tau_e, pairing=pairing, window=32, **params) if trace
               else MSTDP(pairing=pairing, window=32, **params))  # fmt: skip
    trainer.register_cell("c", cell)
    generator = torch.Generator().manual_seed(seed + 1)
    table = torch.randn(steps, batch, generator=generator, dtype=torch.float64)
    if reward_kind == "scalar":
        reward, table = 0.8, torch.full((steps, batch), 0.8, dtype=torch.float64)
    elif reward_kind == "batch":
        table = table[:1].expand(steps, batch)
        reward = table[0].reshape(1, batch) if steps == batch and steps > 1 else table[0].clone()
    elif reward_kind == "time":
        table = table[:, :1].expand(steps, batch)
        reward = table[:, 0].reshape(steps, 1) if steps == batch and steps > 1 else table[:, 0].clone()
    else:
        reward = table
    cell.step_mode = "window"
    cell(random_spikes((steps, batch, n_in), rate, seed))
    pre, post = cell.connection.synspike.double(), cell.neuron.spike.double()
    trainer(reward)
    expected = reward_reference(pre, post, table, dt=dt, tau_eligibility=tau_e if trace else None,
                                pairing=pairing, **params)  # fmt: skip
    torch.testing.assert_close(net_pending(cell), expected, rtol=1e-9, atol=1e-12)


@given(steps=st.integers(2, 16), batch=st.integers(1, 3), trace=st.sampled_from([True, False]),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_every_step_equals_one_call(steps, batch, trace, seed):
    inputs = random_spikes((steps, batch, 4), 0.4, seed)
    rewards = torch.randn(steps, batch, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    results = []
    for per_step in (True, False):
        cell = make_lif_cell(4, 3, batch, seed)
        trainer = MSTDPET(window=32) if trace else MSTDP(window=32)
        trainer.register_cell("c", cell)
        if per_step:
            for t in range(steps):
                cell(inputs[t])
                trainer(rewards[t])
        else:
            cell.step_mode = "window"
            cell(inputs)
            trainer(rewards)
        results.append(net_pending(cell))
    torch.testing.assert_close(results[0], results[1], rtol=1e-10, atol=1e-12)


def hand_cell(trainer):
    # input 1 drives the neuron (weight 10, threshold 1); input 0 is the synapse under test (weight 0)
    connection = LinearDense(2, 1, dtype=torch.float64, weight_init=lambda w: w.copy_(torch.tensor([[0.0, 10.0]])))
    cell = Cell(connection, IF(1, v_threshold=1.0, dtype=torch.float64))
    cell.make_updater()
    trainer.register_cell("c", cell)
    return cell


@pytest.mark.parametrize("trace", [False, True])
def test_reward_acts_on_eligibility_of_the_step_before(trace):
    trainer = MSTDPET(tau_eligibility=25.0) if trace else MSTDP()
    cell = hand_cell(trainer)
    pre_then_post = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)  # pre at t=0, post at t=1
    cell.step_mode = "window"
    cell(pre_then_post)
    assert cell.neuron.spike.flatten().tolist() == [False, True]
    trainer(torch.tensor([0.0, 1.0], dtype=torch.float64))  # reward at t=1 meets z_0 = 0
    assert net_pending(cell)[0, 0].item() == 0.0
    cell.step_mode = "single"
    cell(torch.zeros(1, 2, dtype=torch.float64))
    trainer(1.0)  # reward at t=2 meets z_1 = x_pre(1) = exp(-1/20)
    expected = math.exp(-1.0 / 20.0) * (1.0 / 25.0 if trace else 1.0)
    assert net_pending(cell)[0, 0].item() == pytest.approx(expected, rel=1e-12)


def test_conv_matches_dense_on_unfolded_input():
    kernel, stride, padding, length, batch = 3, 2, 1, 8, 2
    generator = torch.Generator().manual_seed(4)
    connection = Conv1d(
        2,
        3,
        kernel,
        stride,
        padding,
        in_size=length,
        batch_size=batch,
        dtype=torch.float64,
        weight_init=lambda w: w.copy_(torch.rand(w.shape, generator=generator, dtype=w.dtype)),
    )
    cell = Cell(connection, LIF(connection.out_shape, tau=2.0, v_threshold=0.3, batch_size=batch, dtype=torch.float64))
    cell.make_updater()
    trainer = MSTDP(window=32)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((10, batch, 2, length), 0.4, 4))
    pre, post = cell.connection.synspike.double(), cell.neuron.spike.double()
    rewards = torch.randn(10, batch, generator=generator, dtype=torch.float64)
    trainer(rewards)
    padded = torch.nn.functional.pad(pre, (padding, padding))
    expected = torch.zeros(connection.weight.shape, dtype=torch.float64)
    for p in range(post.shape[-1]):
        field = padded[..., p * stride : p * stride + kernel].reshape(10, batch, -1)  # explicit receptive field
        dense = reward_reference(field, post[..., p], rewards, dt=1.0, tau_plus=20.0, tau_minus=20.0,
                                 a_plus=1.0, a_minus=1.0, learning_rate=1.0)  # fmt: skip
        expected += dense.reshape(connection.weight.shape)
    torch.testing.assert_close(net_pending(cell), expected, rtol=1e-9, atol=1e-12)


def test_bad_reward_changes_nothing():
    cell = make_lif_cell(3, 2, 2)
    trainer = MSTDP(window=32)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(random_spikes((5, 2, 3), 0.5, 0))
    with pytest.raises(ValueError, match=r"^reward"):
        trainer(torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^reward"):
        trainer(float("nan"))
    assert not cell.updater.has_pending()
    assert "eligibility" not in dict(trainer.states["c"].named_buffers())
    trainer(torch.ones(5, 2, dtype=torch.float64))  # the steps are still there
    assert cell.updater.has_pending()
