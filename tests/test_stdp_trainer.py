"""STDP trainer (pair STDP, trace form, on cells) against a naive per-step
reference: traces stepped one sample and one neuron at a time, explicit outer
products per sample, synapse and receptive position."""

from __future__ import annotations

import math

import numpy as np
import torch
from helpers import F64, assert_close_relative, conv_specs, drive, net_pending, run, synapse_sites
from helpers import make_cell as make_scripted_cell
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.stdp import STDP


def make_cell(spec, batch, dt):
    """A scripted cell (helpers.make_cell) whose weights are drawn in [-1, 1]."""
    return make_scripted_cell(spec, batch, dt, weight_init=(-1.0, 1.0))


def naive_products(connection, pre, post, *, tau_pre, tau_post, dt, exact, pairing, amp_pre=1.0, amp_post=1.0,
                   trace_pre=None, trace_post=None):  # fmt: skip
    """Per-sample raw products P[b, w] = sum_t s_post x_pre, D[b, w] = sum_t x_post s_pre, step by step."""
    pre, post = pre.numpy(), post.numpy()
    steps, batch = pre.shape[:2]
    decay_pre = math.exp(-dt / tau_pre) if exact else 1 - dt / tau_pre
    decay_post = math.exp(-dt / tau_post) if exact else 1 - dt / tau_post
    x_pre = np.zeros(pre.shape[1:]) if trace_pre is None else trace_pre.copy()
    x_post = np.zeros(post.shape[1:]) if trace_post is None else trace_post.copy()
    sites = synapse_sites(connection)
    weight_shape = tuple(connection.weight.shape)
    potentiation = np.zeros((batch, *weight_shape))
    depression = np.zeros((batch, *weight_shape))
    for t in range(steps):
        for trace, spikes, decay, amplitude in (
            (x_pre, pre[t], decay_pre, amp_pre),
            (x_post, post[t], decay_post, amp_post),
        ):
            for index in np.ndindex(*trace.shape):
                if pairing == "all":
                    trace[index] = decay * trace[index] + amplitude * spikes[index]
                else:
                    trace[index] = amplitude if spikes[index] else decay * trace[index]
        for b in range(batch):
            for weight_index, post_index, pre_index in sites:
                if pre_index is None:
                    continue
                potentiation[(b, *weight_index)] += post[(t, b, *post_index)] * x_pre[(b, *pre_index)]
                depression[(b, *weight_index)] += x_post[(b, *post_index)] * pre[(t, b, *pre_index)]
    return potentiation, depression, x_pre, x_post


def reduce_reference(values, reduction):
    if reduction == "sum":
        return values.sum(0)
    if reduction == "mean":
        return values.mean(0)
    return values.max(0)  # the callable used below: amax


def resolve(reduction):
    return (lambda values: values.amax(0)) if reduction == "amax" else reduction


def net(cell):
    potentiation, depression = cell.updater.pending("weight")
    return potentiation - depression


cases = {
    "steps": st.integers(1, 7),
    "batch": st.integers(1, 5),
    "dt": st.sampled_from([0.5, 1.0, 2.0]),
    "rate_pre": st.floats(0.05, 0.7),
    "rate_post": st.floats(0.05, 0.7),
    "seed": st.integers(0, 2**31 - 1),
    "spec": conv_specs,
}


@given(
    **cases,
    pairing=st.sampled_from(["all", "nearest"]),
    exact=st.booleans(),
    eta_post=st.floats(-1.0, 1.0),
    eta_pre=st.floats(-1.0, 1.0),
    tau_pre=st.floats(2.5, 20.0),
    tau_post=st.floats(2.5, 20.0),
    weight_dependence=st.booleans(),
    reduction=st.sampled_from(["sum", "mean", "amax"]),
    mode=st.sampled_from(["single", "window"]),
)
def test_stdp_trainer_matches_naive_per_step_reference(
    steps, batch, dt, rate_pre, rate_post, seed, spec, pairing, exact, eta_post, eta_pre, tau_pre, tau_post,
    weight_dependence, reduction, mode,
):  # fmt: skip
    batch = min(batch, 3) if spec is not None else batch
    cell = make_cell(spec, batch, dt)
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < rate_pre
    post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < rate_post
    f_post = (lambda w: 2.0 - w) if weight_dependence else None
    f_pre = (lambda w: (w + 2.0) ** 0.5) if weight_dependence else None
    trainer = STDP(
        eta_post=eta_post, eta_pre=eta_pre, tau_pre=tau_pre, tau_post=tau_post, pairing=pairing, exact=exact,
        amplitude_pre=0.8, amplitude_post=1.3, weight_dependence_post=f_post, weight_dependence_pre=f_pre,
        batch_reduction=resolve(reduction), window=16,
    )  # fmt: skip
    trainer.register_cell("c", cell)
    run(cell, pre, post, mode)
    trainer()
    products = naive_products(cell.connection, pre, post, tau_pre=tau_pre, tau_post=tau_post, dt=dt, exact=exact,
                              pairing=pairing, amp_pre=0.8, amp_post=1.3)  # fmt: skip
    potentiation = reduce_reference(products[0], reduction)
    depression = reduce_reference(products[1], reduction)
    weight = cell.connection.weight.detach().numpy()
    factor_post = 2.0 - weight if weight_dependence else 1.0
    factor_pre = np.sqrt(weight + 2.0) if weight_dependence else 1.0
    term_post = eta_post * factor_post * potentiation
    term_pre = -eta_pre * factor_pre * depression
    pending_pos, pending_neg = cell.updater.pending("weight")
    assert_close_relative(pending_pos - pending_neg, term_post + term_pre)
    if trainer.uses_one_product(trainer.get_unit("c")):
        return
    # the two-term path keeps the terms apart: each one's sign decides its side
    assert_close_relative(pending_pos, np.maximum(term_post, 0) + np.maximum(term_pre, 0))
    assert_close_relative(pending_neg, np.maximum(-term_post, 0) + np.maximum(-term_pre, 0))
    # the carried traces are the reference's
    assert_close_relative(trainer.get_unit("c").state.trace_pre, products[2])
    assert_close_relative(trainer.get_unit("c").state.trace_post, products[3])


@given(
    **cases,
    eta_post=st.floats(-1.0, 1.0),
    eta_pre=st.floats(-1.0, 1.0),
    pairing=st.sampled_from(["all", "nearest"]),
    fuse=st.sampled_from([None, True, False]),
    splits=st.lists(st.integers(0, 7), max_size=3),
)
def test_calling_often_equals_calling_once(
    steps, batch, dt, rate_pre, rate_post, seed, spec, eta_post, eta_pre, pairing, fuse, splits
):
    batch = min(batch, 3) if spec is not None else batch
    fuse = None if pairing == "nearest" else fuse
    generator = torch.Generator().manual_seed(seed)
    steps += 4
    results = []
    for chunks in ("once", "every step", splits):
        cell = make_cell(spec, batch, dt)
        trainer = STDP(eta_post=eta_post, eta_pre=eta_pre, tau_pre=4.0, tau_post=6.0, pairing=pairing, fuse=fuse)
        trainer.register_cell("c", cell)
        if not results:
            pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < rate_pre
            post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < rate_post
        drive(cell, trainer, (pre, post), chunks)
        results.append(net_pending(cell))
    assert_close_relative(results[1], results[0].numpy())
    assert_close_relative(results[2], results[0].numpy())


@given(**cases, eta_post=st.floats(-1.0, 1.0), eta_pre=st.floats(-1.0, 1.0), reduction=st.sampled_from(["sum", "mean"]))
def test_fused_one_product_equals_two_terms(steps, batch, dt, rate_pre, rate_post, seed, spec, eta_post, eta_pre,
                                            reduction):  # fmt: skip
    batch = min(batch, 3) if spec is not None else batch
    generator = torch.Generator().manual_seed(seed)
    results = []
    for fuse in (True, False):
        cell = make_cell(spec, batch, dt)
        trainer = STDP(eta_post=eta_post, eta_pre=eta_pre, tau_pre=3.0, tau_post=5.0, fuse=fuse,
                       batch_reduction=reduction)  # fmt: skip
        trainer.register_cell("c", cell)
        assert trainer.uses_one_product(trainer.get_unit("c")) is fuse
        if not results:
            pre = torch.rand(2 * steps, batch, *cell.connection.in_shape, generator=generator) < rate_pre
            post = torch.rand(2 * steps, batch, *cell.connection.out_shape, generator=generator) < rate_post
        # two calls: the second starts from carried traces
        run(cell, pre[:steps], post[:steps], "window")
        trainer()
        run(cell, pre[steps:], post[steps:], "window")
        trainer()
        results.append((net(cell), trainer.get_unit("c").state.trace_pre, trainer.get_unit("c").state.trace_post))
    for fused, plain in zip(*results, strict=True):
        assert_close_relative(fused, plain.numpy())


def test_auto_fusion_only_where_the_result_is_the_same():
    cell = make_cell(None, 2, 1.0)
    trainer = STDP()
    trainer.register_cell("plain", cell)
    trainer.register_cell("nearest", cell, pairing="nearest")
    trainer.register_cell("dependent", cell, weight_dependence_post=lambda w: 1 - w)
    assert trainer.uses_one_product(trainer.get_unit("plain"))
    assert not trainer.uses_one_product(trainer.get_unit("nearest"))
    assert not trainer.uses_one_product(trainer.get_unit("dependent"))
    try:
        trainer.register_cell("bad", cell, pairing="nearest", fuse=True)
        trainer.uses_one_product(trainer.get_unit("bad"))
    except ValueError as error:
        assert str(error).startswith("fuse")
    else:
        raise AssertionError("fuse=True with nearest pairing must be refused")


def test_window_overflow_is_reported():
    cell = make_cell(None, 1, 1.0)
    trainer = STDP(window=3)
    trainer.register_cell("c", cell)
    run(cell, torch.zeros(4, 1, 3, dtype=torch.bool), torch.zeros(4, 1, 2, dtype=torch.bool))
    try:
        trainer()
    except RuntimeError as error:
        assert "window" in str(error)
    else:
        raise AssertionError("overflowing the window must raise")


def test_hand_computed_pair():
    """One pre spike at step 0, one post spike at step 2: dw = eta_post * exp(-2 dt / tau_pre)."""
    cell = make_cell(None, 1, 0.5)
    trainer = STDP(eta_post=0.3, eta_pre=0.2, tau_pre=4.0, tau_post=8.0)
    trainer.register_cell("c", cell)
    pre = torch.zeros(3, 1, 3, dtype=torch.bool)
    post = torch.zeros(3, 1, 2, dtype=torch.bool)
    pre[0, 0, 1] = True
    post[2, 0, 0] = True
    run(cell, pre, post)
    trainer()
    expected = torch.zeros(2, 3, dtype=F64)
    expected[0, 1] = 0.3 * math.exp(-1.0 / 4.0)
    assert torch.allclose(net(cell), expected, rtol=1e-12, atol=0)
