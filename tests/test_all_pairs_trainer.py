"""All-pairs kernel STDP trainer: brute-force pair sums (explicit loops over
samples, synapses, receptive positions and spike pairs) for any kernel, dense
and conv; equality with cumulative-trace STDP for exponential kernels; pairs
straddling calls (carry_steps); buffers and errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from helpers import F64, ScriptedNeuron, assert_close_relative, drive, make_cell, run, synapse_sites
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.all_pairs import AllPairsKernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense


def brute_force_pairs(connection, pre, post, kernels, dt, reduction):
    """Sum over samples, synapses, positions and every spike pair of each kernel's split value."""
    pre, post = pre.numpy(), post.numpy()
    steps, batch = pre.shape[:2]
    weight_shape = tuple(connection.weight.shape)
    potentiation = np.zeros(weight_shape)
    depression = np.zeros(weight_shape)
    for b in range(batch):
        for weight_index, post_index, pre_index in synapse_sites(connection):
            if pre_index is None:
                continue
            for t, u in itertools.product(range(steps), range(steps)):
                if post[(t, b, *post_index)] and pre[(u, b, *pre_index)]:
                    for kernel in kernels:
                        value = kernel((t - u) * dt)
                        potentiation[weight_index] += max(value, 0.0)
                        depression[weight_index] += max(-value, 0.0)
    if reduction == "mean":
        return potentiation / batch, depression / batch
    return potentiation, depression


def hat_torch(delta, amplitude=1.0, width=3.0):
    scaled = delta / width
    return amplitude * (1 - scaled**2) * torch.exp(-(scaled**2) / 2)


def hat_py(delta, amplitude=1.0, width=3.0):
    scaled = delta / width
    return amplitude * (1 - scaled**2) * math.exp(-(scaled**2) / 2)


def box_torch(delta, amplitude=1.0):
    """-amplitude on [-2, 0), +amplitude on [0, 3): a rectangular window of the tests."""
    inside_pre = (delta >= -2) & (delta < 0)
    inside_post = (delta >= 0) & (delta < 3)
    return amplitude * (inside_post.to(delta.dtype) - inside_pre.to(delta.dtype))


def box_py(delta, amplitude=1.0):
    return amplitude * ((1.0 if 0 <= delta < 3 else 0.0) - (1.0 if -2 <= delta < 0 else 0.0))


def exp_post_py(delta, eta, tau):
    return eta * math.exp(-abs(delta) / tau) if delta >= 0 else 0.0


def exp_pre_py(delta, eta, tau):
    return eta * math.exp(-abs(delta) / tau) if delta < 0 else 0.0


def exp_pre_inclusive(delta, eta_pre=-1.0, tau_pre=20.0):
    """The acausal exponential kernel including delta = 0 (as the trace form counts it)."""
    values = eta_pre * torch.exp(delta / tau_pre)
    return torch.where(delta <= 0, values, torch.zeros_like(values))


conv_specs = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(3, 5)),
            "kernel": st.integers(1, 3),
            "stride": st.integers(1, 2),
            "padding": st.integers(0, 1),
            "groups": st.sampled_from([1, 2]),
            "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(2, 3), st.integers(2, 3)),
            "kernel": st.sampled_from([1, 2]),
            "stride": st.just(1),
            "padding": st.sampled_from([0, 1]),
            "groups": st.just(1),
            "padding_mode": st.sampled_from(["zeros", "replicate"]),
        }
    ),
)

cases = {
    "steps": st.integers(1, 7),
    "batch": st.integers(1, 5),
    "dt": st.sampled_from([0.5, 1.0, 1.5]),
    "rate_pre": st.floats(0.05, 0.7),
    "rate_post": st.floats(0.05, 0.7),
    "seed": st.integers(0, 2**31 - 1),
    "spec": conv_specs,
}


def draw(generator, cell, steps, batch, rate_pre, rate_post):
    pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < rate_pre
    post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < rate_post
    return pre, post


@given(
    **cases,
    kernel=st.sampled_from(["exp", "hat", "box"]),
    amplitude=st.floats(-2.0, 2.0),
    reduction=st.sampled_from(["sum", "mean"]),
    mode=st.sampled_from(["single", "window"]),
    filter_method=st.sampled_from(["matmul", "fft"]),
)
def test_matches_brute_force_pair_sum(
    steps, batch, dt, rate_pre, rate_post, seed, spec, kernel, amplitude, reduction, mode, filter_method
):
    batch = min(batch, 3) if spec is not None else batch
    cell = make_cell(spec, batch, dt)
    pre, post = draw(torch.Generator().manual_seed(seed), cell, steps, batch, rate_pre, rate_post)
    if kernel == "exp":
        trainer = AllPairsKernelSTDP(
            kernel_post_kwargs={"eta_post": amplitude, "tau_post": 3.0},
            kernel_pre_kwargs={"eta_pre": -0.5, "tau_pre": 5.0},
        )
        kernels = [lambda d: exp_post_py(d, amplitude, 3.0), lambda d: exp_pre_py(d, -0.5, 5.0)]
    elif kernel == "hat":
        trainer = AllPairsKernelSTDP(
            kernel_post=hat_torch, kernel_pre=None, kernel_post_kwargs={"amplitude": amplitude}
        )
        kernels = [lambda d: hat_py(d, amplitude)]
    else:
        trainer = AllPairsKernelSTDP(
            kernel_post=box_torch, kernel_pre=None, kernel_post_kwargs={"amplitude": amplitude}
        )
        kernels = [lambda d: box_py(d, amplitude)]
    trainer.register_cell("c", cell, batch_reduction=reduction, filter_method=filter_method)
    run(cell, pre, post, mode)
    trainer()
    expected = brute_force_pairs(cell.connection, pre, post, kernels, dt, reduction)
    potentiation, depression = cell.updater.pending("weight")
    assert_close_relative(potentiation, expected[0])
    assert_close_relative(depression, expected[1])


@given(
    **cases,
    eta_post=st.floats(-1.0, 1.0),
    eta_pre=st.floats(-1.0, 1.0),
    tau_pre=st.floats(1.0, 10.0),
    tau_post=st.floats(1.0, 10.0),
)
def test_exponential_kernels_equal_cumulative_trace_stdp(
    steps, batch, dt, rate_pre, rate_post, seed, spec, eta_post, eta_pre, tau_pre, tau_post
):
    """The same window through both trainers from zero traces: identical net change.

    Trace form: potentiation at post spikes by the pre trace (tau_pre), depression
    at pre spikes by the post trace (tau_post), with eta_pre > 0 depressing. Kernel
    form: K_post(delta >= 0) decays with the pre trace's tau_pre, K_pre(delta <= 0)
    with tau_post and amplitude -eta_pre (the simultaneous pair counts in both).
    """
    batch = min(batch, 3) if spec is not None else batch
    generator = torch.Generator().manual_seed(seed)
    results = []
    for which in ("trace", "kernel"):
        cell = make_cell(spec, batch, dt)
        if which == "trace":
            trainer = STDP(eta_post=eta_post, eta_pre=eta_pre, tau_pre=tau_pre, tau_post=tau_post, fuse=False)
            pre, post = draw(generator, cell, steps, batch, rate_pre, rate_post)
        else:
            trainer = AllPairsKernelSTDP(
                kernel_post_kwargs={"eta_post": eta_post, "tau_post": tau_pre},
                kernel_pre=exp_pre_inclusive,
                kernel_pre_kwargs={"eta_pre": -eta_pre, "tau_pre": tau_post},
            )
        trainer.register_cell("c", cell)
        run(cell, pre, post, "window")
        trainer()
        potentiation, depression = cell.updater.pending("weight")
        results.append((potentiation, depression))
    # the trace trainer splits each signed term by sign, like the kernel trainer splits each kernel
    assert_close_relative(results[1][0], results[0][0].numpy())
    assert_close_relative(results[1][1], results[0][1].numpy())


@given(**cases, splits=st.lists(st.integers(0, 7), max_size=3), kernel=st.sampled_from(["exp", "hat"]))
def test_carried_steps_make_calls_independent_of_their_frequency(
    steps, batch, dt, rate_pre, rate_post, seed, spec, splits, kernel
):
    batch = min(batch, 3) if spec is not None else batch
    steps += 3
    generator = torch.Generator().manual_seed(seed)
    kwargs = {} if kernel == "exp" else {"kernel_post": hat_torch, "kernel_pre": None}
    results = []
    for chunks in ("once", "every step", splits):
        cell = make_cell(spec, batch, dt)
        trainer = AllPairsKernelSTDP(carry_steps=steps, **kwargs)
        trainer.register_cell("c", cell)
        if not results:
            pre, post = draw(generator, cell, steps, batch, rate_pre, rate_post)
        drive(cell, trainer, (pre, post), chunks)
        results.append(cell.updater.pending("weight"))
    for other in results[1:]:
        assert_close_relative(other[0], results[0][0].numpy())
        assert_close_relative(other[1], results[0][1].numpy())


def test_pairs_straddling_calls_need_carried_steps():
    """Pre at step 0, post at step 3, a call after step 1: counted when step 0 is among the kept steps."""
    pre = torch.zeros(4, 1, 1, dtype=torch.bool)
    post = torch.zeros(4, 1, 1, dtype=torch.bool)
    pre[0] = True
    post[3] = True
    for carry, expected in ((0, 0.0), (1, 0.0), (2, math.exp(-3 / 20.0)), (10, math.exp(-3 / 20.0))):
        cell = make_cell(None, 1, 1.0, n_in=1, n_out=1)
        trainer = AllPairsKernelSTDP(carry_steps=carry)
        trainer.register_cell("c", cell)
        run(cell, pre[:2], post[:2], "window")
        trainer()
        run(cell, pre[2:], post[2:], "window")
        trainer()
        potentiation, depression = cell.updater.pending("weight")
        assert float(potentiation) == pytest.approx(expected, rel=1e-12, abs=0)
        assert float(depression) == 0.0


def test_every_pair_counts_not_just_the_latest():
    """Two pre spikes before one post spike: both pairs count (the event-time form sees one)."""
    cell = make_cell(None, 1, 1.0, n_in=1, n_out=1)
    trainer = AllPairsKernelSTDP(kernel_post_kwargs={"eta_post": 1.0, "tau_post": 2.0})
    trainer.register_cell("c", cell)
    pre = torch.tensor([True, True, False, False]).reshape(4, 1, 1)
    post = torch.tensor([False, False, False, True]).reshape(4, 1, 1)
    run(cell, pre, post)
    trainer()
    potentiation, _ = cell.updater.pending("weight")
    assert float(potentiation) == pytest.approx(math.exp(-3 / 2) + math.exp(-2 / 2), rel=1e-12)


def test_tensor_kwargs_are_buffers_and_reset_on_clear():
    tau = torch.tensor(3.0)
    trainer = AllPairsKernelSTDP(kernel_post_kwargs={"tau_post": tau}, carry_steps=4)
    cell = make_cell(None, 2, 1.0)
    trainer.register_cell("c", cell)
    state = trainer.get_unit("c").state
    assert state.kernel_post__tau_post.data_ptr() != tau.data_ptr()
    trainer.to(F64)
    assert state.kernel_post__tau_post.dtype == F64
    run(cell, torch.ones(3, 2, 3, dtype=torch.bool), torch.ones(3, 2, 2, dtype=torch.bool))
    trainer()
    assert state.history_pre.shape == (3, 2, 3)
    trainer.clear()
    assert not hasattr(state, "history_pre")


def test_refuses_connections_with_delays_and_bad_settings():
    cell = Cell(LinearDense(2, 2, delay=2.0, dtype=F64), ScriptedNeuron(2))
    cell.make_updater()
    with pytest.raises(ValueError, match=r"^cell"):
        AllPairsKernelSTDP().register_cell("c", cell)
    with pytest.raises(ValueError, match=r"^batch_reduction"):
        AllPairsKernelSTDP(batch_reduction="amax")
    with pytest.raises(ValueError, match=r"^carry_steps"):
        AllPairsKernelSTDP(carry_steps=-1)
    with pytest.raises(TypeError, match=r"^kernel_post"):
        AllPairsKernelSTDP(kernel_post=None)
