"""Inhibitory STDP (Vogels et al. 2011) against a plain-Python event loop of the
paper's equations: at a pre spike w += eta (x_post - alpha), at a post spike
w += eta x_pre, alpha = 2 rho_0 tau; traces jump by 1 and decay with tau."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import F64, assert_close_relative, conv_specs, drive, net_pending, run, synapse_sites
from helpers import make_cell as make_scripted_cell
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.inhibitory import inhibitory_depression_constant, inhibitory_stdp_window
from plastic.learn.inhibitory import InhibitorySTDP


def event_loop_reference(connection, pre, post, *, eta, tau, target_rate, dt, exact):
    """Summed over the batch: the paper's per-spike updates, site by site, in plain Python floats."""
    pre, post = pre.numpy(), post.numpy()
    steps, batch = pre.shape[:2]
    decay = math.exp(-dt / tau) if exact else 1 - dt / tau
    alpha = 2 * target_rate * tau / 1000.0
    x_pre = np.zeros(pre.shape[1:])
    x_post = np.zeros(post.shape[1:])
    dw = np.zeros(tuple(connection.weight.shape))
    for t in range(steps):
        x_pre = decay * x_pre + pre[t]
        x_post = decay * x_post + post[t]
        for b in range(batch):
            for weight_index, post_index, pre_index in synapse_sites(connection):
                if pre_index is None:
                    continue
                if pre[(t, b, *pre_index)]:
                    dw[weight_index] += eta * (x_post[(b, *post_index)] - alpha)
                if post[(t, b, *post_index)]:
                    dw[weight_index] += eta * x_pre[(b, *pre_index)]
    return dw, x_pre, x_post


net = net_pending


@settings(deadline=None, max_examples=30)
@given(
    steps=st.integers(1, 8),
    batch=st.integers(1, 3),
    dt=st.sampled_from([0.5, 1.0]),
    rate_pre=st.floats(0.05, 0.7),
    rate_post=st.floats(0.05, 0.7),
    seed=st.integers(0, 2**31 - 1),
    spec=conv_specs,
    exact=st.booleans(),
    tau=st.floats(2.0, 30.0),
    target_rate=st.floats(0.0, 50.0),
)
def test_window_matches_the_event_loop(steps, batch, dt, rate_pre, rate_post, seed, spec, exact, tau, target_rate):
    generator = torch.Generator().manual_seed(seed)
    cell = make_scripted_cell(spec, batch, dt)
    pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < rate_pre
    post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < rate_post
    trainer = InhibitorySTDP(eta=0.3, tau=tau, target_rate=target_rate, exact=exact)
    trainer.register_cell("c", cell)
    run(cell, pre, post, "window")
    trainer()
    expected, x_pre, x_post = event_loop_reference(
        cell.connection, pre, post, eta=0.3, tau=tau, target_rate=target_rate, dt=dt, exact=exact
    )
    assert_close_relative(net(cell), expected, rel=1e-12)
    assert_close_relative(trainer.get_unit("c").state.trace_pre, x_pre, rel=1e-12)
    assert_close_relative(trainer.get_unit("c").state.trace_post, x_post, rel=1e-12)


@settings(deadline=None, max_examples=20)
@given(
    steps=st.integers(2, 9),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
    spec=conv_specs,
    splits=st.lists(st.integers(1, 8), max_size=3),
)
def test_calling_every_step_or_in_chunks_equals_one_window(steps, batch, seed, spec, splits):
    generator = torch.Generator().manual_seed(seed)
    results = []
    for chunks in ("once", "every step", splits):
        cell = make_scripted_cell(spec, batch, 1.0)
        trainer = InhibitorySTDP(eta=0.5, tau=5.0, target_rate=20.0)
        trainer.register_cell("c", cell)
        if not results:
            pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < 0.3
            post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < 0.3
        drive(cell, trainer, (pre, post), chunks)
        results.append(net(cell))
    assert_close_relative(results[1], results[0].numpy(), rel=1e-12)
    assert_close_relative(results[2], results[0].numpy(), rel=1e-12)


def test_hand_computed_pairs_and_the_sign_convention():
    # alpha = 2 * 5 Hz * 20 ms = 0.2; pre at step 0, post at step 3 (dt 1): post reads x_pre = e^(-3/20)
    assert inhibitory_depression_constant(5.0, 20.0) == pytest.approx(0.2, rel=1e-15)
    pre = torch.zeros(4, 1, 3, dtype=torch.bool)
    post = torch.zeros(4, 1, 2, dtype=torch.bool)
    pre[0, 0, 1] = True
    post[3, 0, 0] = True
    result = inhibitory_stdp_window(pre, post, eta=0.01, tau=20.0, target_rate=5.0)
    potentiation = result.potentiation.reshape(2, 3)
    depression = result.depression.reshape(2, 3)
    expected_potentiation = torch.zeros(2, 3, dtype=potentiation.dtype)
    expected_potentiation[0, 1] = 0.01 * math.exp(-3 / 20)
    torch.testing.assert_close(potentiation, expected_potentiation, rtol=1e-6, atol=0)
    # the pre spike depresses every synapse it reaches by eta * alpha
    expected_depression = torch.zeros(2, 3, dtype=depression.dtype)
    expected_depression[:, 1] = 0.01 * 0.2
    torch.testing.assert_close(depression, expected_depression, rtol=1e-6, atol=0)

    for sign in (1, -1):
        cell = make_scripted_cell(None, 1, 1.0)
        trainer = InhibitorySTDP(eta=0.01, tau=20.0, target_rate=5.0, weight_sign=sign)
        trainer.register_cell("c", cell)
        run(cell, pre, post, "window")
        trainer()
        expected = (expected_potentiation - expected_depression).to(F64)
        assert_close_relative(net(cell), (sign * expected).numpy(), rel=1e-6)


def test_bad_parameters_name_the_argument_and_leave_the_trainer_unchanged():
    with pytest.raises(ValueError, match="pairing"):
        InhibitorySTDP(pairing="nearest")
    with pytest.raises(ValueError, match="target_rate"):
        InhibitorySTDP(target_rate=-1.0)
    with pytest.raises(ValueError, match="weight_sign"):
        InhibitorySTDP(weight_sign=0)
    with pytest.raises(ValueError, match="tau"):
        inhibitory_stdp_window(torch.zeros(2, 1, 3), torch.zeros(2, 1, 2), tau=0.0)
    cell = make_scripted_cell(None, 1, 1.0)
    trainer = InhibitorySTDP()
    with pytest.raises(ValueError, match="eta"):
        trainer.register_cell("c", cell, eta=-1.0)
    assert trainer.names == []


def test_balance_run_moves_the_rate_towards_each_target():
    # short run: from ~70 Hz without inhibition, each neuron's rate falls towards its target
    from plastic.zoo.figures_inhibitory import TARGET_RATES, run_inhibitory_balance

    result = run_inhibitory_balance(seconds=12, window=500)
    first, last = result["rates"][0], result["rates"][-6:].mean(0)
    assert torch.all(first > 40.0)
    for column, target in enumerate(TARGET_RATES):
        assert last[column] < 3 * target
    assert torch.all(result["weights"][-1] < 0)
