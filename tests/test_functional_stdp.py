"""Pair STDP (trace form): brute-force pair sums, window == steps, chaining,
one-product form, event-driven path, conv == dense on an independently
unfolded input, memory bound, argument errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from plastic.functional.receptive import ConvGeometry
from plastic.functional.stdp import (
    stdp_delta_weight,
    stdp_step,
    stdp_window,
    stdp_window_net,
)

# ----------------------------------------------------------------- references


def _decay(dt, tau, exact):
    return math.exp(-dt / tau) if exact else 1.0 - dt / tau


def _trace_at(spikes, t, decay, amplitude, initial, pairing):
    """Trace of one neuron at step t from its spike times (no recurrence)."""
    times = [u for u in range(t + 1) if spikes[u]]
    carried = decay ** (t + 1) * initial
    if pairing == "nearest":
        return amplitude * decay ** (t - times[-1]) if times else carried
    return carried + sum(amplitude * decay ** (t - u) for u in times)


def brute_force(pre, post, x_pre0, x_post0, decay_pre, decay_post, amp_pre, amp_post, pairing):
    """Per-sample [B, N_out, N_in] potentiation and depression by explicit loops over
    samples, synapses and spikes (numpy float64)."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    pot = np.zeros((batch, n_out, n_in))
    dep = np.zeros((batch, n_out, n_in))
    for b in range(batch):
        for i in range(n_out):
            for j in range(n_in):
                for t in range(steps):
                    if post[t, b, i]:  # post spike: pre trace including this step
                        pot[b, i, j] += _trace_at(pre[:, b, j], t, decay_pre, amp_pre, x_pre0[b, j], pairing)
                    if pre[t, b, j]:  # pre spike: post trace including this step
                        dep[b, i, j] += _trace_at(post[:, b, i], t, decay_post, amp_post, x_post0[b, i], pairing)
    return pot, dep


def _spikes(generator, shape, rate):
    return torch.rand(shape, generator=generator, dtype=torch.float64) < rate


def _close(actual, expected, rel=1e-9, atol=1e-12):
    expected = torch.as_tensor(np.asarray(expected), dtype=torch.float64)
    actual = actual.to(torch.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = expected.abs().max().item() if expected.numel() else 0.0
    err = (actual - expected).abs().max().item() if expected.numel() else 0.0
    assert err <= rel * scale + atol, (err, scale)


cases = st.fixed_dictionaries(
    {
        "steps": st.integers(1, 7),
        "batch": st.integers(1, 4),
        "n_in": st.integers(1, 4),
        "n_out": st.integers(1, 3),
        "dt": st.sampled_from([0.25, 1.0, 2.0]),
        "tau_pre": st.floats(2.0, 40.0),
        "tau_post": st.floats(2.0, 40.0),
        "rate_pre": st.floats(0.05, 0.8),
        "rate_post": st.floats(0.05, 0.8),
        "amp_pre": st.floats(0.2, 2.0),
        "amp_post": st.floats(0.2, 2.0),
        "exact": st.booleans(),
        "pairing": st.sampled_from(["all", "nearest"]),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def _draw(case, dtype=torch.float64):
    generator = torch.Generator().manual_seed(case["seed"])
    shape = (case["steps"], case["batch"])
    pre = _spikes(generator, (*shape, case["n_in"]), case["rate_pre"])
    post = _spikes(generator, (*shape, case["n_out"]), case["rate_post"])
    x_pre0 = torch.rand(case["batch"], case["n_in"], generator=generator, dtype=torch.float64).to(dtype)
    x_post0 = torch.rand(case["batch"], case["n_out"], generator=generator, dtype=torch.float64).to(dtype)
    return pre, post, x_pre0, x_post0


def _reference(case, pre, post, x_pre0, x_post0):
    decay_pre = _decay(case["dt"], case["tau_pre"], case["exact"])
    decay_post = _decay(case["dt"], case["tau_post"], case["exact"])
    return brute_force(
        pre.numpy(), post.numpy(), x_pre0.double().numpy(), x_post0.double().numpy(),
        decay_pre, decay_post, case["amp_pre"], case["amp_post"], case["pairing"],
    )  # fmt: skip


def _kwargs(case):
    return {
        "tau_pre": case["tau_pre"], "tau_post": case["tau_post"], "dt": case["dt"], "exact": case["exact"],
        "amplitude_pre": case["amp_pre"], "amplitude_post": case["amp_post"],
    }  # fmt: skip


# ------------------------------------------------------------- brute force


@given(case=cases, method=st.sampled_from(["dense", "sparse"]), reduction=st.sampled_from(["sum", "mean", "amax"]))
def test_window_matches_brute_force_float64(case, method, reduction):
    pre, post, x_pre0, x_post0 = _draw(case)
    pot, dep = _reference(case, pre, post, x_pre0, x_post0)
    batch_reduction = (lambda x: x.amax(0)) if reduction == "amax" else reduction
    out = stdp_window(
        pre, post, x_pre0, x_post0, pairing=case["pairing"], method=method,
        batch_reduction=batch_reduction, **_kwargs(case),
    )  # fmt: skip
    reduce = {"sum": lambda a: a.sum(0), "mean": lambda a: a.mean(0), "amax": lambda a: a.max(0)}[reduction]
    _close(out.potentiation, reduce(pot)[None])
    _close(out.depression, reduce(dep)[None])
    # the returned traces are the traces after the last step
    for trace, spikes, initial, side in ((out.trace_pre, pre, x_pre0, "pre"), (out.trace_post, post, x_post0, "post")):
        decay = _decay(case["dt"], case[f"tau_{side}"], case["exact"])
        expected = [
            [
                _trace_at(
                    spikes[:, b, j].tolist(),
                    case["steps"] - 1,
                    decay,
                    case[f"amp_{side}"],
                    initial[b, j].item(),
                    case["pairing"],
                )
                for j in range(spikes.shape[2])
            ]
            for b in range(case["batch"])
        ]
        _close(trace, expected)


@given(case=cases)
def test_window_matches_brute_force_float32(case):
    pre, post, x_pre0, x_post0 = _draw(case, torch.float32)
    pot, dep = _reference(case, pre, post, x_pre0, x_post0)
    out = stdp_window(pre, post, x_pre0, x_post0, pairing=case["pairing"], **_kwargs(case))
    assert out.potentiation.dtype == torch.float32
    _close(out.potentiation, pot.sum(0)[None], rel=1e-5, atol=1e-6)
    _close(out.depression, dep.sum(0)[None], rel=1e-5, atol=1e-6)


def test_hand_computed_pairs():
    # pre at step 0, post at step 2 (dt = 1, tau = 10): potentiation exp(-0.2);
    # a simultaneous pair at step 4 adds 1 to both terms
    pre = torch.zeros(5, 1, 1, dtype=torch.bool)
    post = torch.zeros(5, 1, 1, dtype=torch.bool)
    pre[0] = pre[4] = True
    post[2] = post[4] = True
    out = stdp_window(pre, post, tau_pre=10.0, tau_post=10.0)
    potentiation = math.exp(-0.2) + (math.exp(-0.4) + 1.0)  # post@2: pre@0; post@4: pre@0, pre@4
    depression = math.exp(-0.2) + 1.0  # pre@4: post@2, post@4
    assert out.potentiation.item() == pytest.approx(potentiation, rel=1e-6)
    assert out.depression.item() == pytest.approx(depression, rel=1e-6)


# -------------------------------------------------------- steps and chaining


@given(case=cases, reduction=st.sampled_from(["sum", "mean"]))
def test_window_equals_sum_of_steps(case, reduction):
    pre, post, x_pre0, x_post0 = _draw(case)
    window = stdp_window(
        pre, post, x_pre0, x_post0, pairing=case["pairing"], batch_reduction=reduction, **_kwargs(case)
    )
    trace_pre, trace_post = x_pre0, x_post0
    pot = torch.zeros_like(window.potentiation)
    dep = torch.zeros_like(window.depression)
    for t in range(case["steps"]):
        step = stdp_step(
            pre[t], post[t], trace_pre, trace_post, pairing=case["pairing"], batch_reduction=reduction, **_kwargs(case)
        )
        pot += step.potentiation
        dep += step.depression
        trace_pre, trace_post = step.trace_pre, step.trace_post
    _close(window.potentiation, pot)
    _close(window.depression, dep)
    _close(window.trace_pre, trace_pre)
    _close(window.trace_post, trace_post)


@given(case=cases, split=st.integers(0, 7), eta_post=st.floats(-2, 2), eta_pre=st.floats(-2, 2))
def test_chained_windows_equal_one_long_window(case, split, eta_post, eta_pre):
    pre, post, x_pre0, x_post0 = _draw(case)
    split = min(split, case["steps"])
    long = stdp_window(pre, post, x_pre0, x_post0, pairing=case["pairing"], **_kwargs(case))
    first = stdp_window(pre[:split], post[:split], x_pre0, x_post0, pairing=case["pairing"], **_kwargs(case))
    second = stdp_window(
        pre[split:], post[split:], first.trace_pre, first.trace_post, pairing=case["pairing"], **_kwargs(case)
    )
    _close(first.potentiation + second.potentiation, long.potentiation)
    _close(first.depression + second.depression, long.depression)
    _close(second.trace_pre, long.trace_pre)
    _close(second.trace_post, long.trace_post)
    # the one-product form chains exactly too (cumulative traces only)
    kwargs = _kwargs(case)
    net_long = stdp_window_net(pre, post, x_pre0, x_post0, eta_post=eta_post, eta_pre=eta_pre, **kwargs)
    net_first = stdp_window_net(
        pre[:split], post[:split], x_pre0, x_post0, eta_post=eta_post, eta_pre=eta_pre, **kwargs
    )
    net_second = stdp_window_net(
        pre[split:],
        post[split:],
        net_first.trace_pre,
        net_first.trace_post,
        eta_post=eta_post,
        eta_pre=eta_pre,
        **kwargs,
    )
    _close(net_first.delta_weight + net_second.delta_weight, net_long.delta_weight, atol=1e-11)
    _close(net_second.trace_post, net_long.trace_post)


# ---------------------------------------------------------- one-product form


@given(
    case=cases,
    eta_post=st.floats(-2, 2),
    eta_pre=st.floats(-2, 2),
    method=st.sampled_from(["dense", "sparse", "auto"]),
    reduction=st.sampled_from(["sum", "mean", "amax"]),
)
def test_net_form_matches_brute_force(case, eta_post, eta_pre, method, reduction):
    case = dict(case, pairing="all")
    pre, post, x_pre0, x_post0 = _draw(case)
    pot, dep = _reference(case, pre, post, x_pre0, x_post0)
    batch_reduction = (lambda x: x.amax(0)) if reduction == "amax" else reduction
    net = stdp_window_net(
        pre, post, x_pre0, x_post0, eta_post=eta_post, eta_pre=eta_pre, method=method,
        batch_reduction=batch_reduction, **_kwargs(case),
    )  # fmt: skip
    per_sample = eta_post * pot - eta_pre * dep
    expected = {"sum": per_sample.sum(0), "mean": per_sample.mean(0), "amax": per_sample.max(0)}[reduction]
    _close(net.delta_weight, expected[None], atol=1e-11)
    two_term = stdp_window(pre, post, x_pre0, x_post0, **_kwargs(case))
    _close(net.trace_pre, two_term.trace_pre)
    _close(net.trace_post, two_term.trace_post)


@given(
    case=cases,
    eta_post=st.floats(-2, 2),
    eta_pre=st.floats(-2, 2),
    method=st.sampled_from(["dense", "sparse"]),
    block_elements=st.integers(1, 12),
    product_elements=st.integers(1, 200),
    carried_post=st.booleans(),
    bool_spikes=st.booleans(),
)
def test_blocked_net_form_matches_brute_force(
    case, eta_post, eta_pre, method, block_elements, product_elements, carried_post, bool_spikes
):
    """Large dense windows are filtered a block of steps at a time, and multiplied several
    blocks at a time (the product buffer): both forced here on small windows."""
    from unittest import mock

    import plastic.functional.stdp as stdp_module

    case = dict(case, pairing="all")
    pre, post, x_pre0, x_post0 = _draw(case)
    if not carried_post:
        x_post0 = torch.zeros_like(x_post0)
    pot, dep = _reference(case, pre, post, x_pre0, x_post0)
    if bool_spikes:
        pre, post = pre.bool(), post.bool()
    with (
        mock.patch.object(stdp_module, "MATRIX_FILTER_MAX_ELEMENTS", 0),
        mock.patch.object(stdp_module, "FILTER_BLOCK_ELEMENTS", block_elements),
        mock.patch.object(stdp_module, "PRODUCT_BLOCK_ELEMENTS", product_elements),
    ):
        net = stdp_window_net(
            pre, post, x_pre0, x_post0 if carried_post else None, eta_post=eta_post, eta_pre=eta_pre,
            method=method, **_kwargs(case),
        )  # fmt: skip
    _close(net.delta_weight, (eta_post * pot - eta_pre * dep).sum(0)[None], atol=1e-11)
    two_term = stdp_window(pre, post, x_pre0, x_post0, **_kwargs(case))
    _close(net.trace_pre, two_term.trace_pre)
    _close(net.trace_post, two_term.trace_post)


def test_net_form_with_a_zero_post_decay():
    # tau_post -> 0 with Euler (tau == dt): a_post = 0, only simultaneous pairs depress
    pre = torch.tensor([[[1.0]], [[1.0]], [[0.0]]], dtype=torch.float64)
    post = torch.tensor([[[0.0]], [[1.0]], [[1.0]]], dtype=torch.float64)
    x_post0 = torch.tensor([[2.0]], dtype=torch.float64)
    net = stdp_window_net(pre, post, None, x_post0, decay_pre=0.5, decay_post=0.0, eta_post=1.0, eta_pre=1.0)
    # potentiation: post@1 sees x_pre = 0.5 + 1, post@2 sees 0.75; depression: pre@1 with post@1
    assert net.delta_weight.item() == pytest.approx(1.5 + 0.75 - 1.0)
    assert net.trace_post.item() == pytest.approx(1.0)


# ------------------------------------------------------------------- conv


def unfold_reference(inputs, kernel_size, stride, padding, dilation, groups, padding_mode):
    """[N, C, *spatial] -> [N, G, (C/G)*prod(k), P] by explicit loops over kernel offsets."""
    dims = len(kernel_size)
    flat = [p for amount in reversed(padding) for p in (amount, amount)]
    mode = "constant" if padding_mode == "zeros" else padding_mode
    padded = torch.nn.functional.pad(inputs, flat, mode=mode) if any(padding) else inputs
    out_size = [(padded.shape[2 + d] - dilation[d] * (kernel_size[d] - 1) - 1) // stride[d] + 1 for d in range(dims)]
    columns = []
    for offset in np.ndindex(*kernel_size):
        index = [slice(None), slice(None)]
        for d in range(dims):
            start = offset[d] * dilation[d]
            index.append(slice(start, start + stride[d] * (out_size[d] - 1) + 1, stride[d]))
        columns.append(padded[tuple(index)].reshape(inputs.shape[0], inputs.shape[1], -1))
    stacked = torch.stack(columns, dim=2)  # [N, C, prod(k), P]
    n, channels = inputs.shape[:2]
    return stacked.reshape(n, groups, (channels // groups) * math.prod(kernel_size), -1), out_size


conv_cases = st.fixed_dictionaries(
    {
        "dims": st.sampled_from([1, 2]),
        "groups": st.sampled_from([1, 2]),
        "in_per_group": st.integers(1, 2),
        "out_per_group": st.integers(1, 2),
        "kernel": st.integers(1, 3),
        "stride": st.integers(1, 2),
        "padding": st.integers(0, 2),
        "dilation": st.integers(1, 2),
        "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
        "size": st.integers(3, 6),
        "steps": st.integers(1, 4),
        "batch": st.integers(1, 3),
        "pairing": st.sampled_from(["all", "nearest"]),
        "method": st.sampled_from(["dense", "sparse"]),
        "seed": st.integers(0, 2**31 - 1),
    }
)


@given(case=conv_cases)
def test_conv_equals_dense_on_the_unfolded_input(case):
    dims, groups = case["dims"], case["groups"]
    assume(case["padding"] < case["size"])  # reflect needs padding < size
    assume(case["size"] + 2 * case["padding"] - case["dilation"] * (case["kernel"] - 1) - 1 >= 0)
    c_in, c_out = groups * case["in_per_group"], groups * case["out_per_group"]
    geometry = ConvGeometry.create(
        dims,
        c_in,
        c_out,
        case["kernel"],
        case["stride"],
        case["padding"],
        case["dilation"],
        groups,
        case["padding_mode"],
    )
    generator = torch.Generator().manual_seed(case["seed"])
    steps, batch = case["steps"], case["batch"]
    spatial = (case["size"],) * dims
    pre = _spikes(generator, (steps, batch, c_in, *spatial), 0.4)
    x_pre0 = torch.rand(batch, c_in, *spatial, generator=generator, dtype=torch.float64)
    unfold = lambda x: unfold_reference(  # noqa: E731
        x, (case["kernel"],) * dims, (case["stride"],) * dims, (case["padding"],) * dims,
        (case["dilation"],) * dims, groups, case["padding_mode"],
    )  # fmt: skip
    _, out_size = unfold(x_pre0)
    post = _spikes(generator, (steps, batch, c_out, *out_size), 0.4)
    x_post0 = torch.rand(batch, c_out, *out_size, generator=generator, dtype=torch.float64)
    kwargs = {"tau_pre": 7.0, "tau_post": 12.0, "dt": 1.0, "pairing": case["pairing"]}
    conv = stdp_window(pre, post, x_pre0, x_post0, view=geometry, method=case["method"], **kwargs)

    # dense reference: per group, every output position is a sample of a dense connection
    pre_unfolded = unfold(pre.reshape(steps * batch, c_in, *spatial).double())[0]  # [T*B, G, K, P]
    trace_unfolded = unfold(x_pre0)[0]  # [B, G, K, P]
    post_grouped = post.reshape(steps, batch, groups, case["out_per_group"], -1)
    trace_post_grouped = x_post0.reshape(batch, groups, case["out_per_group"], -1)
    positions = pre_unfolded.shape[-1]
    for g in range(groups):
        dense_pre = pre_unfolded[:, g].reshape(steps, batch, -1, positions).permute(0, 1, 3, 2)
        dense = stdp_window(
            dense_pre.reshape(steps, batch * positions, -1),
            post_grouped[:, :, g].permute(0, 1, 3, 2).reshape(steps, batch * positions, -1),
            trace_unfolded[:, g].permute(0, 2, 1).reshape(batch * positions, -1),
            trace_post_grouped[:, g].permute(0, 2, 1).reshape(batch * positions, -1),
            method="dense", **kwargs,
        )  # fmt: skip
        _close(conv.potentiation[g], dense.potentiation[0])
        _close(conv.depression[g], dense.depression[0])
    assert conv.trace_pre.shape == x_pre0.shape and conv.trace_post.shape == x_post0.shape
    # the one-product form through the same views
    if case["pairing"] == "all":
        net = stdp_window_net(
            pre,
            post,
            x_pre0,
            x_post0,
            view=geometry,
            eta_post=0.7,
            eta_pre=1.3,
            method=case["method"],
            tau_pre=7.0,
            tau_post=12.0,
        )
        _close(net.delta_weight, 0.7 * conv.potentiation - 1.3 * conv.depression, atol=1e-11)


class _Views:
    """A connection-like object: receptive views by explicit unfolding (one group)."""

    def __init__(self, **geometry):
        self.geometry = geometry

    def pre_view(self, x):
        return unfold_reference(x.double(), **self.geometry)[0]

    def post_view(self, y):
        return y.reshape(y.shape[0], 1, y.shape[1], -1).double()


def test_connection_like_view_object():
    generator = torch.Generator().manual_seed(3)
    geometry = {
        "kernel_size": (2, 2),
        "stride": (1, 1),
        "padding": (1, 1),
        "dilation": (1, 1),
        "groups": 1,
        "padding_mode": "zeros",
    }
    pre = _spikes(generator, (3, 2, 2, 4, 4), 0.5)
    post = _spikes(generator, (3, 2, 3, 5, 5), 0.5)
    views = _Views(**geometry)
    from_object = stdp_window(
        pre, post, None, torch.zeros(2, 3, 5, 5, dtype=torch.float64), tau_pre=5.0, tau_post=5.0, view=views
    )
    geometry_view = ConvGeometry.create(2, 2, 3, 2, padding=1)
    from_geometry = stdp_window(
        pre, post, None, torch.zeros(2, 3, 5, 5, dtype=torch.float64), tau_pre=5.0, tau_post=5.0, view=geometry_view
    )
    _close(from_object.potentiation, from_geometry.potentiation)
    _close(from_object.depression, from_geometry.depression)


# ------------------------------------------------------- weight dependence


def test_delta_weight_with_weight_dependence():
    generator = torch.Generator().manual_seed(0)
    potentiation = torch.rand(2, 3, 4, generator=generator, dtype=torch.float64)
    depression = torch.rand(2, 3, 4, generator=generator, dtype=torch.float64)
    weight = torch.rand(6, 1, 2, 2, generator=generator, dtype=torch.float64)  # conv, groups = 2
    dw = stdp_delta_weight(
        potentiation, depression, weight, eta_post=0.5, eta_pre=0.25,
        f_post=lambda w: (1.0 - w) ** 0.5, f_pre=lambda w: w**0.5,
    )  # fmt: skip
    assert dw.shape == weight.shape
    for out_channel in range(6):
        g, o = divmod(out_channel, 3)
        for k, (ky, kx) in enumerate(np.ndindex(2, 2)):
            w = weight[out_channel, 0, ky, kx].item()
            expected = 0.5 * (1 - w) ** 0.5 * potentiation[g, o, k].item() - 0.25 * w**0.5 * depression[g, o, k].item()
            assert dw[out_channel, 0, ky, kx].item() == pytest.approx(expected, rel=1e-12)
    plain = stdp_delta_weight(potentiation, depression, weight, eta_post=2.0, eta_pre=3.0)
    _close(plain.reshape(2, 3, 4), 2.0 * potentiation - 3.0 * depression)
    with pytest.raises(ValueError, match=r"^weight"):
        stdp_delta_weight(potentiation, depression, torch.zeros(5, 4))


# ------------------------------------------------------------------ memory


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


def test_large_window_allocates_nothing_of_batch_times_weight_size():
    steps, batch, n_in, n_out = 100, 64, 784, 400
    generator = torch.Generator().manual_seed(0)
    pre = torch.rand(steps, batch, n_in, generator=generator) < 0.05
    post = torch.rand(steps, batch, n_out, generator=generator) < 0.02
    trace_pre, trace_post = torch.zeros(batch, n_in), torch.zeros(batch, n_out)
    calls = [
        lambda: stdp_window(pre, post, trace_pre, trace_post, tau_pre=20.0, tau_post=20.0, method="dense"),
        lambda: stdp_window(pre, post, trace_pre, trace_post, tau_pre=20.0, tau_post=20.0, method="sparse"),
        lambda: stdp_window_net(pre, post, trace_pre, trace_post, tau_pre=20.0, tau_post=20.0, method="dense"),
        lambda: stdp_window_net(pre, post, trace_pre, trace_post, tau_pre=20.0, tau_post=20.0, method="sparse"),
    ]
    for call in calls:
        with _LargestTensor() as recorder:
            call()
        assert 0 < recorder.largest < batch * n_in * n_out // 3, recorder.largest


# ------------------------------------------------------------------ errors


def test_bad_inputs_raise_named_errors():
    pre = torch.zeros(3, 2, 4, dtype=torch.bool)
    post = torch.zeros(3, 2, 5, dtype=torch.bool)
    trace_pre, trace_post = torch.zeros(2, 4), torch.zeros(2, 5)
    taus = {"tau_pre": 10.0, "tau_post": 10.0}
    with pytest.raises(ValueError, match=r"^spikes_post"):
        stdp_window(pre, post[:, :1], **taus)
    with pytest.raises(ValueError, match=r"^spikes_post"):
        stdp_window(pre, post[:2], **taus)
    with pytest.raises(ValueError, match=r"^trace_pre"):
        stdp_window(pre, post, torch.zeros(2, 5), trace_post, **taus)
    with pytest.raises(ValueError, match=r"^trace_post"):
        stdp_window(pre, post, trace_pre, torch.zeros(1, 5), **taus)
    with pytest.raises(ValueError, match=r"^spikes_pre"):
        stdp_window(pre.float() * 0.5 + 0.25, post, **taus)
    with pytest.raises(ValueError, match=r"^spike_pre"):
        stdp_step(torch.full((2, 4), 2.0), post[0], **taus)
    with pytest.raises(ValueError, match=r"^spike_post"):
        stdp_step(pre[0], post[0, :1], **taus)
    with pytest.raises(ValueError, match=r"^dt"):
        stdp_window(pre, post, dt=0.0, **taus)
    with pytest.raises(ValueError, match=r"^dt"):
        stdp_window_net(pre, post, dt=-1.0, **taus)
    with pytest.raises(ValueError, match=r"^tau"):
        stdp_window(pre, post, tau_pre=0.0, tau_post=1.0)
    with pytest.raises(ValueError, match=r"^decay_pre"):
        stdp_window(pre, post, tau_post=10.0)
    with pytest.raises(ValueError, match=r"^decay_post"):
        stdp_window(pre, post, tau_pre=10.0, decay_post=1.5)
    with pytest.raises(ValueError, match=r"^decay_post"):
        stdp_window_net(pre, post, tau_pre=10.0, decay_post=torch.full((5,), 0.9))
    with pytest.raises(ValueError, match=r"^decay_pre"):
        stdp_window(pre, post, decay_pre=torch.full((3,), 0.9), tau_post=10.0)
    with pytest.raises(ValueError, match=r"^pairing"):
        stdp_window(pre, post, pairing="first", **taus)
    with pytest.raises(ValueError, match=r"^batch_reduction"):
        stdp_window(pre, post, batch_reduction="median", **taus)
    with pytest.raises(ValueError, match=r"^batch_reduction"):
        stdp_window(pre, post, batch_reduction=lambda x: x, **taus)
    with pytest.raises(ValueError, match=r"^method"):
        stdp_window(pre, post, method="gpu", **taus)
    with pytest.raises(TypeError, match=r"^trace_post"):
        stdp_window(pre, post, trace_pre, trace_post.double(), **taus)
    with pytest.raises(ValueError, match=r"^trace_pre"):
        stdp_window(pre, post, torch.full((2, 4), float("nan")), trace_post, **taus)
    with pytest.raises(TypeError, match=r"^view"):
        stdp_window(pre, post, view="conv", **taus)
    with pytest.raises(ValueError, match=r"^spikes_post"):
        stdp_window(
            torch.zeros(2, 1, 1, 5, 5, dtype=torch.bool), torch.zeros(2, 1, 1, 4, 4, dtype=torch.bool),
            view=ConvGeometry.create(2, 1, 1, 3), **taus,
        )  # fmt: skip


def test_spikes_may_be_float_and_tensor_decays_per_neuron():
    generator = torch.Generator().manual_seed(5)
    pre = _spikes(generator, (6, 2, 3), 0.5)
    post = _spikes(generator, (6, 2, 2), 0.5)
    decay_pre = torch.tensor([0.5, 0.8, 0.9], dtype=torch.float64)
    out = stdp_window(
        pre.double(), post.double(), torch.zeros(2, 3, dtype=torch.float64), None, decay_pre=decay_pre, decay_post=0.7
    )
    pot = np.zeros((2, 3))
    dep = np.zeros((2, 3))
    for j, a in enumerate(decay_pre.tolist()):
        p, d = brute_force(
            pre[:, :, j : j + 1].numpy(), post.numpy(), np.zeros((2, 1)), np.zeros((2, 2)), a, 0.7, 1.0, 1.0, "all"
        )
        pot[:, j], dep[:, j] = p.sum(0)[:, 0], d.sum(0)[:, 0]
    _close(out.potentiation, pot[None])
    _close(out.depression, dep[None])


@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    rate=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
    transposed=st.booleans(),
)
def test_event_indices_equal_nonzero(shape, rate, seed, transposed):
    """The CPU fast path (numpy's flatnonzero) gives nonzero's indices, in its order, for any layout."""
    from plastic.functional.bilinear import event_indices

    events = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate
    if transposed and events.ndim > 1:
        events = events.transpose(0, -1)  # a non-contiguous view
    got = event_indices(events)
    expected = [tuple(int(i) for i in index) for index in np.argwhere(events.numpy())]
    assert len(got) == events.ndim
    assert all(index.dtype == torch.int64 for index in got)
    assert list(zip(*[index.tolist() for index in got], strict=True)) == expected


@given(
    case=cases,
    method=st.sampled_from(["dense", "sparse"]),
    blocked=st.booleans(),
    reduction=st.sampled_from(["sum", "mean"]),
    carried_post=st.booleans(),
)
def test_net_form_writes_into_out(case, method, blocked, reduction, carried_post):
    """``out=`` receives exactly the change of the call without it, whatever it held before."""
    from unittest import mock

    import plastic.functional.stdp as stdp_module

    case = dict(case, pairing="all")
    pre, post, x_pre0, x_post0 = _draw(case)
    kwargs = dict(method=method, batch_reduction=reduction, eta_post=0.7, eta_pre=1.3, **_kwargs(case))
    trace_post = x_post0 if carried_post else None
    out = torch.full((1, case["n_out"], case["n_in"]), math.nan, dtype=torch.float64)
    with mock.patch.object(stdp_module, "MATRIX_FILTER_MAX_ELEMENTS", 0 if blocked else 1 << 20):
        expected = stdp_window_net(pre, post.bool(), x_pre0, trace_post, **kwargs)
        written = stdp_window_net(pre, post.bool(), x_pre0, trace_post, out=out, **kwargs)
    assert written.delta_weight.data_ptr() == out.data_ptr()
    _close(out, expected.delta_weight.numpy(), rel=1e-12, atol=1e-12)


def test_net_form_out_for_conv_and_bad_out():
    geometry = ConvGeometry.create(2, 2, 4, 3, groups=2, padding=1)
    generator = torch.Generator().manual_seed(5)
    pre = torch.rand(6, 2, 2, 5, 5, generator=generator) < 0.3
    post = torch.rand(6, 2, 4, 5, 5, generator=generator) < 0.1
    expected = stdp_window_net(pre, post, tau_pre=5.0, tau_post=7.0, view=geometry, method="sparse")
    out = torch.full((2, 2, 9), math.nan)
    written = stdp_window_net(pre, post, tau_pre=5.0, tau_post=7.0, view=geometry, method="sparse", out=out)
    assert written.delta_weight.data_ptr() == out.data_ptr()
    torch.testing.assert_close(out, expected.delta_weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^out"):
        stdp_window_net(pre, post, tau_pre=5.0, tau_post=7.0, view=geometry, out=torch.zeros(1, 4, 18))
    with pytest.raises(TypeError, match=r"^out"):
        stdp_window_net(
            pre, post, tau_pre=5.0, tau_post=7.0, view=geometry, out=torch.zeros(2, 2, 9, dtype=torch.float64)
        )
    with pytest.raises(ValueError, match=r"^out"):
        stdp_window_net(
            pre, post, tau_pre=5.0, tau_post=7.0, view=geometry, out=torch.zeros(2, 2, 9),
            batch_reduction=lambda values: values.sum(0),
        )  # fmt: skip
    ones = torch.ones(1, 100, 50)
    empty = stdp_window_net(pre[:0].flatten(2), post[:0].flatten(2), tau_pre=5.0, tau_post=7.0, out=ones)
    assert empty.delta_weight.data_ptr() == ones.data_ptr() and not ones.any()  # an empty window: zeros
    dense_pre, dense_post = pre.flatten(2), post.flatten(2)
    with pytest.raises(ValueError, match=r"^out"):
        stdp_window_net(dense_pre, dense_post, tau_pre=5.0, tau_post=7.0, out=torch.zeros(1, 50, 49))


# ---------------------------------------------------- the change's bound (issue 15)


@given(case=cases, eta_post=st.floats(-2, 2), eta_pre=st.floats(-2, 2), scale=st.sampled_from([1.0, 50.0]))
def test_pair_change_bound_holds_for_the_brute_force_change(case, eta_post, eta_pre, scale):
    """|dw| of every synapse (summed over the batch) is within pair_change_bound, carried traces included."""
    from plastic.functional.stdp_checks import pair_change_bound

    case = dict(case, pairing="all")
    pre, post, x_pre0, x_post0 = _draw(case)
    x_pre0, x_post0 = x_pre0 * scale, -x_post0 * scale  # carried traces of either sign
    pot, dep = _reference(case, pre, post, x_pre0, x_post0)
    change = np.abs(eta_post * pot - eta_pre * dep).sum(0)
    bound = pair_change_bound(
        case["steps"], case["batch"], eta_post, eta_pre, case["amp_pre"], case["amp_post"],
        _decay(case["dt"], case["tau_pre"], case["exact"]), _decay(case["dt"], case["tau_post"], case["exact"]),
        x_pre0, x_post0,
    )  # fmt: skip
    assert change.max() <= bound * (1 + 1e-12)


def test_pair_change_bound_of_every_spike_and_its_refusals():
    from plastic.functional.stdp_checks import pair_change_bound

    # T = 3 steps, B = 2, traces of magnitude 0.5 and 2: 2 * 3 * (1.5 * (0.5 + 3) + 0.25 * (2 + 0.5 * 3))
    bound = pair_change_bound(3, 2, -1.5, 0.25, 1.0, 0.5, 0.9, 1.0, torch.tensor([[0.5, -0.1]]), torch.tensor([[-2.0]]))
    assert bound == 2 * 3 * (1.5 * 3.5 + 0.25 * 3.5)
    # a decay beyond 1 in magnitude (Euler, dt > 2 tau) or a non-finite trace: no bound
    assert pair_change_bound(3, 1, 1.0, 1.0, 1.0, 1.0, -1.5, 0.5, torch.zeros(1, 2), torch.zeros(1, 1)) == math.inf
    nan = torch.tensor([[float("nan")]])
    assert not pair_change_bound(3, 1, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, nan, torch.zeros(1, 1)) < math.inf
