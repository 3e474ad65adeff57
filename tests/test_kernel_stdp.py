"""Kernel STDP trainers (event-time form) against brute-force references.

Random spike trains go through real cells (real connections; a scripted
neuron emits the postsynaptic spikes the test chose, so rates are
controlled); the expected update is computed here from the recorded spike
times with explicit loops over samples, synapses, receptive positions and
spikes, with kernels written in plain Python.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import F64, ScriptedNeuron, assert_close_relative, run, synapse_sites
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.kernel_stdp import (
    DelayAdjustedKernelSTDP,
    DelayAdjustedKernelSTDPD,
    DelayAdjustedSTDP,
    DelayAdjustedSTDPD,
    KernelSTDP,
)
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, Conv2d, LinearDense

# --------------------------------------------------------------------------- helpers


def dense_cell(n_in, n_out, batch, dt=1.0, delay=None, delays=None, **updater):
    kwargs = {}
    if delay is not None:
        kwargs = {"delay": delay, "learn_delay_init": delays if delays is not None else "zeros"}
    connection = LinearDense(n_in, n_out, batch_size=batch, dt=dt, dtype=F64, weight_init=(-0.5, 0.5), **kwargs)
    cell = Cell(connection, ScriptedNeuron(n_out, batch_size=batch, dt=dt))
    cell.make_updater(**updater)
    return cell


def conv_cell(spec, batch, dt=1.0):
    dims = len(spec["in_size"])
    cls = Conv1d if dims == 1 else Conv2d
    in_size = spec["in_size"][0] if dims == 1 else tuple(spec["in_size"])
    connection = cls(
        spec["in_channels"], spec["out_channels"], spec["kernel"], spec["stride"], spec["padding"],
        spec["dilation"], spec["groups"], spec["padding_mode"], in_size=in_size, batch_size=batch, dt=dt,
        dtype=F64, weight_init=(-0.5, 0.5),
    )  # fmt: skip
    cell = Cell(connection, ScriptedNeuron(connection.out_shape, batch_size=batch, dt=dt))
    cell.make_updater()
    return cell


def last_spike(train, b, index):
    """The last step with a spike at ``index`` of sample ``b`` in ``train`` [T, B, ...] (None if none)."""
    steps = [t for t in range(train.shape[0]) if train[(t, b, *index)]]
    return steps[-1] if steps else None


def exp_post_py(delta, eta, tau):
    return eta * math.exp(-abs(delta) / tau) if delta >= 0 else 0.0


def exp_pre_py(delta, eta, tau):
    return eta * math.exp(-abs(delta) / tau) if delta < 0 else 0.0


def hat_torch(delta, amplitude=1.0, width=4.0):
    """A Mexican hat written for the tests (not the library's)."""
    scaled = delta / width
    return amplitude * (1 - scaled**2) * torch.exp(-(scaled**2) / 2)


def hat_py(delta, amplitude=1.0, width=4.0):
    scaled = delta / width
    return amplitude * (1 - scaled**2) * math.exp(-(scaled**2) / 2)


def reduce_reference(values, reduction):
    if reduction == "mean":
        return values.mean(0)
    if reduction == "sum":
        return values.sum(0)
    if reduction == "amax":
        return values.max(0)
    if reduction == "amin":
        return values.min(0)
    if reduction == "median":
        return np.sort(values, axis=0)[(values.shape[0] - 1) // 2]  # torch's lower median
    return reduction(torch.as_tensor(values)).numpy()


def brute_force_kernel(cell, pre, post, kernels, dt, reduction, delays=None, pre_times=None):
    """Per-synapse (potentiation, depression) from the last spikes, with explicit loops.

    ``kernels`` are python functions of delta, each split into its positive and
    negative part. ``delays`` (weight shape) is subtracted from delta.
    ``pre_times(b, weight_index, j)`` overrides the presynaptic time-since-spike.
    """
    weight_shape = tuple(cell.connection.weight.shape)
    pre, post = pre.numpy(), post.numpy()
    steps, batch = pre.shape[:2]
    now = steps - 1
    potentiation = np.zeros((batch, *weight_shape))
    depression = np.zeros((batch, *weight_shape))
    for b in range(batch):
        for weight_index, post_index, pre_index in synapse_sites(cell.connection):
            if pre_index is None:
                continue
            t_post = last_spike(post, b, post_index)
            if pre_times is not None:
                elapsed_pre = pre_times(b, weight_index, pre_index)
            else:
                t_pre = last_spike(pre, b, pre_index)
                elapsed_pre = None if t_pre is None else (now - t_pre) * dt
            if t_post is None or elapsed_pre is None:
                continue
            delta = elapsed_pre - (now - t_post) * dt
            if delays is not None:
                delta -= delays[weight_index]
            for kernel in kernels:
                value = kernel(delta)
                potentiation[(b, *weight_index)] += max(value, 0.0)
                depression[(b, *weight_index)] += max(-value, 0.0)
    return reduce_reference(potentiation, reduction), reduce_reference(depression, reduction)


def spikes(generator, shape, rate):
    return torch.rand(shape, generator=generator, dtype=F64) < rate


reductions = st.sampled_from(["mean", "sum", "amax", "amin", "median", "callable"])


def resolve_reduction(name):
    if name == "callable":
        return lambda values: (values * values).sum(0)  # any function of dim 0
    return name


def reference_reduction(name):
    if name == "callable":
        return lambda values: (values * values).sum(0)
    return name


common_cases = {
    "steps": st.integers(1, 8),
    "batch": st.integers(1, 5),
    "dt": st.sampled_from([0.5, 1.0, 1.25]),
    "rate_pre": st.floats(0.05, 0.7),
    "rate_post": st.floats(0.05, 0.7),
    "seed": st.integers(0, 2**31 - 1),
}


# --------------------------------------------------------------------------- dense and conv


@given(
    **common_cases,
    n_in=st.integers(1, 4),
    # up to 6 outputs: with few steps, at most O/2 distinct postsynaptic times
    # (the sums grouped by postsynaptic time) as well as more (direct)
    n_out=st.integers(1, 6),
    eta_post=st.floats(-2.0, 2.0),
    eta_pre=st.floats(-2.0, 2.0),
    tau_post=st.floats(0.5, 20.0),
    tau_pre=st.floats(0.5, 20.0),
    kernel=st.sampled_from(["exp", "hat"]),
    reduction=reductions,
    mode=st.sampled_from(["single", "window"]),
)
def test_kernel_stdp_dense_matches_brute_force(
    steps, batch, dt, rate_pre, rate_post, seed, n_in, n_out, eta_post, eta_pre, tau_post, tau_pre,
    kernel, reduction, mode,
):  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, n_in), rate_pre)
    post = spikes(generator, (steps, batch, n_out), rate_post)
    cell = dense_cell(n_in, n_out, batch, dt)
    if kernel == "exp":
        trainer = KernelSTDP(
            kernel_post_kwargs={"eta_post": eta_post, "tau_post": tau_post},
            kernel_pre_kwargs={"eta_pre": eta_pre, "tau_pre": tau_pre},
            batch_reduction=resolve_reduction(reduction),
        )
        kernels = [lambda d: exp_post_py(d, eta_post, tau_post), lambda d: exp_pre_py(d, eta_pre, tau_pre)]
    else:
        # one kernel for both orders: the pre kernel adds nothing (zero amplitude)
        trainer = KernelSTDP(
            kernel_post=hat_torch,
            kernel_post_kwargs={"amplitude": eta_post, "width": tau_post},
            kernel_pre_kwargs={"eta_pre": 0.0},
            batch_reduction=resolve_reduction(reduction),
        )
        kernels = [lambda d: hat_py(d, eta_post, tau_post)]
    trainer.register_cell("dense", cell)
    run(cell, pre, post, mode)
    trainer()
    expected_pos, expected_neg = brute_force_kernel(cell, pre, post, kernels, dt, reference_reduction(reduction))
    potentiation, depression = cell.updater.pending("weight")
    assert_close_relative(potentiation, expected_pos)
    assert_close_relative(depression, expected_neg)


conv_specs = st.one_of(
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(3, 6)),
            "kernel": st.integers(1, 3),
            "stride": st.integers(1, 2),
            "padding": st.integers(0, 2),
            "dilation": st.integers(1, 2),
            "groups": st.sampled_from([1, 2]),
            "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(3, 4), st.integers(3, 4)),
            "kernel": st.sampled_from([1, 2, (2, 1)]),
            "stride": st.sampled_from([1, (1, 2)]),
            "padding": st.sampled_from([0, 1]),
            "dilation": st.just(1),
            "groups": st.sampled_from([1, 2]),
            "padding_mode": st.sampled_from(["zeros", "replicate", "circular"]),
        }
    ),
)


def _conv_spec(spec):
    spec = dict(spec)
    dims = len(spec["in_size"])
    spec["in_channels"] = 2
    spec["out_channels"] = 2 * spec["groups"] if spec["groups"] == 2 else 2
    # keep the dilated kernel within the padded input, and reflect padding below the input size
    kernel = spec["kernel"] if isinstance(spec["kernel"], tuple) else (spec["kernel"],) * dims
    dilation = (spec["dilation"],) * dims
    padding = (spec["padding"],) * dims
    for size, k, d, p in zip(spec["in_size"], kernel, dilation, padding, strict=True):
        if size + 2 * p < d * (k - 1) + 1 or (spec["padding_mode"] == "reflect" and p >= size):
            spec["padding"] = 0
            spec["dilation"] = 1
    return spec


@given(
    **common_cases,
    spec=conv_specs,
    eta_post=st.floats(-2.0, 2.0),
    eta_pre=st.floats(-2.0, 2.0),
    tau=st.floats(0.5, 10.0),
    kernel=st.sampled_from(["exp", "hat"]),
    reduction=st.sampled_from(["mean", "sum", "amax"]),
    mode=st.sampled_from(["single", "window"]),
)
def test_kernel_stdp_conv_matches_brute_force(
    steps, batch, dt, rate_pre, rate_post, seed, spec, eta_post, eta_pre, tau, kernel, reduction, mode
):
    batch = min(batch, 3)
    spec = _conv_spec(spec)
    cell = conv_cell(spec, batch, dt)
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, *cell.connection.in_shape), rate_pre)
    post = spikes(generator, (steps, batch, *cell.connection.out_shape), rate_post)
    if kernel == "exp":
        trainer = KernelSTDP(
            kernel_post_kwargs={"eta_post": eta_post, "tau_post": tau},
            kernel_pre_kwargs={"eta_pre": eta_pre, "tau_pre": 2 * tau},
            batch_reduction=reduction,
        )
        kernels = [lambda d: exp_post_py(d, eta_post, tau), lambda d: exp_pre_py(d, eta_pre, 2 * tau)]
    else:
        trainer = KernelSTDP(
            kernel_post=hat_torch, kernel_pre=hat_torch,
            kernel_post_kwargs={"amplitude": eta_post, "width": tau},
            kernel_pre_kwargs={"amplitude": eta_pre, "width": 2 * tau},
            batch_reduction=reduction,
        )  # fmt: skip
        kernels = [lambda d: hat_py(d, eta_post, tau), lambda d: hat_py(d, eta_pre, 2 * tau)]
    trainer.register_cell("conv", cell)
    run(cell, pre, post, mode)
    trainer()
    expected_pos, expected_neg = brute_force_kernel(cell, pre, post, kernels, dt, reduction)
    potentiation, depression = cell.updater.pending("weight")
    assert_close_relative(potentiation, expected_pos)
    assert_close_relative(depression, expected_neg)


def test_window_mode_equals_single_mode_and_repeated_calls_use_latest_times():
    generator = torch.Generator().manual_seed(3)
    pre = spikes(generator, (9, 3, 4), 0.3)
    post = spikes(generator, (9, 3, 2), 0.3)
    results = []
    for mode in ("single", "window"):
        cell = dense_cell(4, 2, 3)
        trainer = KernelSTDP(batch_reduction="sum")
        trainer.register_cell("c", cell)
        run(cell, pre, post, mode)
        trainer()
        results.append(cell.updater.pending("weight"))
    assert_close_relative(results[0][0], results[1][0].numpy(), rel=1e-12)
    assert_close_relative(results[0][1], results[1][1].numpy(), rel=1e-12)


# --------------------------------------------------------------------------- delays


def delay_pair(n_in, n_out, batch, dt, max_delay, delays):
    """A cell without delays and one with the given delays (same spikes)."""
    plain = dense_cell(n_in, n_out, batch, dt)
    delayed = dense_cell(n_in, n_out, batch, dt, delay=max_delay, delays=delays)
    return plain, delayed


@given(
    **common_cases,
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    lr_post=st.floats(-2.0, 2.0),
    lr_pre=st.floats(-2.0, 2.0),
    tau_post=st.floats(0.5, 20.0),
    tau_pre=st.floats(0.5, 20.0),
    reduction=st.sampled_from(["mean", "sum", "amax"]),
)
def test_zero_delays_equal_kernel_stdp(
    steps, batch, dt, rate_pre, rate_post, seed, n_in, n_out, lr_post, lr_pre, tau_post, tau_pre, reduction
):
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, n_in), rate_pre)
    post = spikes(generator, (steps, batch, n_out), rate_post)
    exp_kwargs = {
        "kernel_post_kwargs": {"eta_post": lr_post, "tau_post": tau_post},
        "kernel_pre_kwargs": {"eta_pre": lr_pre, "tau_pre": tau_pre},
        "batch_reduction": reduction,
    }
    plain, delayed = delay_pair(n_in, n_out, batch, dt, 3.0, torch.zeros(n_out, n_in, dtype=F64))
    # a second delayed cell for the delay-learning rule (it writes the delay accumulators)
    delayed_d = dense_cell(n_in, n_out, batch, dt, delay=3.0)
    hat_plain = dense_cell(n_in, n_out, batch, dt)
    hat_delayed = dense_cell(n_in, n_out, batch, dt, delay=3.0)
    hat_delayed_d = dense_cell(n_in, n_out, batch, dt, delay=3.0)
    read_delayed = dense_cell(n_in, n_out, batch, dt, delay=3.0)
    hat_kwargs = {
        "kernel_post": hat_torch,
        "kernel_post_kwargs": {"amplitude": lr_post, "width": tau_post},
        "kernel_pre_kwargs": {"eta_pre": lr_pre, "tau_pre": tau_pre},
        "batch_reduction": reduction,
    }

    trainers = [
        (KernelSTDP(**exp_kwargs), plain),
        (
            DelayAdjustedSTDP(
                lr_post=lr_post, lr_pre=lr_pre, tau_post=tau_post, tau_pre=tau_pre, batch_reduction=reduction
            ),
            delayed,
        ),
        (
            DelayAdjustedSTDPD(
                lr_post=lr_post, lr_pre=lr_pre, tau_post=tau_post, tau_pre=tau_pre, batch_reduction=reduction
            ),
            delayed_d,
        ),
        (KernelSTDP(**exp_kwargs, delayed=True), read_delayed),
        (KernelSTDP(**hat_kwargs), hat_plain),
        (DelayAdjustedKernelSTDP(**hat_kwargs), hat_delayed),
        (DelayAdjustedKernelSTDPD(**hat_kwargs), hat_delayed_d),
    ]
    for index, (trainer, cell) in enumerate(trainers):
        trainer.register_cell(f"c{index}", cell)
        run(cell, pre, post)
        trainer()
    reference = plain.updater.pending("weight")
    for cell, name in ((delayed, "weight"), (delayed_d, "delay"), (read_delayed, "weight")):
        result = cell.updater.pending(name)
        assert_close_relative(result[0], reference[0].numpy(), rel=1e-12)
        assert_close_relative(result[1], reference[1].numpy(), rel=1e-12)
    hat_reference = hat_plain.updater.pending("weight")
    for result in (hat_delayed.updater.pending("weight"), hat_delayed_d.updater.pending("delay")):
        assert_close_relative(result[0], hat_reference[0].numpy(), rel=1e-12)
        assert_close_relative(result[1], hat_reference[1].numpy(), rel=1e-12)
    # the weight rules leave the delays alone and the delay rule the weights
    assert not delayed.updater.has_pending("delay")
    assert not delayed_d.updater.has_pending("weight")


@given(
    **common_cases,
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    max_delay=st.sampled_from([1.0, 2.5, 4.0]),
    lr_post=st.floats(-2.0, 2.0),
    lr_pre=st.floats(-2.0, 2.0),
    tau=st.floats(0.5, 10.0),
    rule=st.sampled_from(["weight", "delay", "kernel"]),
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_delay_adjusted_rules_match_brute_force(
    steps, batch, dt, rate_pre, rate_post, seed, n_in, n_out, max_delay, lr_post, lr_pre, tau, rule, reduction
):
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps, batch, n_in), rate_pre)
    post = spikes(generator, (steps, batch, n_out), rate_post)
    delays = torch.rand(n_out, n_in, generator=generator, dtype=F64) * max_delay
    cell = dense_cell(n_in, n_out, batch, dt, delay=max_delay, delays=delays)
    if rule == "kernel":
        trainer = DelayAdjustedKernelSTDP(
            kernel_post=hat_torch, kernel_pre=hat_torch,
            kernel_post_kwargs={"amplitude": lr_post, "width": tau},
            kernel_pre_kwargs={"amplitude": lr_pre, "width": 2.0},
            batch_reduction=reduction,
        )  # fmt: skip
        kernels = [lambda d: hat_py(d, lr_post, tau), lambda d: hat_py(d, lr_pre, 2.0)]
    else:
        cls = DelayAdjustedSTDP if rule == "weight" else DelayAdjustedSTDPD
        trainer = cls(lr_post=lr_post, lr_pre=lr_pre, tau_post=tau, tau_pre=2 * tau, batch_reduction=reduction)
        kernels = [lambda d: exp_post_py(d, lr_post, tau), lambda d: exp_pre_py(d, lr_pre, 2 * tau)]
    trainer.register_cell("c", cell)
    run(cell, pre, post)
    trainer()
    expected = brute_force_kernel(cell, pre, post, kernels, dt, reduction, delays=delays.numpy())
    result = cell.updater.pending("delay" if rule == "delay" else "weight")
    assert_close_relative(result[0], expected[0])
    assert_close_relative(result[1], expected[1])


def test_delay_learning_keeps_delays_within_bounds():
    generator = torch.Generator().manual_seed(5)
    cell = dense_cell(4, 3, 2, delay=2.0, delays=torch.full((3, 4), 1.0, dtype=F64))
    # large rates: the delays are pushed past both bounds
    for lr in (50.0, -50.0):
        trainer = DelayAdjustedSTDPD(lr_post=lr, lr_pre=lr)
        trainer.register_cell("c", cell)
        run(cell, spikes(generator, (6, 2, 4), 0.5), spikes(generator, (6, 2, 3), 0.5))
        trainer()
        assert cell.updater.has_pending("delay")
        weight = cell.connection.weight.detach().clone()
        trainer.update()
        delay = cell.connection.delay.detach()
        assert bool((delay >= 0).all()) and bool((delay <= 2.0).all())
        assert torch.equal(cell.connection.weight.detach(), weight)  # the delay rule wrote no weight
        trainer.del_cell("c")
    assert bool(((cell.connection.delay == 0) | (cell.connection.delay == 2.0)).any())


@given(
    **common_cases,
    n_in=st.integers(1, 3),
    n_out=st.integers(1, 3),
    max_delay=st.sampled_from([1.0, 2.5, 4.0]),
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_delayed_reads_presynaptic_times_at_learned_delays(
    steps, batch, dt, rate_pre, rate_post, seed, n_in, n_out, max_delay, reduction
):
    generator = torch.Generator().manual_seed(seed)
    pre = spikes(generator, (steps + 4, batch, n_in), rate_pre)
    post = spikes(generator, (steps + 4, batch, n_out), rate_post)
    delays = torch.rand(n_out, n_in, generator=generator, dtype=F64) * max_delay
    cell = dense_cell(n_in, n_out, batch, dt, delay=max_delay, delays=delays)
    trainer = KernelSTDP(
        delayed=True,
        kernel_post_kwargs={"eta_post": 1.0, "tau_post": 3.0},
        kernel_pre_kwargs={"eta_pre": -0.5, "tau_pre": 5.0},
        batch_reduction=reduction,
    )
    trainer.register_cell("c", cell)
    run(cell, pre, post)
    trainer()
    now = pre.shape[0] - 1
    pre_np = pre.numpy()

    def arrived(b, weight_index, pre_index):
        # the latest emission s whose arrival s*dt + d is not after now*dt
        d = float(delays[weight_index])
        emitted = [s for s in range(now + 1) if pre_np[s, b, pre_index[0]] and s * dt + d <= now * dt + 1e-9]
        return None if not emitted else now * dt - (emitted[-1] * dt + d)

    kernels = [lambda d: exp_post_py(d, 1.0, 3.0), lambda d: exp_pre_py(d, -0.5, 5.0)]
    expected = brute_force_kernel(cell, pre, post, kernels, dt, reduction, pre_times=arrived)
    result = cell.updater.pending("weight")
    assert_close_relative(result[0], expected[0])
    assert_close_relative(result[1], expected[1])


# --------------------------------------------------------------------------- learning-rate signs


@pytest.mark.parametrize(
    "name, lr_post, lr_pre, causal_sign, acausal_sign",
    [
        ("hebbian", 1.0, -0.5, 1, -1),
        ("anti-hebbian", -1.0, 0.5, -1, 1),
        ("potentiation only", 1.0, 0.5, 1, 1),
        ("depression only", -1.0, -0.5, -1, -1),
    ],
)
def test_learning_rate_signs(name, lr_post, lr_pre, causal_sign, acausal_sign):
    tau_post, tau_pre = 4.0, 6.0
    for order, sign in (("causal", causal_sign), ("acausal", acausal_sign)):
        cell = dense_cell(1, 1, 1, delay=2.0)
        trainer = DelayAdjustedSTDP(lr_post=lr_post, lr_pre=lr_pre, tau_post=tau_post, tau_pre=tau_pre)
        trainer.register_cell("c", cell)
        pre = torch.zeros(6, 1, 1, dtype=torch.bool)
        post = torch.zeros(6, 1, 1, dtype=torch.bool)
        first, second = (pre, post) if order == "causal" else (post, pre)
        first[1] = True
        second[4] = True  # three steps later
        run(cell, pre, post)
        weight = cell.connection.weight.detach().clone()
        trainer()
        potentiation, depression = cell.updater.pending("weight")
        expected = lr_post * math.exp(-3 / tau_post) if order == "causal" else lr_pre * math.exp(-3 / tau_pre)
        assert math.isclose(float(potentiation - depression), expected, rel_tol=1e-12)
        assert float(potentiation if sign > 0 else depression) > 0
        assert float(depression if sign > 0 else potentiation) == 0
        trainer.update()
        change = float(cell.connection.weight.detach() - weight)
        assert math.copysign(1, change) == sign and math.isclose(change, expected, rel_tol=1e-12)


def test_simultaneous_pair_belongs_to_the_causal_kernel():
    cell = dense_cell(1, 1, 1)
    trainer = KernelSTDP(kernel_post_kwargs={"eta_post": 0.7}, kernel_pre_kwargs={"eta_pre": -0.4})
    trainer.register_cell("c", cell)
    both = torch.tensor([[[False]], [[True]], [[False]]])
    run(cell, both, both)
    trainer()
    potentiation, depression = cell.updater.pending("weight")
    assert float(potentiation) == pytest.approx(0.7, rel=1e-12) and float(depression) == 0.0


def test_per_synapse_kernel_parameters():
    generator = torch.Generator().manual_seed(11)
    pre = spikes(generator, (7, 2, 3), 0.4)
    post = spikes(generator, (7, 2, 2), 0.4)
    cell = dense_cell(3, 2, 2)
    tau = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    eta = torch.tensor([[1.0, -1.0, 0.5], [2.0, 0.0, -0.3]], dtype=F64)
    trainer = KernelSTDP(kernel_post_kwargs={"eta_post": eta, "tau_post": tau}, batch_reduction="sum")
    trainer.register_cell("c", cell)
    run(cell, pre, post)
    trainer()
    pre_np, post_np = pre.numpy(), post.numpy()
    expected_pos = np.zeros((2, 3))
    expected_neg = np.zeros((2, 3))
    for b in range(2):
        for i in range(2):
            for j in range(3):
                t_post, t_pre = last_spike(post_np, b, (i,)), last_spike(pre_np, b, (j,))
                if t_post is None or t_pre is None:
                    continue
                delta = float(t_post - t_pre)
                for value in (exp_post_py(delta, float(eta[i, j]), float(tau[i, j])), exp_pre_py(delta, -1.0, 20.0)):
                    expected_pos[i, j] += max(value, 0.0)
                    expected_neg[i, j] += max(-value, 0.0)
    potentiation, depression = cell.updater.pending("weight")
    assert_close_relative(potentiation, expected_pos)
    assert_close_relative(depression, expected_neg)
