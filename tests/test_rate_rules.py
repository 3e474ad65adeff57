"""Oja and BCM on cells against a per-step, per-synapse loop in plain Python, and
the classic results of the rate forms: Oja finds the principal component with
unit norm (closed form: the top eigenvector), BCM makes a neuron selective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import F64, assert_close_relative, drive, net_pending, run, synapse_sites
from helpers import make_cell as make_scripted_cell
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.rate_rules import bcm_change, oja_change
from plastic.learn.rate_rules import BCM, Oja

conv_specs = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(3, 5)),
            "kernel": st.integers(1, 3),
            "stride": st.integers(1, 2),
            "padding": st.integers(0, 1),
            "groups": st.sampled_from([1, 2]),
            "padding_mode": st.sampled_from(["zeros", "circular"]),
        }
    ),
)


def loop_reference(connection, pre, post, weight, *, rule, eta, tau_rate, dt, tau_threshold=None, reference=1.0):
    """Per step: EMA rates, then (BCM) the threshold, then every synapse site's change, summed over the batch."""
    pre, post, weight = pre.numpy().astype(float), post.numpy().astype(float), weight.numpy()
    alpha = 1 - math.exp(-dt / tau_rate)
    beta = None if tau_threshold is None else 1 - math.exp(-dt / tau_threshold)
    x = np.zeros(pre.shape[1:])
    y = np.zeros(post.shape[1:])
    theta = np.zeros(post.shape[1:])
    dw = np.zeros(weight.shape)
    sites = synapse_sites(connection)
    steps, batch = pre.shape[:2]
    for t in range(steps):
        x = x + alpha * (pre[t] - x)
        y = y + alpha * (post[t] - y)
        if rule == "bcm":
            theta = theta + beta * (y * y / reference - theta)
        for b in range(batch):
            for weight_index, post_index, pre_index in sites:
                rate_post = y[(b, *post_index)]
                if rule == "oja":
                    # the decay term counts at every output position, with or without an input there
                    dw[weight_index] -= eta * rate_post * rate_post * weight[weight_index]
                    if pre_index is not None:
                        dw[weight_index] += eta * rate_post * x[(b, *pre_index)]
                elif pre_index is not None:
                    modulation = rate_post * (rate_post - theta[(b, *post_index)])
                    dw[weight_index] += eta * modulation * x[(b, *pre_index)]
    return dw


net = net_pending


@settings(deadline=None, max_examples=25)
@given(
    rule=st.sampled_from(["oja", "bcm"]),
    steps=st.integers(1, 8),
    batch=st.integers(1, 3),
    dt=st.sampled_from([0.5, 1.0]),
    spec=conv_specs,
    seed=st.integers(0, 2**31 - 1),
    reduction=st.sampled_from(["sum", "mean"]),
)
def test_window_matches_the_per_step_loop(rule, steps, batch, dt, spec, seed, reduction):
    generator = torch.Generator().manual_seed(seed)
    cell = make_scripted_cell(spec, batch, dt, weight_init=(-1.0, 1.0))
    pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < 0.4
    post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < 0.4
    if rule == "oja":
        trainer = Oja(eta=0.7, tau_rate=3.0, batch_reduction=reduction)
        extra = {}
    else:
        trainer = BCM(eta=0.7, tau_rate=3.0, tau_threshold=5.0, rate_reference=0.5, batch_reduction=reduction)
        extra = {"tau_threshold": 5.0, "reference": 0.5}
    trainer.register_cell("c", cell)
    weight = cell.connection.weight.detach().clone()
    run(cell, pre, post, "window")
    trainer()
    expected = loop_reference(cell.connection, pre, post, weight, rule=rule, eta=0.7, tau_rate=3.0, dt=dt, **extra)
    if reduction == "mean":
        expected = expected / batch
    assert_close_relative(net(cell), expected, rel=1e-12)


@settings(deadline=None, max_examples=15)
@given(
    rule=st.sampled_from(["oja", "bcm"]),
    steps=st.integers(2, 9),
    spec=conv_specs,
    seed=st.integers(0, 2**31 - 1),
    splits=st.lists(st.integers(1, 8), max_size=3),
)
def test_calling_every_step_or_in_chunks_equals_one_window(rule, steps, spec, seed, splits):
    generator = torch.Generator().manual_seed(seed)
    results = []
    for chunks in ("once", "every step", splits):
        cell = make_scripted_cell(spec, 2, 1.0, weight_init=(-1.0, 1.0))
        if not results:
            pre = torch.rand(steps, 2, *cell.connection.in_shape, generator=generator) < 0.4
            post = torch.rand(steps, 2, *cell.connection.out_shape, generator=generator) < 0.4
            initial = cell.connection.weight.detach().clone()
        with torch.no_grad():
            cell.connection.weight.copy_(initial)
        trainer = Oja(eta=0.3, tau_rate=4.0) if rule == "oja" else BCM(eta=0.3, tau_rate=4.0, tau_threshold=6.0)
        trainer.register_cell("c", cell)
        drive(cell, trainer, (pre, post), chunks)
        results.append(net(cell))
    assert_close_relative(results[1], results[0].numpy(), rel=1e-12)
    assert_close_relative(results[2], results[0].numpy(), rel=1e-12)


def test_oja_finds_the_principal_component_with_unit_norm():
    # a linear neuron y = w . x on zero-mean Gaussian inputs with a known covariance:
    # Oja's fixed point is the covariance's top eigenvector (up to sign), |w| = 1
    generator = torch.Generator().manual_seed(0)
    covariance = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=F64)
    cholesky = torch.linalg.cholesky(covariance)
    eigenvectors = torch.linalg.eigh(covariance).eigenvectors
    top = eigenvectors[:, -1]
    weight = torch.tensor([[0.3, -0.8]], dtype=F64)
    for step in range(20000):
        eta = 0.01 if step < 15000 else 0.001
        x = (cholesky @ torch.randn(2, 1, generator=generator, dtype=F64)).T  # [1, 2]
        y = x @ weight.T
        weight = weight + oja_change(x, y, weight, eta)
    assert weight.norm().item() == pytest.approx(1.0, abs=0.03)
    assert abs(float(weight.flatten() @ top)) == pytest.approx(1.0, abs=0.01)


def test_bcm_makes_a_neuron_selective_to_one_of_two_patterns():
    # two patterns presented alternately to a rectified linear neuron: from equal responses BCM
    # ends with one response high and the other near zero (Bienenstock, Cooper & Munro 1982)
    patterns = torch.tensor([[1.0, 0.2], [0.2, 1.0]], dtype=F64)
    weight = torch.tensor([[0.55, 0.45]], dtype=F64)
    theta = torch.zeros(1, 1, dtype=F64)
    for step in range(40000):
        x = patterns[step % 2].unsqueeze(0)
        y = (x @ weight.T).clamp_min(0)
        theta = theta + 0.01 * (y * y - theta)
        weight = weight + bcm_change(x, y, theta, 0.005)
    responses = (patterns @ weight.T).clamp_min(0).flatten()
    assert responses.max() > 1.0
    assert responses.min() < 0.05 * responses.max()


def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="eta"):
        Oja(eta=-1.0)
    with pytest.raises(ValueError, match="batch_reduction"):
        BCM(batch_reduction="amax")
    with pytest.raises(ValueError, match="tau_threshold"):
        BCM(tau_threshold=0.0)
    with pytest.raises(ValueError, match="rate_reference"):
        BCM(rate_reference=-2.0)


def test_figure_script_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    from plastic.zoo import figures_rate_rules

    assert figures_rate_rules.main(tmp_path).stat().st_size > 0
