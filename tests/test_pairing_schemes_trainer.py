"""The nearest-neighbour pairing schemes through the STDP trainer: against a per-site enumeration of
the counted pairs (dense and conv, weight dependence, batch reductions), calling after every step
or in chunks == calling once, checkpoints of the carried state, shared monitors, overrides, bounds."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from helpers import F64, assert_close_relative, conv_specs, drive, enumerated_products, net_pending, run
from helpers import make_cell as make_scripted_cell
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.bounding import Bounding
from plastic.learn.stdp import STDP
from plastic.observe.monitors import MonitorPool

SCHEMES = ("symmetric", "presynaptic_centred", "restricted")


def make_cell(spec, batch, dt):
    return make_scripted_cell(spec, batch, dt, weight_init=(-1.0, 1.0))


cases = {
    "steps": st.integers(1, 8),
    "batch": st.integers(1, 3),
    "dt": st.sampled_from([0.5, 1.0]),
    "rate_pre": st.floats(0.1, 0.7),
    "rate_post": st.floats(0.1, 0.7),
    "seed": st.integers(0, 2**31 - 1),
    "spec": conv_specs,
    "scheme": st.sampled_from(SCHEMES),
}


def _trains(cell, steps, batch, rate_pre, rate_post, seed):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < rate_pre
    post = torch.rand(steps, batch, *cell.connection.out_shape, generator=generator) < rate_post
    return pre, post


net = net_pending


@given(
    **cases,
    eta_post=st.floats(-1.0, 1.0),
    eta_pre=st.floats(-1.0, 1.0),
    weight_dependence=st.booleans(),
    reduction=st.sampled_from(["sum", "mean", "amax"]),
    mode=st.sampled_from(["single", "window"]),
)
def test_trainer_matches_the_pair_enumeration(
    steps, batch, dt, rate_pre, rate_post, seed, spec, scheme, eta_post, eta_pre, weight_dependence, reduction, mode
):
    cell = make_cell(spec, batch, dt)
    pre, post = _trains(cell, steps, batch, rate_pre, rate_post, seed)
    f_post = (lambda w: 2.0 - w) if weight_dependence else None
    f_pre = (lambda w: (w + 2.0) ** 0.5) if weight_dependence else None
    trainer = STDP(
        eta_post=eta_post, eta_pre=eta_pre, tau_pre=3.0, tau_post=6.0, amplitude_pre=0.8, amplitude_post=1.3,
        weight_dependence_post=f_post, weight_dependence_pre=f_pre,
        batch_reduction=(lambda x: x.amax(0)) if reduction == "amax" else reduction, window=16,
    )  # fmt: skip
    trainer.register_cell("c", cell, pairing=scheme)
    run(cell, pre, post, mode)
    trainer()
    pot, dep = enumerated_products(
        cell.connection, pre, post, scheme, decay_pre=math.exp(-dt / 3.0), decay_post=math.exp(-dt / 6.0),
        amp_pre=0.8, amp_post=1.3,
    )  # fmt: skip
    reduce = {"sum": lambda a: a.sum(0), "mean": lambda a: a.mean(0), "amax": lambda a: a.max(0)}[reduction]
    weight = cell.connection.weight.detach().numpy()
    term_post = eta_post * (2.0 - weight if weight_dependence else 1.0) * reduce(pot)
    term_pre = -eta_pre * (np.sqrt(weight + 2.0) if weight_dependence else 1.0) * reduce(dep)
    pending_pos, pending_neg = cell.updater.pending("weight")
    assert_close_relative(pending_pos, np.maximum(term_post, 0) + np.maximum(term_pre, 0), rel=1e-9)
    assert_close_relative(pending_neg, np.maximum(-term_post, 0) + np.maximum(-term_pre, 0), rel=1e-9)


@given(**cases, splits=st.lists(st.integers(0, 12), max_size=3))
def test_calling_every_step_or_in_chunks_equals_calling_once(
    steps, batch, dt, rate_pre, rate_post, seed, spec, scheme, splits
):
    steps += 4
    results = []
    pre = post = None
    for chunks in ("once", "every step", splits):
        cell = make_cell(spec, batch, dt)
        if pre is None:
            pre, post = _trains(cell, steps, batch, rate_pre, rate_post, seed)
        trainer = STDP(eta_post=0.7, eta_pre=0.4, tau_pre=4.0, tau_post=6.0, pairing=scheme)
        trainer.register_cell("c", cell)
        drive(cell, trainer, (pre, post), chunks)
        results.append(net(cell))
    assert_close_relative(results[1], results[0].numpy(), rel=1e-12)
    assert_close_relative(results[2], results[0].numpy(), rel=1e-12)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("spec", [None, {"in_size": (5,), "kernel": 2, "stride": 1, "padding": 1, "groups": 1,
                                          "padding_mode": "zeros"}])  # fmt: skip
def test_checkpoint_of_the_carried_state(scheme, spec):
    """A trainer restored from a state dict halfway continues as the uninterrupted one."""
    batch, steps = 2, 12
    reference_cell = make_cell(spec, batch, 1.0)
    pre, post = _trains(reference_cell, steps, batch, 0.4, 0.3, 7)
    reference = STDP(tau_pre=4.0, tau_post=6.0, pairing=scheme)
    reference.register_cell("c", reference_cell)
    run(reference_cell, pre[:5], post[:5], "window")
    reference()
    saved = copy.deepcopy(reference.state_dict())
    if scheme == "restricted":
        assert saved["states.c.steps_since_pre"].dtype == torch.int64
    if scheme == "presynaptic_centred":
        assert saved["states.c.pending_pre"].ndim == 5
    reference_cell.updater.clear()
    run(reference_cell, pre[5:], post[5:], "window")
    reference()

    cell = make_cell(spec, batch, 1.0)
    restored = STDP(tau_pre=4.0, tau_post=6.0, pairing=scheme)
    restored.register_cell("c", cell)
    restored.load_state_dict(saved)  # the carried state and the recording (monitors are submodules)
    run(cell, pre[5:], post[5:], "window")
    restored()
    assert net(reference_cell).abs().max() > 0
    assert torch.equal(net(cell), net(reference_cell))


def test_two_schemes_share_one_recording():
    """Two trainers on one cell and one monitor pool: each learns its own pairs from one recording."""
    cell = make_cell(None, 2, 1.0)
    pool = MonitorPool()
    trainers = {scheme: STDP(pool=pool, tau_pre=4.0, tau_post=6.0, pairing=scheme) for scheme in SCHEMES}
    for trainer in trainers.values():
        trainer.register_cell("c", cell)
    assert len({id(unit.monitors["pre"]) for trainer in trainers.values() for unit in trainer}) == 1
    pre, post = _trains(cell, 10, 2, 0.4, 0.4, 3)
    run(cell, pre, post, "window")
    for scheme, trainer in trainers.items():
        cell.updater.clear()
        trainer()
        pot, dep = enumerated_products(
            cell.connection, pre, post, scheme, decay_pre=math.exp(-1 / 4.0), decay_post=math.exp(-1 / 6.0),
            amp_pre=1.0, amp_post=1.0,
        )  # fmt: skip
        assert_close_relative(net(cell), pot.sum(0) - dep.sum(0), rel=1e-9)


def test_overrides_errors_bounds_and_resets():
    cell = make_cell(None, 1, 1.0)
    trainer = STDP(tau_pre=4.0, tau_post=6.0)
    unit = trainer.register_cell("c", cell, pairing="restricted")
    assert unit.state.params.pairing == "restricted"
    assert not trainer.uses_one_product(unit)
    with pytest.raises(ValueError, match=r"^pairing"):
        trainer.register_cell("d", cell, pairing="nearest_neighbour")
    with pytest.raises(ValueError, match=r"^pairing"):
        STDP(pairing="pre_centered")
    fused = STDP(pairing="presynaptic_centred", fuse=True)
    with pytest.raises(ValueError, match=r"^fuse"):
        fused.uses_one_product(fused.register_cell("e", make_cell(None, 1, 1.0)))
    # hard bounds of the updater apply to the schemes' change as to any other
    bounded = make_cell(None, 1, 1.0)
    bounded.make_updater(bounding=Bounding("hard", w_min=-0.5, w_max=0.5), clamp=(-0.5, 0.5))
    trainer = STDP(eta_post=10.0, eta_pre=0.0, tau_pre=4.0, tau_post=6.0, pairing="presynaptic_centred")
    trainer.register_cell("b", bounded)
    pre = torch.ones(3, 1, 3, dtype=torch.bool)
    post = torch.ones(3, 1, 2, dtype=torch.bool)
    run(bounded, pre, post, "window")
    trainer()
    bounded.updater.apply()
    assert torch.all(bounded.connection.weight <= 0.5)
    assert trainer.get_unit("b").state.pending_pre.shape == (1, 1, 2, 3, 1)
    # clear() drops the carried state: the next window starts afresh
    trainer.clear()
    assert "pending_pre" not in trainer.get_unit("b").state._buffers
    bounded.updater.clear()
    run(bounded, pre[:1], post[:1], "window")
    trainer()
    assert torch.allclose(net(bounded), torch.full((2, 3), 10.0, dtype=F64))  # only the simultaneous pairs


def test_state_moves_with_to():
    cell = make_cell(None, 1, 1.0)
    trainer = STDP(tau_pre=4.0, tau_post=6.0, pairing="restricted")
    trainer.register_cell("c", cell)
    run(cell, torch.ones(2, 1, 3, dtype=torch.bool), torch.ones(2, 1, 2, dtype=torch.bool), "window")
    trainer()
    trainer.to(torch.float32)
    state = trainer.get_unit("c").state
    assert state.trace_pre.dtype == torch.float32
    assert state.steps_since_pre.dtype == torch.int64  # step counts stay integers
    assert state.steps_since_pre.tolist() == [[0, 0, 0]]
