"""Triplet STDP (plastic.functional.triplet) against independent references:
an explicit per-step, per-sample loop with outer products, the closed-form sum
of the rule over the Pfister & Gerstner pairing protocol, and conv against the
dense rule applied to an explicitly unfolded input."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close_for_dtype, explicit_unfold, spikes
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.receptive import ConvGeometry
from plastic.functional.triplet import (
    TripletParameters,
    TripletTraces,
    triplet_initial_traces,
    triplet_stdp_step,
    triplet_stdp_window,
)
from plastic.neural.connections import Conv1d, Conv2d, LinearDense

# ----------------------------------------------------------------- references


def reference_triplet(pre, post, p: TripletParameters, dt, traces=None, factor_post=None, factor_pre=None):
    """Per step, per sample: traces by hand, explicit outer products (float64)."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]

    def decay(tau):
        return math.exp(-dt / tau) if p.exact_decay else 1.0 - dt / tau

    a1, ax, am, ay = decay(p.tau_plus), decay(p.tau_x), decay(p.tau_minus), decay(p.tau_y)
    if traces is None:
        r1, r2 = torch.zeros(batch, n_in, dtype=torch.float64), torch.zeros(batch, n_in, dtype=torch.float64)
        o1, o2 = torch.zeros(batch, n_out, dtype=torch.float64), torch.zeros(batch, n_out, dtype=torch.float64)
    else:
        r1, r2, o1, o2 = (x.double().clone() for x in traces)
    pot = torch.zeros(n_out, n_in, dtype=torch.float64)
    dep = torch.zeros(n_out, n_in, dtype=torch.float64)

    def advance(trace, decay_value, spikes):
        if p.pairing == "nearest":
            return torch.where(spikes > 0, torch.ones_like(trace), decay_value * trace)
        return decay_value * trace + spikes

    for t in range(steps):
        for b in range(batch):
            s_pre = pre[t, b].double()
            s_post = post[t, b].double()
            r2_before = ax * r2[b]
            o2_before = ay * o2[b]
            r1[b] = advance(r1[b], a1, s_pre)
            r2[b] = advance(r2[b], ax, s_pre)
            o1[b] = advance(o1[b], am, s_post)
            o2[b] = advance(o2[b], ay, s_post)
            pot += torch.outer(s_post * (p.a2_plus + p.a3_plus * o2_before), r1[b])
            dep += torch.outer(o1[b], s_pre * (p.a2_minus + p.a3_minus * r2_before))
    if factor_post is not None:
        pot = pot * factor_post
    if factor_pre is not None:
        dep = dep * factor_pre
    return pot, dep, (r1, r2, o1, o2)


def conv_as_dense(pre, post, groups, kernel, stride, padding, dilation, rule):
    """Apply ``rule(pre_dense [T, B*P, K], post_dense [T, B*P, O_g])`` per group and
    reassemble ``[C_out, K]`` (each output position becomes a sample)."""
    steps, batch, c_in = pre.shape[:3]
    c_out = post.shape[2]
    per_in, per_out = c_in // groups, c_out // groups
    results = []
    for g in range(groups):
        group_pre = pre[:, :, g * per_in : (g + 1) * per_in].double().flatten(0, 1)
        unfolded = explicit_unfold(group_pre, kernel, stride, padding, dilation)
        positions = unfolded.shape[1]
        pre_dense = unfolded.reshape(steps, batch * positions, -1)
        group_post = post[:, :, g * per_out : (g + 1) * per_out].double().reshape(steps, batch, per_out, positions)
        post_dense = group_post.permute(0, 1, 3, 2).reshape(steps, batch * positions, per_out)
        results.append(rule(pre_dense, post_dense))
    return results


parameters_strategy = st.builds(
    TripletParameters,
    tau_plus=st.floats(1.0, 40.0),
    tau_minus=st.floats(1.0, 40.0),
    tau_x=st.floats(2.0, 120.0),
    tau_y=st.floats(2.0, 120.0),
    a2_plus=st.floats(0.0, 2.0),
    a3_plus=st.floats(0.0, 2.0),
    a2_minus=st.floats(0.0, 2.0),
    a3_minus=st.floats(0.0, 2.0),
    pairing=st.sampled_from(["all", "nearest"]),
    exact_decay=st.booleans(),
)


# ----------------------------------------------------------------- dense vs naive


@given(
    seed=st.integers(0, 2**31 - 1),
    steps=st.integers(1, 7),
    batch=st.integers(1, 3),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 4),
    rate_pre=st.floats(0.05, 0.9),
    rate_post=st.floats(0.05, 0.9),
    dt=st.floats(0.25, 1.0),
    parameters=parameters_strategy,
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_dense_window_matches_naive_loop(seed, steps, batch, n_in, n_out, rate_pre, rate_post, dt, parameters, dtype):
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, n_in), rate_pre)
    post = spikes(generator, (steps, batch, n_out), rate_post)
    initial = TripletTraces(
        torch.rand(batch, n_in, generator=generator, dtype=dtype),
        torch.rand(batch, n_in, generator=generator, dtype=dtype),
        torch.rand(batch, n_out, generator=generator, dtype=dtype),
        torch.rand(batch, n_out, generator=generator, dtype=dtype),
    )
    result = triplet_stdp_window(pre, post, initial, parameters, dt=dt)
    pot, dep, final = reference_triplet(pre, post, parameters, dt, initial)
    assert result.potentiation.dtype == dtype
    assert_close_for_dtype(result.potentiation, pot, dtype)
    assert_close_for_dtype(result.depression, dep, dtype)
    for got, want in zip(result.traces, final, strict=True):
        assert_close_for_dtype(got, want, dtype)
    assert bool((result.potentiation >= 0).all()) and bool((result.depression >= 0).all())


@given(
    seed=st.integers(0, 2**31 - 1),
    steps=st.integers(2, 8),
    split=st.integers(1, 7),
    batch=st.integers(1, 3),
    parameters=parameters_strategy,
    dt=st.floats(0.25, 1.0),
)
def test_window_equals_steps_and_chained_windows(seed, steps, split, batch, parameters, dt):
    split = min(split, steps - 1)
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, 4), 0.4)
    post = spikes(generator, (steps, batch, 3), 0.4)
    zero = triplet_initial_traces(batch, (4,), (3,), dtype=torch.float64)
    whole = triplet_stdp_window(pre, post, zero, parameters, dt=dt)
    traces, pot, dep = zero, 0.0, 0.0
    for t in range(steps):
        step = triplet_stdp_step(pre[t], post[t], traces, parameters, dt=dt)
        traces, pot, dep = step.traces, pot + step.potentiation, dep + step.depression
    first = triplet_stdp_window(pre[:split], post[:split], zero, parameters, dt=dt)
    second = triplet_stdp_window(pre[split:], post[split:], first.traces, parameters, dt=dt)
    for value in (pot, first.potentiation + second.potentiation):
        assert_close_for_dtype(value, whole.potentiation, torch.float64)
    for value in (dep, first.depression + second.depression):
        assert_close_for_dtype(value, whole.depression, torch.float64)
    for got, want in zip(second.traces, whole.traces, strict=True):
        assert_close_for_dtype(got, want, torch.float64)


def test_weight_dependence_and_batch_reductions():
    generator = torch.Generator().manual_seed(3)
    pre = spikes(generator, (6, 3, 4), 0.5)
    post = spikes(generator, (6, 3, 2), 0.5)
    weight = torch.rand(2, 4, generator=generator, dtype=torch.float64)
    parameters = TripletParameters(a2_plus=0.5, a3_plus=0.25, a2_minus=0.75, a3_minus=0.1)
    result = triplet_stdp_window(
        pre, post, None, parameters, weight=weight, f_post=lambda w: 1.0 - w, f_pre=lambda w: w * w
    )
    pot, dep, _ = reference_triplet(pre, post, parameters, 1.0, None, 1.0 - weight, weight * weight)
    assert_close_for_dtype(result.potentiation, pot, torch.float64)
    assert_close_for_dtype(result.depression, dep, torch.float64)
    mean = triplet_stdp_window(pre, post, None, parameters, weight=weight, batch_reduction="mean")
    plain, plain_dep, _ = reference_triplet(pre, post, parameters, 1.0)
    assert_close_for_dtype(mean.potentiation, plain / 3, torch.float64)
    assert_close_for_dtype(mean.depression, plain_dep / 3, torch.float64)
    # a callable reduction sees per-sample values: the max over samples
    maximum = triplet_stdp_window(pre, post, None, parameters, weight=weight, batch_reduction=lambda x: x.max(0).values)
    per_sample = [reference_triplet(pre[:, b : b + 1], post[:, b : b + 1], parameters, 1.0) for b in range(3)]
    assert_close_for_dtype(maximum.potentiation, torch.stack([r[0] for r in per_sample]).max(0).values, torch.float64)
    assert_close_for_dtype(maximum.depression, torch.stack([r[1] for r in per_sample]).max(0).values, torch.float64)


# ----------------------------------------------------------------- conv vs unfolded dense


@given(
    seed=st.integers(0, 2**31 - 1),
    dims=st.sampled_from([1, 2]),
    groups=st.sampled_from([1, 2]),
    channels_per_group=st.integers(1, 2),
    out_per_group=st.integers(1, 2),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    steps=st.integers(1, 4),
    batch=st.integers(1, 2),
    parameters=parameters_strategy,
)
def test_conv_equals_dense_on_unfolded_input(
    seed, dims, groups, channels_per_group, out_per_group, kernel, stride, padding, dilation, steps, batch, parameters
):
    size = 5 if dims == 1 else 4
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        padding = span  # keep at least one output position
    c_in, c_out = groups * channels_per_group, groups * out_per_group
    geometry = ConvGeometry.create(dims, c_in, c_out, kernel, stride, padding, dilation, groups)
    out_size = (size + 2 * padding - span) // stride + 1
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, c_in, *([size] * dims)), 0.4)
    post = spikes(generator, (steps, batch, c_out, *([out_size] * dims)), 0.4)
    zero = triplet_initial_traces(batch, pre.shape[2:], post.shape[2:], dtype=torch.float64)
    result = triplet_stdp_window(pre, post, zero, parameters, view=geometry)
    dense = conv_as_dense(
        pre,
        post,
        groups,
        (kernel,) * dims,
        (stride,) * dims,
        (padding,) * dims,
        (dilation,) * dims,
        lambda p_, q_: reference_triplet(p_, q_, parameters, 1.0)[:2],
    )
    pot = torch.cat([d[0] for d in dense]).reshape(geometry.weight_shape)
    dep = torch.cat([d[1] for d in dense]).reshape(geometry.weight_shape)
    assert_close_for_dtype(result.potentiation, pot, torch.float64)
    assert_close_for_dtype(result.depression, dep, torch.float64)
    # the connection itself as the view: the same reference
    connection = (Conv1d if dims == 1 else Conv2d)(
        c_in, c_out, kernel, stride, padding, dilation, groups, in_size=(size,) * dims, dtype=torch.float64
    )
    by_connection = triplet_stdp_window(pre, post, zero, parameters, view=connection)
    assert_close_for_dtype(by_connection.potentiation, pot, torch.float64)
    assert_close_for_dtype(by_connection.depression, dep, torch.float64)


# ----------------------------------------------------------------- pairing protocol


def analytic_protocol(pre_times, post_times, p: TripletParameters):
    """Closed form of the rule: sums over earlier spikes of exp(-delta/tau)."""

    def trace(times, at, tau, strict):
        earlier = [s for s in times if (s < at if strict else s <= at)]
        if p.pairing == "nearest":
            return math.exp(-(at - max(earlier)) / tau) if earlier else 0.0
        return sum(math.exp(-(at - s) / tau) for s in earlier)

    dw = 0.0
    for t in post_times:
        dw += trace(pre_times, t, p.tau_plus, False) * (p.a2_plus + p.a3_plus * trace(post_times, t, p.tau_y, True))
    for t in pre_times:
        dw -= trace(post_times, t, p.tau_minus, False) * (p.a2_minus + p.a3_minus * trace(pre_times, t, p.tau_x, True))
    return dw


@pytest.mark.parametrize(
    ("dt", "frequencies", "pairing"),
    [
        (10.0, [0.1, 1.0, 5.0, 10.0, 20.0, 50.0], "all"),
        (1.0, [10.0, 20.0, 40.0, 50.0], "all"),
        (1.0, [10.0, 20.0, 40.0, 50.0], "nearest"),
    ],
)
def test_pairing_protocol_matches_closed_form(dt, frequencies, pairing):
    """Pfister & Gerstner (2006): 60 pre/post pairs at +-10 ms, frequencies up to 50 Hz.

    One pre/post neuron pair per (frequency, sign); the diagonal of ``dw``
    is that pair's change. Run as two chained windows.
    """
    parameters = TripletParameters(pairing=pairing)
    pairs, lag = 60, 10.0
    cases = [(f, sign) for f in frequencies for sign in (+1, -1)]
    period_steps = [round(1000.0 / f / dt) for f, _ in cases]
    lag_steps = round(lag / dt)
    steps = max(period_steps) * pairs + 2 * lag_steps
    pre = torch.zeros(steps, 1, len(cases), dtype=torch.bool)
    post = torch.zeros(steps, 1, len(cases), dtype=torch.bool)
    expected = []
    for index, ((_frequency, sign), period) in enumerate(zip(cases, period_steps, strict=True)):
        first_pre = lag_steps if sign > 0 else 2 * lag_steps
        pre_steps = [first_pre + k * period for k in range(pairs)]
        post_steps = [s + sign * lag_steps for s in pre_steps]
        pre[pre_steps, 0, index] = True
        post[post_steps, 0, index] = True
        expected.append(analytic_protocol([s * dt for s in pre_steps], [s * dt for s in post_steps], parameters))
    half = steps // 2
    zero = triplet_initial_traces(1, (len(cases),), (len(cases),), dtype=torch.float64)
    first = triplet_stdp_window(pre[:half], post[:half], zero, parameters, dt=dt)
    second = triplet_stdp_window(pre[half:], post[half:], first.traces, parameters, dt=dt)
    dw = (first.potentiation + second.potentiation - first.depression - second.depression).diagonal()
    torch.testing.assert_close(dw, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-15)
    # the protocol's signature: depression for post-before-pre at low rates, potentiation at high rates
    by_case = dict(zip(cases, dw.tolist(), strict=True))
    if pairing == "nearest":
        return  # the default parameters are the all-to-all fit
    assert by_case[(50.0, +1)] > 0 and by_case[(50.0, -1)] > 0
    if 1.0 in frequencies:
        assert by_case[(1.0, -1)] < 0


# ----------------------------------------------------------------- hand case, errors


def test_hand_computed_triplet():
    """pre at 0, post at 1, post at 3 (dt = 1, all-to-all)."""
    p = TripletParameters(
        tau_plus=2.0, tau_minus=3.0, tau_x=4.0, tau_y=5.0, a2_plus=1.0, a3_plus=0.5, a2_minus=0.25, a3_minus=0.125
    )
    pre = torch.tensor([1, 0, 0, 0], dtype=torch.float64).reshape(4, 1, 1)
    post = torch.tensor([0, 1, 0, 1], dtype=torch.float64).reshape(4, 1, 1)
    result = triplet_stdp_window(pre, post, None, p)
    # post at 1: r1 = e^{-1/2}, o2(1-) = 0; post at 3: r1 = e^{-3/2}, o2(3-) = e^{-2/5}
    expected_pot = math.exp(-0.5) * 1.0 + math.exp(-1.5) * (1.0 + 0.5 * math.exp(-0.4))
    assert result.potentiation.item() == pytest.approx(expected_pot, rel=1e-12)
    assert result.depression.item() == 0.0  # the only pre spike came before any post spike
    simultaneous = triplet_stdp_window(torch.ones(1, 1, 1), torch.ones(1, 1, 1), None, p)
    assert simultaneous.potentiation.item() == pytest.approx(1.0)
    assert simultaneous.depression.item() == pytest.approx(0.25)


def test_bad_input_raises_named_errors():
    pre = torch.zeros(3, 2, 4)
    post = torch.zeros(3, 2, 2)
    with pytest.raises(ValueError, match=r"^spikes_pre"):
        triplet_stdp_window(torch.full((3, 2, 4), 0.5), post)
    with pytest.raises(ValueError, match=r"^spikes_post"):
        triplet_stdp_window(pre, torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"^spikes_post"):
        triplet_stdp_window(pre, torch.zeros(3, 1, 2))
    with pytest.raises(ValueError, match=r"^dt"):
        triplet_stdp_window(pre, post, dt=0.0)
    with pytest.raises(TypeError, match=r"^view"):
        triplet_stdp_window(pre, post, view="dense")
    with pytest.raises(ValueError, match=r"^spikes_pre"):
        triplet_stdp_window(pre, post, view=LinearDense(3, 2))
    with pytest.raises(ValueError, match=r"^tau_plus"):
        TripletParameters(tau_plus=-1.0)
    with pytest.raises(ValueError, match=r"^a3_plus"):
        TripletParameters(a3_plus=float("nan"))
    with pytest.raises(ValueError, match=r"^pairing"):
        TripletParameters(pairing="closest")
    bad = TripletTraces(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^traces\.post_pair"):
        triplet_stdp_window(pre, post, bad)
    nan = TripletTraces(torch.full((2, 4), float("nan")), torch.zeros(2, 4), torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^traces\.pre_pair"):
        triplet_stdp_window(pre, post, nan)
    with pytest.raises(ValueError, match=r"^weight"):
        triplet_stdp_window(pre, post, f_post=lambda w: w)
    with pytest.raises(ValueError, match=r"^batch_reduction"):
        triplet_stdp_window(pre, post, batch_reduction="median")
    with pytest.raises(ValueError, match=r"^spikes_post"):
        triplet_stdp_window(torch.zeros(3, 2, 1, 5), torch.zeros(3, 2, 1, 5), view=ConvGeometry.create(1, 1, 1, 3))
