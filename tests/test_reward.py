"""MSTDP and MSTDP-ET (plastic.functional.reward) against an explicit per-step,
per-sample loop with outer products; the reward ordering on hand cases; conv
against the dense rule on an explicitly unfolded input; reward broadcasting."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close_for_dtype, explicit_unfold, spikes
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.receptive import ConvGeometry
from plastic.functional.reward import (
    MSTDPETState,
    MSTDPState,
    RewardSTDPParameters,
    mstdp_et_step,
    mstdp_et_window,
    mstdp_step,
    mstdp_window,
)
from plastic.neural.connections import Conv1d, Conv2d

WINDOWS = {"mstdp": mstdp_window, "mstdp_et": mstdp_et_window}
STEPS = {"mstdp": mstdp_step, "mstdp_et": mstdp_et_step}
STATES = {"mstdp": MSTDPState, "mstdp_et": MSTDPETState}


# ----------------------------------------------------------------- references


def reference_reward(
    pre, post, reward, p: RewardSTDPParameters, dt, kind, state=None, factor_post=None, factor_pre=None
):
    """Per step, per sample (float64). ``reward`` ``[T, B]``. Returns the per-sample
    changes ``[B, O, I]`` and the final (x_pre, x_post, carried [B, O, I])."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]

    def decay(tau):
        return math.exp(-dt / tau) if p.exact_decay else 1.0 - dt / tau

    a_plus, a_minus, c = decay(p.tau_plus), decay(p.tau_minus), decay(p.tau_eligibility)
    if state is None:
        x_pre = torch.zeros(batch, n_in, dtype=torch.float64)
        x_post = torch.zeros(batch, n_out, dtype=torch.float64)
        carried = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
    else:
        x_pre, x_post = state[0].double().clone(), state[1].double().clone()
        carried = state[2].double().reshape(batch, n_out, n_in).clone()
    factor_post = 1.0 if factor_post is None else factor_post
    factor_pre = 1.0 if factor_pre is None else factor_pre
    changes = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
    for t in range(steps):
        for b in range(batch):
            # the reward of step t meets z_{t-1} (MSTDP) or e_t (MSTDP-ET), both formed before t
            changes[b] += p.learning_rate * float(reward[t, b]) * carried[b]
            s_pre, s_post = pre[t, b].double(), post[t, b].double()
            if p.pairing == "nearest":
                x_pre[b] = torch.where(s_pre > 0, torch.full_like(s_pre, p.a_plus), a_plus * x_pre[b])
                x_post[b] = torch.where(s_post > 0, torch.full_like(s_post, p.a_minus), a_minus * x_post[b])
            else:
                x_pre[b] = a_plus * x_pre[b] + p.a_plus * s_pre
                x_post[b] = a_minus * x_post[b] + p.a_minus * s_post
            z = factor_post * torch.outer(s_post, x_pre[b]) - factor_pre * torch.outer(x_post[b], s_pre)
            if kind == "mstdp":
                carried[b] = z
            else:
                carried[b] = c * carried[b] + z / p.tau_eligibility  # e_{t+1}
    return changes, (x_pre, x_post, carried)


parameters_strategy = st.builds(
    RewardSTDPParameters,
    tau_plus=st.floats(1.0, 40.0),
    tau_minus=st.floats(1.0, 40.0),
    a_plus=st.floats(0.0, 2.0),
    a_minus=st.floats(0.0, 2.0),
    learning_rate=st.floats(0.0, 2.0),
    tau_eligibility=st.floats(1.0, 50.0),
    pairing=st.sampled_from(["all", "nearest"]),
    exact_decay=st.booleans(),
)


def reward_forms(generator, steps, batch, form, dtype):
    """(reward as passed, the same reward as a [T, B] table)."""
    if form == "scalar":
        value = float(torch.randn(1, generator=generator))
        return value, torch.full((steps, batch), value, dtype=torch.float64)
    if form == "tensor0":
        value = torch.randn((), generator=generator, dtype=dtype)
        return value, value.double().expand(steps, batch)
    if form == "time":
        value = torch.randn(steps, 1, generator=generator, dtype=dtype)
        return value.squeeze(1) if steps != batch else value, value.double().expand(steps, batch)
    if form == "sample":
        value = torch.randn(1, batch, generator=generator, dtype=dtype)
        return value.squeeze(0) if steps != batch else value, value.double().expand(steps, batch)
    value = torch.randn(steps, batch, generator=generator, dtype=dtype)
    return value, value.double()


# ----------------------------------------------------------------- dense vs naive


@given(
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["mstdp", "mstdp_et"]),
    steps=st.integers(1, 7),
    batch=st.integers(1, 3),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    rate_pre=st.floats(0.05, 0.9),
    rate_post=st.floats(0.05, 0.9),
    dt=st.floats(0.25, 1.0),
    parameters=parameters_strategy,
    form=st.sampled_from(["scalar", "tensor0", "time", "sample", "full"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_dense_window_matches_naive_loop(
    seed, kind, steps, batch, n_in, n_out, rate_pre, rate_post, dt, parameters, form, dtype
):
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, n_in), rate_pre)
    post = spikes(generator, (steps, batch, n_out), rate_post)
    reward, table = reward_forms(generator, steps, batch, form, dtype)
    state = STATES[kind](
        torch.rand(batch, n_in, generator=generator, dtype=dtype),
        torch.rand(batch, n_out, generator=generator, dtype=dtype),
        torch.randn(batch, 1, n_out, n_in, generator=generator, dtype=dtype),
    )
    result = WINDOWS[kind](pre, post, reward, state, parameters, dt=dt)
    changes, (x_pre, x_post, carried) = reference_reward(pre, post, table, parameters, dt, kind, state)
    assert result.update.dtype == dtype and result.update.shape == (n_out, n_in)
    # cancellations: compare against the scale of the terms, not of the (signed) sum
    scale = float(changes.abs().sum(0).max()) + 1e-3
    assert_close_for_dtype(result.update, changes.sum(0), dtype, scale)
    assert_close_for_dtype(result.state.trace_pre, x_pre, dtype)
    assert_close_for_dtype(result.state.trace_post, x_post, dtype)
    assert_close_for_dtype(
        result.state[2].reshape(batch, n_out, n_in), carried, dtype, float(carried.abs().max()) + 1e-3
    )


@given(
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["mstdp", "mstdp_et"]),
    steps=st.integers(2, 8),
    split=st.integers(1, 7),
    batch=st.integers(1, 3),
    parameters=parameters_strategy,
)
def test_window_equals_steps_and_chained_windows(seed, kind, steps, split, batch, parameters):
    split = min(split, steps - 1)
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, 4), 0.4)
    post = spikes(generator, (steps, batch, 3), 0.4)
    table = torch.randn(steps, batch, generator=generator, dtype=torch.float64)
    zero = STATES[kind](
        torch.zeros(batch, 4, dtype=torch.float64),
        torch.zeros(batch, 3, dtype=torch.float64),
        torch.zeros(batch, 1, 3, 4, dtype=torch.float64),
    )
    whole = WINDOWS[kind](pre, post, table, zero, parameters)
    state, total = zero, 0.0
    for t in range(steps):
        step = STEPS[kind](pre[t], post[t], table[t], state, parameters)
        state, total = step.state, total + step.update
    first = WINDOWS[kind](pre[:split], post[:split], table[:split], zero, parameters)
    second = WINDOWS[kind](pre[split:], post[split:], table[split:], first.state, parameters)
    scale = float(whole.update.abs().max()) + 1.0
    assert_close_for_dtype(total, whole.update, torch.float64, scale)
    assert_close_for_dtype(first.update + second.update, whole.update, torch.float64, scale)
    for got_step, got_chain, want in zip(state, second.state, whole.state, strict=True):
        assert_close_for_dtype(got_step, want, torch.float64, float(want.abs().max()) + 1.0)
        assert_close_for_dtype(got_chain, want, torch.float64, float(want.abs().max()) + 1.0)


@pytest.mark.parametrize("kind", ["mstdp", "mstdp_et"])
def test_weight_dependence_and_batch_reductions(kind):
    generator = torch.Generator().manual_seed(11)
    pre = spikes(generator, (6, 3, 4), 0.5)
    post = spikes(generator, (6, 3, 2), 0.5)
    table = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    weight = torch.rand(2, 4, generator=generator, dtype=torch.float64)
    p = RewardSTDPParameters(learning_rate=0.5, a_minus=0.7)
    result = WINDOWS[kind](pre, post, table, None, p, weight=weight, f_post=lambda w: 1.0 - w, f_pre=lambda w: w)
    changes, _ = reference_reward(pre, post, table, p, 1.0, kind, None, 1.0 - weight, weight)
    assert_close_for_dtype(result.update, changes.sum(0), torch.float64, float(changes.abs().sum(0).max()) + 1.0)
    mean = WINDOWS[kind](pre, post, table, None, p, weight=weight, batch_reduction="mean")
    plain, _ = reference_reward(pre, post, table, p, 1.0, kind)
    assert_close_for_dtype(mean.update, plain.mean(0), torch.float64, 1.0)
    maximum = WINDOWS[kind](
        pre,
        post,
        table,
        None,
        p,
        weight=weight,
        f_post=lambda w: 1.0 - w,
        f_pre=lambda w: w,
        batch_reduction=lambda x: x.max(0).values,
    )
    assert_close_for_dtype(maximum.update, changes.max(0).values, torch.float64, 1.0)


# ----------------------------------------------------------------- ordering (hand cases)


def test_mstdp_reward_acts_on_previous_eligibility():
    """pre at step 0, post at step 1: z_1 = A_plus * exp(-dt/tau_plus) (a causal pair)."""
    p = RewardSTDPParameters(tau_plus=10.0, a_plus=1.0, a_minus=1.0, learning_rate=2.0)
    pre = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64).reshape(4, 1, 1)
    post = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64).reshape(4, 1, 1)
    z_pair = math.exp(-0.1)
    same_step = mstdp_window(pre, post, torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert same_step.update.item() == 0.0
    one_later = mstdp_window(pre, post, torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64), None, p)
    assert one_later.update.item() == pytest.approx(2.0 * z_pair, rel=1e-12)
    two_later = mstdp_window(pre, post, torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64), None, p)
    assert two_later.update.item() == 0.0  # MSTDP has no memory beyond one step
    # the pair at the end of one window meets the reward at the start of the next
    first = mstdp_window(pre[:2], post[:2], 0.0, None, p)
    assert first.update.item() == 0.0 and first.state.eligibility.item() == pytest.approx(z_pair)
    second = mstdp_window(pre[2:], post[2:], torch.tensor([1.0, 0.0], dtype=torch.float64), first.state, p)
    assert second.update.item() == pytest.approx(2.0 * z_pair, rel=1e-12)
    # an anti-causal pair (post at 0, pre at 1) gives z = -A_minus * exp(-dt/tau_minus)
    anti = mstdp_window(post, pre, torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64), None, p)
    assert anti.update.item() == pytest.approx(-2.0 * math.exp(-1.0 / 20.0), rel=1e-12)


def test_mstdp_et_hand_case():
    """z_1 = e^{-1/10}; e_2 = z_1/tau_e, e_3 = c e_2 with c = e^{-1/25}."""
    p = RewardSTDPParameters(tau_plus=10.0, tau_eligibility=25.0, learning_rate=1.0)
    pre = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64).reshape(4, 1, 1)
    post = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64).reshape(4, 1, 1)
    z_pair = math.exp(-0.1)
    rewards = torch.eye(4, dtype=torch.float64)
    expected = [0.0, 0.0, z_pair / 25.0, math.exp(-1.0 / 25.0) * z_pair / 25.0]
    for t in range(4):
        result = mstdp_et_window(pre, post, rewards[t], None, p)
        assert result.update.item() == pytest.approx(expected[t], rel=1e-12, abs=0.0)


# ----------------------------------------------------------------- conv vs unfolded dense


@given(
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["mstdp", "mstdp_et"]),
    dims=st.sampled_from([1, 2]),
    groups=st.sampled_from([1, 2]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    steps=st.integers(1, 4),
    batch=st.integers(1, 2),
    parameters=parameters_strategy,
)
def test_conv_equals_dense_on_unfolded_input(
    seed, kind, dims, groups, kernel, stride, padding, dilation, steps, batch, parameters
):
    size = 5 if dims == 1 else 4
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        padding = span
    c_in, c_out = 2 * groups, groups
    geometry = ConvGeometry.create(dims, c_in, c_out, kernel, stride, padding, dilation, groups)
    out_size = (size + 2 * padding - span) // stride + 1
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, c_in, *([size] * dims)), 0.4)
    post = spikes(generator, (steps, batch, c_out, *([out_size] * dims)), 0.4)
    table = torch.randn(steps, batch, generator=generator, dtype=torch.float64)
    zero = STATES[kind](
        torch.zeros(pre.shape[1:], dtype=torch.float64),
        torch.zeros(post.shape[1:], dtype=torch.float64),
        torch.zeros(batch, groups, 1, 2 * kernel**dims, dtype=torch.float64),
    )
    result = WINDOWS[kind](pre, post, table, zero, parameters, view=geometry)
    positions = out_size**dims
    updates, carried = [], []
    for g in range(groups):
        group_pre = pre[:, :, 2 * g : 2 * g + 2].double().flatten(0, 1)
        unfolded = explicit_unfold(group_pre, (kernel,) * dims, (stride,) * dims, (padding,) * dims, (dilation,) * dims)
        pre_dense = unfolded.reshape(steps, batch * positions, -1)
        post_dense = post[:, :, g : g + 1].double().reshape(steps, batch * positions, 1)
        table_dense = table.repeat_interleave(positions, dim=1)  # each position is a sample of its batch item
        changes, (_, _, state) = reference_reward(pre_dense, post_dense, table_dense, parameters, 1.0, kind)
        updates.append(changes.sum(0))
        carried.append(state.reshape(batch, positions, 1, -1).sum(1))
    expected = torch.cat(updates).reshape(geometry.weight_shape)
    scale = float(torch.stack(updates).abs().max()) + 1.0
    assert_close_for_dtype(result.update, expected, torch.float64, scale)
    assert_close_for_dtype(result.state[2], torch.stack(carried, dim=1), torch.float64, scale)
    # the connection itself as the view: the same reference
    connection = (Conv1d if dims == 1 else Conv2d)(
        c_in, c_out, kernel, stride, padding, dilation, groups, in_size=(size,) * dims, dtype=torch.float64
    )
    by_connection = WINDOWS[kind](pre, post, table, zero, parameters, view=connection)
    assert_close_for_dtype(by_connection.update, expected, torch.float64, scale)
    assert_close_for_dtype(by_connection.state[2], torch.stack(carried, dim=1), torch.float64, scale)


# ----------------------------------------------------------------- broadcasting, errors


def test_reward_broadcasting_forms_agree():
    generator = torch.Generator().manual_seed(5)
    pre = spikes(generator, (4, 3, 2), 0.5).double()
    post = spikes(generator, (4, 3, 2), 0.5).double()
    per_step = torch.randn(4, dtype=torch.float64)
    per_sample = torch.randn(3, dtype=torch.float64)
    for window in WINDOWS.values():
        a = window(pre, post, per_step).update
        b = window(pre, post, per_step[:, None].expand(4, 3).clone()).update
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        c = window(pre, post, per_sample).update
        d = window(pre, post, per_sample[None].expand(4, 3).clone()).update
        torch.testing.assert_close(c, d, rtol=1e-12, atol=1e-12)
        e = window(pre, post, 0.5).update
        f = window(pre, post, torch.full((4, 3), 0.5, dtype=torch.float64)).update
        torch.testing.assert_close(e, f, rtol=1e-12, atol=1e-12)


def test_bad_input_raises_named_errors():
    pre = torch.zeros(3, 2, 4)
    post = torch.zeros(3, 2, 2)
    for window in WINDOWS.values():
        with pytest.raises(ValueError, match=r"^reward"):
            window(pre, post, torch.zeros(4))
        with pytest.raises(ValueError, match=r"^reward"):
            window(pre, post, torch.zeros(3, 2, 1))
        with pytest.raises(ValueError, match=r"^reward"):
            window(pre, post, torch.zeros(2, 3))
        with pytest.raises(ValueError, match=r"^reward"):
            window(pre, post, torch.tensor([1.0, float("nan"), 0.0]))
        with pytest.raises(ValueError, match=r"^reward"):
            window(pre, post, float("inf"))
        with pytest.raises(TypeError, match=r"^reward"):
            window(pre, post, "1")
        with pytest.raises(ValueError, match=r"^reward.*ambiguous"):
            window(torch.zeros(2, 2, 4), torch.zeros(2, 2, 2), torch.zeros(2))
        with pytest.raises(ValueError, match=r"^spikes_pre"):
            window(torch.full((3, 2, 4), 2.0), post, 1.0)
        with pytest.raises(ValueError, match=r"^spikes_post"):
            window(pre, torch.full((3, 2, 2), float("nan")), 1.0)
        with pytest.raises(ValueError, match=r"^dt"):
            window(pre, post, 1.0, dt=-1.0)
        with pytest.raises(TypeError, match=r"^view"):
            window(pre, post, 1.0, view="dense")
        with pytest.raises(ValueError, match=r"^state\.eligibility"):
            window(pre, post, 1.0, (torch.zeros(2, 4), torch.zeros(2, 2), torch.zeros(2, 1, 2, 3)))
    for step in STEPS.values():
        with pytest.raises(ValueError, match=r"^reward"):
            step(pre[0], post[0], torch.zeros(3))
        with pytest.raises(ValueError, match=r"^reward"):
            step(pre[0], post[0], torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"^tau_eligibility"):
        RewardSTDPParameters(tau_eligibility=0.0)
    with pytest.raises(ValueError, match=r"^tau_plus"):
        RewardSTDPParameters(tau_plus=float("nan"))
    # state is a value: a failed call leaves the caller's state untouched
    state = MSTDPState(torch.ones(2, 4), torch.ones(2, 2), torch.ones(2, 1, 2, 4))
    with pytest.raises(ValueError):
        mstdp_window(pre, post, torch.zeros(5), state)
    assert bool((state.trace_pre == 1).all()) and bool((state.eligibility == 1).all())
