"""Learners on plain torch layers: toy SGD(lr=1) loops against naive per-step references."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from plastic.learn.learners import MSTDPETLearner, MSTDPLearner, STDPLearner
from plastic.neural.neurons import LIF


def stdp_reference(pre, post, *, dt, tau_pre, tau_post, eta_pre, eta_post, pairing="all"):
    """Per step, per sample: dw += eta_post s_post (x) x_pre - eta_pre x_post (x) s_pre. pre [T, B, N_in]."""
    steps, batch, n_in = pre.shape
    x_pre = torch.zeros(batch, n_in, dtype=torch.float64)
    x_post = torch.zeros(batch, post.shape[2], dtype=torch.float64)
    dw = torch.zeros(post.shape[2], n_in, dtype=torch.float64)
    for t in range(steps):
        if pairing == "all":
            x_pre = x_pre * math.exp(-dt / tau_pre) + pre[t]
            x_post = x_post * math.exp(-dt / tau_post) + post[t]
        else:
            x_pre = torch.where(pre[t] > 0, torch.ones_like(x_pre), x_pre * math.exp(-dt / tau_pre))
            x_post = torch.where(post[t] > 0, torch.ones_like(x_post), x_post * math.exp(-dt / tau_post))
        for b in range(batch):
            dw += eta_post * torch.outer(post[t, b], x_pre[b]) - eta_pre * torch.outer(x_post[b], pre[t, b])
    return dw


def mstdp_reference(pre, post, reward, *, tau_pre, tau_post, eta_pre, eta_post, learning_rate, tau_e=None):
    """Florian (2007) per step; reward [T, B]; tau_e None: MSTDP, else MSTDP-ET (dt = 1)."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    x_pre = torch.zeros(batch, n_in, dtype=torch.float64)
    x_post = torch.zeros(batch, n_out, dtype=torch.float64)
    z_previous = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
    trace = torch.zeros_like(z_previous)
    dw = torch.zeros(n_out, n_in, dtype=torch.float64)
    for t in range(steps):
        x_pre = x_pre * math.exp(-1 / tau_pre) + eta_post * pre[t]
        x_post = x_post * math.exp(-1 / tau_post) + eta_pre * post[t]
        z = torch.stack([torch.outer(post[t, b], x_pre[b]) - torch.outer(x_post[b], pre[t, b]) for b in range(batch)])
        if tau_e is None:
            factor = z_previous
        else:
            trace = trace * math.exp(-1 / tau_e) + z_previous / tau_e
            factor = trace
        for b in range(batch):
            dw += learning_rate * reward[t, b] * factor[b]
        z_previous = z
    return dw


def random_spikes(shape, rate, seed):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).double()


def make_layer(n_in, n_out, seed):
    layer = nn.Linear(n_in, n_out, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(
            torch.rand(layer.weight.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        )
    return layer


@given(
    n_in=st.integers(1, 5), n_out=st.integers(1, 4), batch=st.integers(1, 3), steps=st.integers(1, 15),
    rate=st.floats(0.1, 0.7), tau_pre=st.floats(2.0, 30.0), tau_post=st.floats(2.0, 30.0),
    dt=st.sampled_from([0.5, 1.0]), pairing=st.sampled_from(["all", "nearest"]),
    every=st.integers(1, 4), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_stdp_sgd_loop_applies_the_rule(n_in, n_out, batch, steps, rate, tau_pre, tau_post, dt, pairing, every, seed):
    layer = make_layer(n_in, n_out, seed)
    neuron = LIF(n_out, tau=2.0, v_threshold=0.4, batch_size=batch, dtype=torch.float64)
    learner = STDPLearner(layer, neuron, tau_pre=tau_pre, tau_post=tau_post, eta_pre=0.3, eta_post=0.5,
                          pairing=pairing, dt=dt, window=64)  # fmt: skip
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    before = layer.weight.detach().clone()
    inputs = random_spikes((steps, batch, n_in), rate, seed)
    posts = []
    with torch.no_grad():
        for t in range(steps):
            posts.append(neuron(layer(inputs[t])))
            if (t + 1) % every == 0 or t == steps - 1:  # the optimizer steps every few time steps
                optimizer.zero_grad()
                learner.step()
                optimizer.step()
    expected = stdp_reference(inputs, torch.stack(posts), dt=dt, tau_pre=tau_pre, tau_post=tau_post,
                              eta_pre=0.3, eta_post=0.5, pairing=pairing)  # fmt: skip
    torch.testing.assert_close(layer.weight.detach() - before, expected, rtol=1e-9, atol=1e-12)


def test_window_mode_equals_single_mode_and_returned_dw():
    inputs = random_spikes((12, 2, 4), 0.5, 1)
    results = []
    for mode in ("single", "window"):
        layer = make_layer(4, 3, 1)
        neuron = LIF(3, tau=2.0, v_threshold=0.4, batch_size=2, dtype=torch.float64, step_mode=mode)
        learner = STDPLearner(layer, neuron, step_mode=mode, eta_pre=0.2, eta_post=0.4)
        with torch.no_grad():
            if mode == "single":
                for t in range(12):
                    neuron(layer(inputs[t]))
            else:
                neuron(layer(inputs))
        results.append(learner.step(on_grad=False, scale=2.0))
        assert layer.weight.grad is None
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_grad_accumulates():
    layer = make_layer(3, 2, 0)
    neuron = LIF(2, tau=2.0, v_threshold=0.4, dtype=torch.float64)
    learner = STDPLearner(layer, neuron)
    layer.weight.grad = torch.ones_like(layer.weight)
    with torch.no_grad():
        for t in range(5):
            neuron(layer(random_spikes((1, 3), 0.6, t)))
    dw = learner.step(scale=0.5)
    torch.testing.assert_close(layer.weight.grad, 1.0 - dw)


def conv_reference(pre, post, kernel, **rule):
    """Conv1d (stride 1, no padding) as a dense rule per output position on the explicit receptive field."""
    steps, batch, c_in, _length = pre.shape
    c_out, positions = post.shape[2], post.shape[3]
    dw = torch.zeros(c_out, c_in, kernel, dtype=torch.float64)
    for p in range(positions):
        field = pre[..., p : p + kernel].reshape(steps, batch, c_in * kernel)
        dw += stdp_reference(field, post[..., p], **rule).reshape(c_out, c_in, kernel)
    return dw


def test_conv1d_learner_matches_unfolded_dense():
    layer = nn.Conv1d(2, 3, 3, bias=False, dtype=torch.float64)
    neuron = LIF((3, 6), tau=2.0, v_threshold=0.3, batch_size=2, dtype=torch.float64)
    learner = STDPLearner(layer, neuron, tau_pre=5.0, tau_post=8.0, eta_pre=0.3, eta_post=0.5)
    inputs = random_spikes((10, 2, 2, 8), 0.4, 2)
    with torch.no_grad():
        posts = torch.stack([neuron(layer(inputs[t])) for t in range(10)])
    dw = learner.step(on_grad=False)
    expected = conv_reference(inputs, posts, 3, dt=1.0, tau_pre=5.0, tau_post=8.0, eta_pre=0.3, eta_post=0.5)
    torch.testing.assert_close(dw, expected, rtol=1e-9, atol=1e-12)


def test_conv2d_learner_accepts_flattened_window():
    # a Conv2d applied to the flattened window [T*B, C, H, W], the neuron in window mode
    layer = nn.Conv2d(1, 2, 2, bias=False, dtype=torch.float64)
    neuron = LIF((2, 3, 3), tau=2.0, v_threshold=0.3, batch_size=2, dtype=torch.float64, step_mode="window")
    learner = STDPLearner(layer, neuron, step_mode="window")
    inputs = random_spikes((5, 2, 1, 4, 4), 0.5, 3)
    with torch.no_grad():
        neuron(layer(inputs.flatten(0, 1)).unflatten(0, (5, 2)))
    dw = learner.step(on_grad=False)
    posts = neuron.spike.double()
    expected = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    for row in range(3):
        for col in range(3):
            field = inputs[..., row : row + 2, col : col + 2].reshape(5, 2, 4)
            expected += stdp_reference(field, posts[..., row, col], dt=1.0, tau_pre=20.0, tau_post=20.0,
                                       eta_pre=1.0, eta_post=1.0).reshape(2, 1, 2, 2)  # fmt: skip
    torch.testing.assert_close(dw, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("trace", [False, True])
def test_reward_learners_sgd_loop(trace):
    steps, batch = 14, 2
    layer = make_layer(4, 3, 5)
    neuron = LIF(3, tau=2.0, v_threshold=0.4, batch_size=batch, dtype=torch.float64)
    kwargs = {"tau_pre": 10.0, "tau_post": 15.0, "eta_pre": 0.7, "eta_post": 1.0, "learning_rate": 0.5}
    learner = (
        MSTDPETLearner(layer, neuron, tau_eligibility=12.0, **kwargs)
        if trace
        else MSTDPLearner(layer, neuron, **kwargs)
    )
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    before = layer.weight.detach().clone()
    inputs = random_spikes((steps, batch, 4), 0.5, 5)
    rewards = torch.randn(steps, batch, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    posts = []
    with torch.no_grad():
        for t in range(steps):
            posts.append(neuron(layer(inputs[t])))
            if t % 3 == 2 or t == steps - 1:  # rewards of the steps since the last call, [T, B]
                first = 3 * (t // 3)
                optimizer.zero_grad()
                learner.step(rewards[first : t + 1])
                optimizer.step()
    expected = mstdp_reference(inputs, torch.stack(posts), rewards, tau_e=12.0 if trace else None, **kwargs)
    torch.testing.assert_close(layer.weight.detach() - before, expected, rtol=1e-9, atol=1e-12)


def test_recorded_memory_is_bounded():
    layer = make_layer(4, 3, 6)
    neuron = LIF(3, tau=2.0, v_threshold=0.4, batch_size=2, dtype=torch.float64)
    learner = STDPLearner(layer, neuron, window=5, eta_pre=0.2)
    inputs = random_spikes((40, 2, 4), 0.5, 6)
    posts = []
    with torch.no_grad():
        for t in range(40):
            posts.append(neuron(layer(inputs[t])))
            assert learner.recorded_steps <= 5
            held = sum(x.numel() for side in learner._records.values() for x in side)
            assert held <= 5 * 2 * (4 + 3)
    dw = learner.step(on_grad=False)
    expected = stdp_reference(
        inputs, torch.stack(posts), dt=1.0, tau_pre=20.0, tau_post=20.0, eta_pre=0.2, eta_post=1.0
    )
    torch.testing.assert_close(dw, expected, rtol=1e-9, atol=1e-12)
    assert learner.recorded_steps == 0

    # the learner acts through the hooks it puts on layer and neuron: stepping them past its window raises
    _reward_learner = MSTDPLearner(layer, neuron, window=3)
    with torch.no_grad(), pytest.raises(RuntimeError, match="window"):
        for t in range(5):
            neuron(layer(inputs[t]))


def test_enable_disable_reset_and_detached_records():
    layer = make_layer(3, 2, 7)
    neuron = LIF(2, tau=2.0, v_threshold=0.4, dtype=torch.float64)
    learner = STDPLearner(layer, neuron)
    x = random_spikes((1, 3), 1.0, 0).requires_grad_(True)
    neuron(layer(x))
    assert learner.recorded_steps == 1  # one step, recorded on both sides
    assert all(not record.requires_grad for side in learner._records.values() for record in side)
    learner.disable()
    neuron(layer(x.detach()))
    assert learner.recorded_steps == 1
    learner.enable()
    learner.step(on_grad=False)
    assert "trace_pre" in dict(learner.named_buffers())
    learner.reset()
    assert learner.recorded_steps == 0 and not dict(learner.named_buffers())
    with pytest.raises(ValueError, match=r"^spikes_pre"):
        layer(torch.full((1, 3), 0.5, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^layer"):
        STDPLearner(nn.ReLU(), neuron)
    with pytest.raises(ValueError, match=r"^tau_pre"):
        STDPLearner(layer, neuron, tau_pre=0.0)
    with pytest.raises(ValueError, match=r"^scale"):
        learner.step(scale=-1.0)
