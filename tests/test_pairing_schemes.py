"""Nearest-neighbour pairing schemes of pair STDP (Morrison, Diesmann & Gerstner 2008, Fig. 7)
against a brute-force enumeration of the spike pairs each scheme counts (plain Python, from the
schemes' definitions), hand-computed trains, window == step loop, chunked windows == one window,
convolutions against per-site enumeration, and named errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from helpers import (
    assert_close_relative,
    conv_specs,
    counted_pairs,
    default_dtype,
    enumerated_products,
    make_cell,
    pair_sums,
)
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.pairing_schemes import NO_SPIKE, PairingState
from plastic.functional.stdp import stdp_step, stdp_window

SCHEMES = ("all", "nearest", "symmetric", "presynaptic_centred", "restricted")


def brute_force(pre, post, scheme, decay_pre, decay_post, amp_pre, amp_post):
    """Per-sample ``[B, N_out, N_in]`` products of a dense layer, synapse by synapse."""
    _steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    pot, dep = np.zeros((batch, n_out, n_in)), np.zeros((batch, n_out, n_in))
    for b in range(batch):
        for i in range(n_out):
            for j in range(n_in):
                pot[b, i, j], dep[b, i, j] = pair_sums(
                    pre[:, b, j].tolist(), post[:, b, i].tolist(), scheme, decay_pre, decay_post, amp_pre, amp_post
                )
    return pot, dep


def _close(actual, expected, rel=1e-9, atol=1e-12):
    assert_close_relative(actual, expected, rel=rel, atol=atol)


cases = st.fixed_dictionaries(
    {
        "steps": st.integers(1, 12),
        "batch": st.integers(1, 3),
        "n_in": st.integers(1, 4),
        "n_out": st.integers(1, 3),
        "dt": st.sampled_from([0.5, 1.0, 2.0]),
        "tau_pre": st.floats(2.0, 40.0),
        "tau_post": st.floats(2.0, 40.0),
        "rate_pre": st.floats(0.05, 0.8),
        "rate_post": st.floats(0.05, 0.8),
        "amp_pre": st.floats(0.2, 2.0),
        "amp_post": st.floats(0.2, 2.0),
        "exact": st.booleans(),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def _draw(case):
    generator = torch.Generator().manual_seed(case["seed"])
    shape = (case["steps"], case["batch"])
    pre = torch.rand((*shape, case["n_in"]), generator=generator, dtype=torch.float64) < case["rate_pre"]
    post = torch.rand((*shape, case["n_out"]), generator=generator, dtype=torch.float64) < case["rate_post"]
    return pre, post


def _decay(case, side):
    tau = case[f"tau_{side}"]
    return math.exp(-case["dt"] / tau) if case["exact"] else 1.0 - case["dt"] / tau


def _kwargs(case):
    return {
        "tau_pre": case["tau_pre"], "tau_post": case["tau_post"], "dt": case["dt"], "exact": case["exact"],
        "amplitude_pre": case["amp_pre"], "amplitude_post": case["amp_post"],
    }  # fmt: skip


def _reference(case, pre, post, scheme):
    return brute_force(
        pre.numpy(), post.numpy(), scheme, _decay(case, "pre"), _decay(case, "post"), case["amp_pre"], case["amp_post"]
    )


def _window(case, pre, post, scheme, dtype=torch.float64, **options):
    """A window from no history (no traces: zeros of the default dtype, the computation's)."""
    with default_dtype(dtype):
        return stdp_window(pre, post, pairing=scheme, **_kwargs(case), **options)


# ------------------------------------------------------------------- brute force


@given(case=cases, scheme=st.sampled_from(SCHEMES), reduction=st.sampled_from(["sum", "mean", "amax"]))
def test_each_scheme_matches_the_pair_enumeration_float64(case, scheme, reduction):
    pre, post = _draw(case)
    pot, dep = _reference(case, pre, post, scheme)
    batch_reduction = (lambda x: x.amax(0)) if reduction == "amax" else reduction
    out = _window(case, pre, post, scheme, batch_reduction=batch_reduction)
    reduce = {"sum": lambda a: a.sum(0), "mean": lambda a: a.mean(0), "amax": lambda a: a.max(0)}[reduction]
    assert out.potentiation.dtype == torch.float64
    _close(out.potentiation, reduce(pot)[None])
    _close(out.depression, reduce(dep)[None])


@given(case=cases, scheme=st.sampled_from(SCHEMES))
def test_each_scheme_matches_the_pair_enumeration_float32(case, scheme):
    pre, post = _draw(case)
    pot, dep = _reference(case, pre, post, scheme)
    out = _window(case, pre, post, scheme, dtype=torch.float32)
    assert out.potentiation.dtype == torch.float32
    _close(out.potentiation, pot.sum(0)[None], rel=1e-6, atol=1e-6)
    _close(out.depression, dep.sum(0)[None], rel=1e-6, atol=1e-6)


@given(case=cases)
def test_nearest_is_the_symmetric_scheme(case):
    """Today's "nearest" counts exactly the symmetric scheme's pairs (Fig. 7A, stdp_nn_symm_synapse)."""
    pre, post = _draw(case)
    pot, dep = _reference(case, pre, post, "symmetric")
    out = _window(case, pre, post, "nearest")
    _close(out.potentiation, pot.sum(0)[None])
    _close(out.depression, dep.sum(0)[None])


def test_hand_computed_trains():
    """pre at 0, 2, 6 and post at 4, 5 (dt = 1, tau = 10, A = 1): the pairs of each scheme by hand."""
    pre = torch.zeros(8, 1, 1, dtype=torch.bool)
    post = torch.zeros(8, 1, 1, dtype=torch.bool)
    pre[[0, 2, 6]] = True
    post[[4, 5]] = True
    e = lambda lag: math.exp(-lag / 10.0)  # noqa: E731
    expected = {
        # post@4: pre@0, pre@2; post@5: pre@0, pre@2 / pre@6: post@4, post@5
        "all": (e(4) + e(2) + e(5) + e(3), e(2) + e(1)),
        # post@4: pre@2; post@5: pre@2 / pre@6: post@5
        "nearest": (e(2) + e(3), e(1)),
        # pre@0 and pre@2 with post@4 (pre@6 waits for a later post) / pre@6: post@5
        "presynaptic_centred": (e(4) + e(2), e(1)),
        # post@4 with pre@2 (pre@2's first post); post@5's latest pre (2) paired already / pre@6: post@5
        "restricted": (e(2), e(1)),
    }
    for scheme, (potentiation, depression) in expected.items():
        with default_dtype(torch.float64):
            out = stdp_window(pre, post, tau_pre=10.0, tau_post=10.0, pairing=scheme)
        assert out.potentiation.item() == pytest.approx(potentiation, rel=1e-12), scheme
        assert out.depression.item() == pytest.approx(depression, rel=1e-12), scheme


def test_simultaneous_spikes_count_in_both_terms():
    """pre at 1, 3 and post at 3 (one simultaneous pair): every scheme counts (3, 3) both ways."""
    pre = torch.zeros(4, 1, 1, dtype=torch.bool)
    post = torch.zeros(4, 1, 1, dtype=torch.bool)
    pre[[1, 3]] = True
    post[3] = True
    a = math.exp(-0.5)  # tau = 2
    expected = {
        "all": (1.0 + a**2, 1.0),
        "nearest": (1.0, 1.0),  # post@3's latest pre is pre@3 (NEST would pair it with pre@1)
        "presynaptic_centred": (a**2 + 1.0, 1.0),  # pre@1 and pre@3 both pair with post@3
        "restricted": (1.0, 1.0),
    }
    for scheme, (potentiation, depression) in expected.items():
        with default_dtype(torch.float64):
            out = stdp_window(pre, post, tau_pre=2.0, tau_post=2.0, pairing=scheme)
        assert out.potentiation.item() == pytest.approx(potentiation, rel=1e-12), scheme
        assert out.depression.item() == pytest.approx(depression, rel=1e-12), scheme


# ---------------------------------------------------------- carried state, steps


def _chain(case, pre, post, scheme, cuts, dtype=torch.float64):
    """The products summed over windows cut at ``cuts`` (each continuing from the last), and the last result."""
    bounds = [0, *cuts, case["steps"]]
    carried = {}
    total_pot = total_dep = 0.0
    for start, stop in itertools.pairwise(bounds):
        with default_dtype(dtype):
            result = stdp_window(pre[start:stop], post[start:stop], pairing=scheme, **carried, **_kwargs(case))
        carried = {
            "trace_pre": result.trace_pre,
            "trace_post": result.trace_post,
            "pairing_state": result.pairing_state,
        }
        total_pot = total_pot + result.potentiation
        total_dep = total_dep + result.depression
    return total_pot, total_dep, result


@given(case=cases, scheme=st.sampled_from(SCHEMES), cuts=st.lists(st.integers(0, 12), max_size=3))
def test_chunked_windows_equal_one_window(case, scheme, cuts):
    pre, post = _draw(case)
    cuts = sorted(min(c, case["steps"]) for c in cuts)
    whole = _chain(case, pre, post, scheme, [])
    chunked = _chain(case, pre, post, scheme, cuts)
    _close(chunked[0], whole[0])
    _close(chunked[1], whole[1])
    _close(chunked[2].trace_pre, whole[2].trace_pre)
    _close(chunked[2].trace_post, whole[2].trace_post)
    state, expected = chunked[2].pairing_state, whole[2].pairing_state
    assert (state is None) == (expected is None)
    if state is not None:
        for value, reference in zip(state, expected, strict=True):
            assert (value is None) == (reference is None)
            if value is not None and value.dtype == torch.int64:
                assert torch.equal(value, reference)
            elif value is not None:
                _close(value, reference)


@given(case=cases, scheme=st.sampled_from(SCHEMES), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_window_equals_the_step_loop(case, scheme, dtype):
    pre, post = _draw(case)
    window = _window(case, pre, post, scheme, dtype=dtype)
    trace_pre = trace_post = state = None
    pot = torch.zeros_like(window.potentiation)
    dep = torch.zeros_like(window.depression)
    for t in range(case["steps"]):
        if t == 0:
            with default_dtype(dtype):
                step = stdp_step(pre[t], post[t], pairing=scheme, **_kwargs(case))
        else:
            step = stdp_step(
                pre[t], post[t], trace_pre, trace_post, pairing=scheme, pairing_state=state, **_kwargs(case)
            )
        pot += step.potentiation
        dep += step.depression
        trace_pre, trace_post, state = step.trace_pre, step.trace_post, step.pairing_state
    rel = 1e-12 if dtype == torch.float64 else 1e-6
    _close(pot, window.potentiation.double(), rel=rel, atol=0.0)
    _close(dep, window.depression.double(), rel=rel, atol=0.0)
    # the nearest traces follow the same recurrence step by step: equal bit for bit
    assert torch.equal(trace_pre, window.trace_pre)
    assert torch.equal(trace_post, window.trace_post)
    if scheme == "restricted":
        assert torch.equal(state.steps_since_pre, window.pairing_state.steps_since_pre)
        assert torch.equal(state.steps_since_post, window.pairing_state.steps_since_post)


def test_restricted_state_counts_steps_since_the_last_spike():
    pre = torch.tensor([[1, 0], [0, 0], [0, 0]], dtype=torch.bool).unsqueeze(1)  # [T=3, B=1, 2]
    post = torch.tensor([[0], [1], [0]], dtype=torch.bool).unsqueeze(1)
    out = stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, pairing="restricted")
    assert out.pairing_state.steps_since_pre.tolist() == [[2, NO_SPIKE]]
    assert out.pairing_state.steps_since_post.tolist() == [[1]]
    later = stdp_window(
        pre[:0], post[:0], out.trace_pre, out.trace_post, tau_pre=5.0, tau_post=5.0, pairing="restricted",
        pairing_state=out.pairing_state,
    )  # fmt: skip
    assert torch.equal(later.pairing_state.steps_since_pre, out.pairing_state.steps_since_pre)


def test_presynaptic_centred_pending_waits_for_the_next_post_spike():
    """A pre spike at the end of one window pairs with the first post spike of the next."""
    tau = 4.0
    pre = torch.zeros(3, 1, 1, dtype=torch.bool)
    post = torch.zeros(3, 1, 1, dtype=torch.bool)
    pre[2] = True
    first = stdp_window(pre, post, tau_pre=tau, tau_post=tau, pairing="presynaptic_centred")
    assert first.potentiation.item() == 0.0
    assert first.pairing_state.pending_pre.shape == (1, 1, 1, 1, 1)
    assert first.pairing_state.pending_pre.item() == pytest.approx(1.0)
    post2 = torch.zeros(3, 1, 1, dtype=torch.bool)
    post2[1] = post2[2] = True  # the second post spike finds nothing pending
    second = stdp_window(
        torch.zeros(3, 1, 1, dtype=torch.bool), post2, first.trace_pre, first.trace_post, tau_pre=tau, tau_post=tau,
        pairing="presynaptic_centred", pairing_state=first.pairing_state,
    )  # fmt: skip
    assert second.potentiation.item() == pytest.approx(math.exp(-2 / tau), rel=1e-6)
    assert second.pairing_state.pending_pre.item() == 0.0


# ---------------------------------------------------------------- convolutions


@given(
    spec=conv_specs,
    scheme=st.sampled_from(SCHEMES),
    steps=st.integers(1, 8),
    batch=st.integers(1, 2),
    rates=st.tuples(st.floats(0.1, 0.7), st.floats(0.1, 0.7)),
    seed=st.integers(0, 2**31 - 1),
    reduction=st.sampled_from(["sum", "amax"]),
    as_geometry=st.booleans(),
)
def test_conv_matches_the_enumeration_per_site(spec, scheme, steps, batch, rates, seed, reduction, as_geometry):
    """Each (weight, receptive position) site pairs its own input and output neuron's trains
    (``spec`` None: a dense connection as the view)."""
    connection = make_cell(spec, batch, 1.0).connection
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, *connection.in_shape, generator=generator) < rates[0]
    post = torch.rand(steps, batch, *connection.out_shape, generator=generator) < rates[1]
    expected_pot, expected_dep = enumerated_products(
        connection, pre, post, scheme, decay_pre=math.exp(-1 / 3.0), decay_post=math.exp(-1 / 5.0), amp_pre=0.7,
        amp_post=1.2,
    )  # fmt: skip
    batch_reduction = (lambda x: x.amax(0)) if reduction == "amax" else "sum"
    view = getattr(connection, "geometry", None) if as_geometry else connection
    with default_dtype(torch.float64):
        out = stdp_window(
            pre, post, tau_pre=3.0, tau_post=5.0, amplitude_pre=0.7, amplitude_post=1.2, pairing=scheme, view=view,
            batch_reduction=batch_reduction,
        )  # fmt: skip
    reduce = (lambda a: a.max(0)) if reduction == "amax" else (lambda a: a.sum(0))
    shape = connection.weight.shape
    _close(out.potentiation.reshape(shape), reduce(expected_pot))
    _close(out.depression.reshape(shape), reduce(expected_dep))


# ----------------------------------------------------------------------- errors


def test_bad_pairing_and_state_get_named_errors():
    pre = torch.zeros(3, 2, 4, dtype=torch.bool)
    post = torch.zeros(3, 2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"^pairing: expected one of"):
        stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, pairing="nearest_neighbour")
    with pytest.raises(ValueError, match=r"^pairing: expected one of"):
        stdp_step(pre[0], post[0], tau_pre=5.0, tau_post=5.0, pairing=3)
    fresh = stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, pairing="restricted")
    kwargs = {"tau_pre": 5.0, "tau_post": 5.0}
    # traces without the state (or the state without traces) of a stateful scheme
    with pytest.raises(ValueError, match=r"^pairing_state:"):
        stdp_window(pre, post, fresh.trace_pre, fresh.trace_post, pairing="restricted", **kwargs)
    with pytest.raises(ValueError, match=r"^trace_post:"):
        stdp_window(pre, post, fresh.trace_pre, None, pairing="restricted", pairing_state=fresh.pairing_state, **kwargs)
    # a state given to a stateless scheme, a state of the wrong kind, shape or dtype
    with pytest.raises(ValueError, match=r"^pairing_state:"):
        stdp_window(pre, post, pairing="nearest", pairing_state=fresh.pairing_state, **kwargs)
    traces = (fresh.trace_pre, fresh.trace_post)
    with pytest.raises(TypeError, match=r"^pairing_state:"):
        stdp_window(pre, post, *traces, pairing="restricted", pairing_state=(1, 2), **kwargs)
    wrong = PairingState(fresh.pairing_state.steps_since_pre[:1], fresh.pairing_state.steps_since_post)
    with pytest.raises(ValueError, match=r"^pairing_state\.steps_since_pre:"):
        stdp_window(pre, post, *traces, pairing="restricted", pairing_state=wrong, **kwargs)
    wrong = PairingState(fresh.pairing_state.steps_since_pre.float(), fresh.pairing_state.steps_since_post)
    with pytest.raises(TypeError, match=r"^pairing_state\.steps_since_pre:"):
        stdp_window(pre, post, *traces, pairing="restricted", pairing_state=wrong, **kwargs)
    wrong = PairingState(fresh.pairing_state.steps_since_pre - 2, fresh.pairing_state.steps_since_post)
    with pytest.raises(ValueError, match=r"^pairing_state\.steps_since_pre:"):
        stdp_window(pre, post, *traces, pairing="restricted", pairing_state=wrong, **kwargs)
    with pytest.raises(ValueError, match=r"^pairing_state\.steps_since_pre:"):
        stdp_window(pre, post, *traces, pairing="presynaptic_centred", pairing_state=fresh.pairing_state, **kwargs)
    centred = stdp_window(pre, post, pairing="presynaptic_centred", **kwargs)
    with pytest.raises(ValueError, match=r"^pairing_state\.pending_pre:"):
        stdp_window(pre, post, *traces, pairing="restricted", pairing_state=centred.pairing_state, **kwargs)
    bad = PairingState(pending_pre=centred.pairing_state.pending_pre.double())
    with pytest.raises(TypeError, match=r"^pairing_state\.pending_pre:"):
        stdp_window(pre, post, *traces, pairing="presynaptic_centred", pairing_state=bad, **kwargs)
    bad = PairingState(pending_pre=centred.pairing_state.pending_pre[:, :, :2])
    with pytest.raises(ValueError, match=r"^pairing_state\.pending_pre:"):
        stdp_window(pre, post, *traces, pairing="presynaptic_centred", pairing_state=bad, **kwargs)
    # one presynaptic decay for every neuron in the presynaptic-centred scheme
    with pytest.raises(ValueError, match=r"^tau_pre:"):
        stdp_window(pre, post, tau_pre=torch.full((4,), 5.0), tau_post=5.0, pairing="presynaptic_centred")
    # per-neuron decays are fine in the restricted scheme
    stdp_window(pre, post, tau_pre=torch.full((4,), 5.0), tau_post=5.0, pairing="restricted")


# ------------------------------------------------------------------- the figure


@given(
    pre=st.sets(st.integers(0, 39), max_size=12),
    post=st.sets(st.integers(0, 39), max_size=12),
    scheme=st.sampled_from(SCHEMES),
)
def test_the_figure_reads_each_schemes_pairs_from_the_rule(pre, post, scheme):
    """The pairs decoded from stdp_step (jumps 2^t, no decay) are the definitions' pairs."""
    from plastic.zoo.figures_pairing import counted_pairs_by_the_rule

    assert counted_pairs_by_the_rule(tuple(pre), tuple(post), 40, scheme) == counted_pairs(pre, post, scheme)


def test_pairing_protocol_and_figure_script(tmp_path):
    pytest.importorskip("matplotlib")
    from plastic.zoo.figures_pairing import ETA_POST, ETA_PRE, TAU_POST, TAU_PRE, main, pairing_protocol

    # pairings 1 s apart: every scheme counts the one pair of each pairing
    for scheme in ("all", "nearest", "presynaptic_centred", "restricted"):
        assert pairing_protocol(scheme, 1.0, 10.0, pairings=3) == pytest.approx(ETA_POST * math.exp(-10 / TAU_PRE))
        assert pairing_protocol(scheme, 1.0, -10.0, pairings=3) == pytest.approx(-ETA_PRE * math.exp(-10 / TAU_POST))
    path = main(tmp_path, pairings=2, seconds=0.2, samples=2)
    assert path.exists() and path.stat().st_size > 0
