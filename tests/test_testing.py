"""plastic.testing: strategies, invariants, the battery on every built-in rule, broken rules caught.

Every built-in trainer and functional rule runs the battery of
:func:`plastic.testing.invariants.check_rule`, with the properties that do not
apply declared per rule with a reason. Deliberately broken rules (wrong-sign
kernel, batch counted twice, carried state ignored) must fail with a message
naming the violated property. The zoo_docs page's examples run here as written.
"""

from __future__ import annotations

import importlib
import math
import re
import unittest
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.receptive import grouped_to_weight
from plastic.functional.reward import RewardSTDPParameters, mstdp_et_window, mstdp_window
from plastic.functional.stdp import stdp_window
from plastic.functional.triplet import TripletParameters, triplet_stdp_window
from plastic.learn.kernel_stdp import DelayAdjustedSTDP, KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.testing import PROFILES, register_profiles
from plastic.testing import strategies as pst
from plastic.testing.invariants import (
    BATCH_ADDITIVITY,
    CAUSALITY,
    CHAINED_WINDOWS,
    CONV_CONSISTENCY,
    NO_SPIKES,
    PRE_ONLY,
    PROPERTIES,
    TIME_SHIFT,
    UPDATER_BOUNDS,
    WINDOW_ADDITIVITY,
    CheckReport,
    FunctionalRule,
    RuleUnderTest,
    TrainerRule,
    check_batch_additivity,
    check_causality,
    check_chained_windows,
    check_conv_consistency,
    check_device_consistency,
    check_dtype_consistency,
    check_no_spikes,
    check_rule,
    check_time_shift,
    check_window_additivity,
    default_weight,
)
from plastic.testing.strategies import ConnectionConfig, ScriptedNeuron

DOC = Path(__file__).resolve().parents[1] / "zoo_docs" / "testing.md"
EVENT_TIME = "event-time form: pairs the most recent spikes at each call, meant to be called once per batch"
NOT_HEBBIAN = "not a Hebbian pair rule"


# --------------------------------------------------------------------------- functional adaptors


def pair_stdp(pairing: str):
    """stdp_window as a stateful FunctionalRule (traces carried, terms in the weight's shape)."""

    def rule(pre, post, *, state=None, view=None, batch_reduction="sum"):
        traces = state or (pre.new_zeros(pre.shape[1:]), post.new_zeros(post.shape[1:]))
        result = stdp_window(
            pre, post, *traces, tau_pre=20.0, tau_post=10.0, pairing=pairing, view=view,
            batch_reduction=batch_reduction,
        )  # fmt: skip
        shape = view.weight_shape if view else (post.shape[2], pre.shape[2])
        terms = (grouped_to_weight(result.potentiation, shape), grouped_to_weight(result.depression, shape))
        return terms, (result.trace_pre, result.trace_post)

    rule.__name__ = f"stdp_window[{pairing}]"
    return rule


def triplet(pre, post, *, state=None, view=None, batch_reduction="sum"):
    result = triplet_stdp_window(
        pre, post, state, TripletParameters(a2_plus=5e-3), view=view, batch_reduction=batch_reduction
    )
    return (result.potentiation, result.depression), result.traces


def mstdp(pre, post, *, state=None, view=None, batch_reduction="sum"):
    result = mstdp_window(pre, post, 1.0, state, RewardSTDPParameters(), view=view, batch_reduction=batch_reduction)
    return result.update, result.state


def mstdp_et(pre, post, *, state=None, view=None, batch_reduction="sum"):
    result = mstdp_et_window(pre, post, 1.0, state, RewardSTDPParameters(), view=view, batch_reduction=batch_reduction)
    return result.update, result.state


FUNCTIONAL_RULES = [
    FunctionalRule(pair_stdp("all"), stateful=True, reductions=("sum", "mean")),
    FunctionalRule(pair_stdp("nearest"), stateful=True, reductions=("sum", "mean")),
    FunctionalRule(triplet, stateful=True, reductions=("sum", "mean"), name="triplet_stdp_window"),
    # the reward of step t acts on the eligibility of step t - 1: one silent step completes the update
    FunctionalRule(mstdp, stateful=True, reductions=("sum", "mean"), latency=1, name="mstdp_window"),
    FunctionalRule(
        mstdp_et,
        stateful=True,
        reductions=("sum", "mean"),
        latency=1,
        name="mstdp_et_window",
        skip={TIME_SHIFT: "the eligibility trace keeps converting reward into change after the last spike"},
    ),
]


# --------------------------------------------------------------------------- trainers


def optional_trainer(module: str, name: str):
    """A trainer class from a module that may not exist yet (None then)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


TripletSTDP = optional_trainer("plastic.learn.triplet", "TripletSTDP")
MSTDP = optional_trainer("plastic.learn.reward", "MSTDP")
MSTDPET = optional_trainer("plastic.learn.reward", "MSTDPET")
OnlineSTDP = optional_trainer("plastic.learn.online", "OnlineSTDP")
IntegerSTDP = optional_trainer("plastic.learn.integer", "IntegerSTDP")
AllPairsKernelSTDP = optional_trainer("plastic.learn.all_pairs", "AllPairsKernelSTDP")
Homeostasis = optional_trainer("plastic.learn.homeostasis", "Homeostasis")

BILINEAR = ("dense", "conv1d", "conv2d")  # rules on [N_out, N_in] or conv weights only
# the one-product path writes the window's net change split by sign: compare the net
NET_SPLIT = "net"
# float32 against float64 for a rule that returns a signed net of pair terms: the error follows the
# cancelling sums (up to a few hundred on the battery's windows, x float32's 6e-8), not the net
NET_DTYPE_ATOL = 1e-4


def trainer_rules() -> list[TrainerRule]:
    rules = [
        TrainerRule(
            lambda **o: KernelSTDP(**o),
            name="KernelSTDP",
            skip={WINDOW_ADDITIVITY: EVENT_TIME, CHAINED_WINDOWS: EVENT_TIME},
        ),
        TrainerRule(
            lambda **o: DelayAdjustedSTDP(**o),
            name="DelayAdjustedSTDP (zero delays)",
            kinds=("dense", "direct", "lateral"),
            connection_kwargs={"delay": 3.0},
            skip={WINDOW_ADDITIVITY: EVENT_TIME, CHAINED_WINDOWS: EVENT_TIME},
        ),
        TrainerRule(lambda **o: STDP(**o), name="STDP all (one product)", compare=NET_SPLIT, dtype_atol=NET_DTYPE_ATOL),
        TrainerRule(lambda **o: STDP(fuse=False, **o), name="STDP all (two products)"),
        TrainerRule(lambda **o: STDP(pairing="nearest", **o), name="STDP nearest"),
    ]
    if TripletSTDP is not None:
        rules.append(TrainerRule(lambda **o: TripletSTDP(a2_plus=5e-3, **o), name="TripletSTDP", kinds=BILINEAR))
    if MSTDP is not None:
        rules.append(
            TrainerRule(
                lambda **o: MSTDP(**o),
                name="MSTDP",
                kinds=BILINEAR,
                call_kwargs={"reward": 1.0},
                compare=NET_SPLIT,
                dtype_atol=NET_DTYPE_ATOL,
                latency=1,
            )
        )
    if MSTDPET is not None:
        rules.append(
            TrainerRule(
                lambda **o: MSTDPET(**o),
                name="MSTDPET",
                kinds=BILINEAR,
                call_kwargs={"reward": 1.0},
                compare=NET_SPLIT,
                dtype_atol=NET_DTYPE_ATOL,
                latency=1,
                skip={TIME_SHIFT: "the eligibility trace keeps converting reward into change after the last spike"},
            )
        )
    if OnlineSTDP is not None:
        for variant in ("full", "nearest"):
            rules.append(
                TrainerRule(
                    lambda variant=variant, **o: OnlineSTDP(variant=variant, a_post=1.0, a_pre=0.5, **o),
                    name=f"OnlineSTDP {variant}",
                    kinds=BILINEAR,
                    updater_kwargs=OnlineSTDP.updater_kwargs(variant=variant),
                )
            )
    if IntegerSTDP is not None:
        rules.append(
            TrainerRule(
                lambda **o: IntegerSTDP(rounding_shift=0, **o),
                name="IntegerSTDP (deterministic rounding)",
                kinds=BILINEAR,
                reductions=(),
                weight_init=lambda config: torch.round(default_weight(config) * 255),
                skip={UPDATER_BOUNDS: "the trainer halves and clamps itself and refuses clamped updaters"},
            )
        )
    if AllPairsKernelSTDP is not None:
        rules.append(
            TrainerRule(lambda **o: AllPairsKernelSTDP(carry_steps=32, **o), name="AllPairsKernelSTDP", kinds=BILINEAR)
        )
    if Homeostasis is not None:
        rate_rule = "a rate rule: moves weights toward the target rate whatever the spikes"
        rules.append(
            TrainerRule(
                lambda **o: Homeostasis(target="weight", rate_target=0.3, learning_rate=0.1, **o),
                name="Homeostasis (weight)",
                reductions=("mean",),
                compare=NET_SPLIT,
                terms_post_only=("net",),
                skip={
                    NO_SPIKES: rate_rule,
                    PRE_ONLY: rate_rule,
                    CAUSALITY: NOT_HEBBIAN,
                    TIME_SHIFT: "the rate estimate decays after the last spike: "
                    "the window's sum depends on when spikes come",
                },
            )
        )
    return rules


# --------------------------------------------------------------------------- the battery on built-in rules


@pytest.mark.parametrize("rule", trainer_rules() + FUNCTIONAL_RULES, ids=lambda rule: rule.name)
def test_builtin_rule_passes_the_battery(rule: RuleUnderTest) -> None:
    report = check_rule(rule)
    assert report.ok
    # every property was either run or skipped with a reason
    assert set(report.passed) | set(report.skipped) == set(PROPERTIES)
    assert all(report.skipped.values())


def test_dtype_consistency_of_a_cancelling_net_uses_the_rules_tolerance() -> None:
    """The case the thorough profile found: all-to-all STDP (one product) on a 1x1 conv1d whose trains
    spike at every step. Potentiation and depression cancel (equal time constants and amplitudes): the
    float64 net is 0 to rounding, the float32 one off by float32's rounding of the cancelling sums."""
    config = ConnectionConfig(
        "conv1d",
        {"in_channels": 1, "out_channels": 1, "kernel_size": 1, "stride": 1, "padding": 0, "dilation": 1,
         "groups": 1, "padding_mode": "zeros", "in_size": 3},
        (1, 3), (1, 3),
    )  # fmt: skip
    spikes = torch.ones(10, 1, 1, 3, dtype=torch.bool)
    rule = next(rule for rule in trainer_rules() if rule.name == "STDP all (one product)")
    double = rule.run(spikes, spikes, config=config, dtype=torch.float64).terms["net"]
    single = rule.run(spikes, spikes, config=config, dtype=torch.float32).terms["net"]
    assert double.abs().max() < 1e-12  # exact cancellation but for rounding
    assert (single.double() - double).abs().max() < NET_DTYPE_ATOL
    check_dtype_consistency(rule, spikes, spikes, config=config)  # the rule's dtype_atol


# --------------------------------------------------------------------------- broken rules are caught


def test_wrong_sign_kernel_fails_causality_only() -> None:
    anti = TrainerRule(
        lambda **o: KernelSTDP(kernel_post_kwargs={"eta_post": -1.0}, kernel_pre_kwargs={"eta_pre": 1.0}, **o),
        name="anti-Hebbian KernelSTDP", skip={WINDOW_ADDITIVITY: EVENT_TIME, CHAINED_WINDOWS: EVENT_TIME},
    )  # fmt: skip
    report = check_rule(anti, shrink=False, raise_on_failure=False)
    assert set(report.failed) == {CAUSALITY}
    assert report.failed[CAUSALITY].startswith("causality sign: anti-Hebbian KernelSTDP: pre before post")
    with pytest.raises(AssertionError, match=r"^causality sign: "):
        check_rule(anti, properties=[CAUSALITY])


def double_counted(pre, post, *, state=None, view=None, batch_reduction="sum"):
    """Pair STDP whose batch reduction counts every sample B times."""
    terms, state = pair_stdp("all")(pre, post, state=state, view=view, batch_reduction=batch_reduction)
    batch = pre.shape[1]
    return (terms[0] * batch, terms[1] * batch), state


def test_double_counted_batch_fails_batch_additivity() -> None:
    rule = FunctionalRule(double_counted, stateful=True, reductions=("sum", "mean"))
    with pytest.raises(AssertionError, match=r"^batch additivity: double_counted .*differs from the (sum|mean)"):
        check_rule(rule, properties=[NO_SPIKES, BATCH_ADDITIVITY, CHAINED_WINDOWS], shrink=False)


def test_trainer_with_double_counting_reduction_fails_batch_additivity() -> None:
    rule = TrainerRule(
        lambda: STDP(fuse=False, batch_reduction=lambda values: values.sum(0) * values.shape[0]),
        name="STDP counting the batch twice",
        reductions=(),
    )
    report = check_rule(
        rule, properties=[BATCH_ADDITIVITY, CHAINED_WINDOWS, CONV_CONSISTENCY], shrink=False, raise_on_failure=False
    )
    assert set(report.failed) == {BATCH_ADDITIVITY}
    assert report.failed[BATCH_ADDITIVITY].startswith("batch additivity: STDP counting the batch twice")


def forgetful(pre, post, *, state=None, view=None, batch_reduction="sum"):
    """Pair STDP that returns its traces but always starts from zero."""
    return pair_stdp("all")(pre, post, state=None, view=view, batch_reduction=batch_reduction)


class ForgetfulSTDP(STDP):
    """STDP that drops its carried traces at every call."""

    def learn_window(self, unit, windows):
        self.init_carry(unit.state, unit.cell)
        super().learn_window(unit, windows)


def test_ignored_state_fails_window_and_chained_additivity() -> None:
    functional = FunctionalRule(forgetful, stateful=True)
    report = check_rule(
        functional, properties=[BATCH_ADDITIVITY, WINDOW_ADDITIVITY, CHAINED_WINDOWS], shrink=False,
        raise_on_failure=False,
    )  # fmt: skip
    assert set(report.failed) == {WINDOW_ADDITIVITY, CHAINED_WINDOWS}
    assert report.failed[CHAINED_WINDOWS].startswith("chained windows: forgetful")
    trainer = TrainerRule(lambda **o: ForgetfulSTDP(fuse=False, **o), name="ForgetfulSTDP")
    with pytest.raises(AssertionError, match=r"^chained windows: ForgetfulSTDP"):
        check_rule(trainer, properties=[CHAINED_WINDOWS], shrink=False)


def test_several_failures_are_reported_together() -> None:
    rule = FunctionalRule(forgetful, stateful=True)
    with pytest.raises(AssertionError) as caught:
        check_rule(rule, properties=[WINDOW_ADDITIVITY, CHAINED_WINDOWS], shrink=False)
    message = str(caught.value)
    assert message.startswith("window additivity, chained windows: 2 properties failed for forgetful")
    assert "\n- window additivity: " in message and "\n- chained windows: " in message


# --------------------------------------------------------------------------- single checks, by hand


def test_causality_check_on_a_hand_computed_pair() -> None:
    # KernelSTDP with the default kernels: +exp(-1/20) for post one step after pre, -exp(-1/20) reversed
    rule = TrainerRule(lambda **o: KernelSTDP(**o), name="KernelSTDP")
    pre = torch.tensor([[[True]], [[False]], [[False]]])
    post = torch.tensor([[[False]], [[True]], [[False]]])
    output = rule.run(pre, post)
    assert output.terms["potentiation"].item() == pytest.approx(math.exp(-1 / 20))
    assert output.terms["depression"].item() == 0.0
    reverse = rule.run(post, pre)
    assert reverse.net.item() == pytest.approx(-math.exp(-1 / 20))
    check_causality(rule, lag=3, onset=1, in_features=2, out_features=3, pre_index=1, post_index=2)


def test_batch_check_on_a_hand_computed_batch() -> None:
    # two samples, one causal pair each at lag 1 and lag 2: sum = e^-1/20 + e^-2/20; mean = half
    rule = TrainerRule(lambda **o: KernelSTDP(**o), name="KernelSTDP")
    pre = torch.zeros((3, 2, 1), dtype=torch.bool)
    post = torch.zeros((3, 2, 1), dtype=torch.bool)
    pre[0, :, 0] = True
    post[1, 0, 0] = True
    post[2, 1, 0] = True
    expected = math.exp(-1 / 20) + math.exp(-2 / 20)
    assert rule.run(pre, post, batch_reduction="sum").net.item() == pytest.approx(expected)
    assert rule.run(pre, post, batch_reduction="mean").net.item() == pytest.approx(expected / 2)
    check_batch_additivity(rule, pre, post, batch_reduction="mean")
    broken = FunctionalRule(double_counted, stateful=True)
    with pytest.raises(AssertionError, match=r"^batch additivity: "):
        check_batch_additivity(broken, pre.float(), post.float())


def test_window_checks_by_hand() -> None:
    # trace STDP: a pair straddling two windows is counted only with the carried traces
    pre = torch.tensor([[[1.0]], [[0.0]], [[0.0]]])
    post = torch.tensor([[[0.0]], [[0.0]], [[1.0]]])
    good = FunctionalRule(pair_stdp("all"), stateful=True)
    assert good.run(pre, post).terms["potentiation"].item() == pytest.approx(math.exp(-2 / 20))
    check_window_additivity(good, pre, post)
    check_chained_windows(good, pre, post, chunks=[1, 2])
    bad = FunctionalRule(forgetful, stateful=True)
    with pytest.raises(AssertionError, match=r"^chained windows: .*potentiation\[0, 0\] is 0, expected 0.904837"):
        check_chained_windows(bad, pre, post, chunks=[1, 2])
    with pytest.raises(AssertionError, match=r"^window additivity: "):
        check_window_additivity(bad, pre, post)


def test_time_shift_and_latency() -> None:
    # MSTDP pays the eligibility of the last step with the next step's reward: latency 1 is needed
    pre = torch.tensor([[[1.0]], [[0.0]]])
    post = torch.tensor([[[0.0]], [[1.0]]])
    check_time_shift(FunctionalRule(mstdp, stateful=True, latency=1), pre, post, shift=2)
    with pytest.raises(AssertionError, match=r"^time-shift invariance: "):
        check_time_shift(FunctionalRule(mstdp, stateful=True, latency=0), pre, post, shift=2)


def test_no_spikes_and_conv_checks() -> None:
    rule = FunctionalRule(pair_stdp("nearest"), stateful=True)
    check_no_spikes(rule, config=ConnectionConfig.conv(2, 2, 2, 3, in_size=(4, 4), padding=1, padding_mode="circular"))
    generator = torch.Generator().manual_seed(0)
    pre = torch.rand((5, 2, 3), generator=generator) < 0.4
    post = torch.rand((5, 2, 2), generator=generator) < 0.4
    check_conv_consistency(rule, pre, post, dims=1)
    check_conv_consistency(rule, pre, post, dims=2)

    def leaky(pre, post, *, view=None):
        # wrong on conv: counts a "pre" spike at every padded position
        dw = torch.einsum("tbo,tbi->oi", post.flatten(2), pre.flatten(2))
        return dw.reshape(view.weight_shape) + 1.0 if view is not None else dw

    with pytest.raises(AssertionError, match=r"^dense/conv consistency: leaky"):
        check_conv_consistency(FunctionalRule(leaky), pre, post)


def test_device_check_skips_without_cuda() -> None:
    rule = FunctionalRule(pair_stdp("all"), stateful=True)
    pre = torch.ones((2, 1, 1), dtype=torch.bool)
    if torch.cuda.is_available():
        check_device_consistency(rule, pre, pre)
    else:
        with pytest.raises(unittest.SkipTest, match=r"^device consistency: CUDA"):
            check_device_consistency(rule, pre, pre)


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^skip: unknown properties"):
        TrainerRule(lambda **o: STDP(**o), skip={"batch additivty": "typo"})
    with pytest.raises(ValueError, match=r"^properties: unknown"):
        check_rule(FunctionalRule(forgetful), properties=["speed"])
    with pytest.raises(ValueError, match=r"^kinds: functional rules"):
        FunctionalRule(forgetful, kinds=("direct",))
    with pytest.raises(TypeError, match=r"^rule: "):
        check_rule(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^chunks: "):
        FunctionalRule(forgetful, stateful=True).run(torch.zeros(3, 1, 1), torch.zeros(3, 1, 1), chunks=[1, 1])


# --------------------------------------------------------------------------- drawn kernels


@given(kernel=pst.kernels(), data=st.data())
def test_kernel_stdp_with_any_drawn_kernel_keeps_the_structural_invariants(kernel, data) -> None:
    function, kwargs = kernel
    rule = TrainerRule(
        lambda **o: KernelSTDP(
            kernel_post=function, kernel_post_kwargs=kwargs, kernel_pre_kwargs={"eta_pre": 0.0}, **o
        ),
        name=f"KernelSTDP[{function.__name__}]",
    )
    config = data.draw(pst.connection_configs(max_features=3, max_channels=2))
    pairs = pst.spike_pairs(
        config.in_shape, config.out_shape, steps=pst.time_steps(1, 6), batch_size=pst.batch_sizes(2, 3)
    )
    pre, post = data.draw(pairs)
    check_batch_additivity(rule, pre, post, config=config, batch_reduction=data.draw(st.sampled_from(["sum", "mean"])))
    check_time_shift(rule, pre, post, shift=data.draw(st.integers(1, 3)), config=config)


# --------------------------------------------------------------------------- strategies


@given(
    spikes=pst.spike_trains(shape=(2, 3), steps=4, batch_size=pst.batch_sizes(1, 2)),
    any_spikes=pst.spike_trains(),
)
def test_spike_trains_have_the_asked_layout(spikes, any_spikes) -> None:
    assert spikes.dtype == torch.bool and spikes.shape[0] == 4 and spikes.shape[2:] == (2, 3)
    assert spikes.shape[1] in (1, 2)
    assert any_spikes.dtype == torch.bool and any_spikes.ndim >= 3


def test_spike_patterns_by_hand() -> None:
    assert not pst.make_spikes("silent", 3, 2, (4,)).any()
    assert pst.make_spikes("saturated", 3, 2, (4,)).all()
    assert int(pst.make_spikes("single", 3, 2, (4,), seed=5).sum()) == 1
    random = pst.make_spikes("random", 50, 4, (10,), rate=0.2, seed=1)
    assert torch.equal(random, pst.make_spikes("random", 50, 4, (10,), rate=0.2, seed=1))
    assert 0.15 < random.float().mean().item() < 0.25


@settings(max_examples=60)  # capped by the active profile (25 on ci): enough to meet every pattern
@given(pair=pst.spike_pairs(in_shape=(2,), out_shape=(3,), steps=pst.time_steps(2, 6)))
def test_spike_pairs_share_time_and_batch(pair) -> None:
    pre, post = pair
    assert pre.shape[:2] == post.shape[:2] and pre.shape[2:] == (2,) and post.shape[2:] == (3,)
    if int(pre.sum()) == 1 and int(post.sum()) == 1:
        # single pairs are in the same sample
        assert pre.nonzero()[0, 1] == post.nonzero()[0, 1]


def test_edge_case_pairs_occur() -> None:
    seen: set[str] = set()

    @settings(max_examples=25, derandomize=True, database=None)
    @given(pair=pst.spike_pairs(in_shape=(1,), out_shape=(1,), steps=4, batch_size=1))
    def classify(pair) -> None:
        pre, post = (spikes[:, 0, 0] for spikes in pair)
        if not pre.any() and not post.any():
            seen.add("silent")
        elif pre.any() and not post.any():
            seen.add("pre_only")
        elif int(pre.sum()) == 1 and int(post.sum()) == 1:
            t_pre, t_post = int(pre.nonzero()[0, 0]), int(post.nonzero()[0, 0])
            seen.add("causal" if t_post > t_pre else "anticausal" if t_post < t_pre else "simultaneous")

    classify()
    assert {"silent", "pre_only"} <= seen and len(seen & {"causal", "anticausal", "simultaneous"}) >= 2


@given(config=pst.connection_configs(), batch=pst.batch_sizes(1, 2))
def test_connection_configs_build_and_match_their_shapes(config, batch) -> None:
    connection = config.build(batch_size=batch, step_mode="window")
    assert tuple(connection.weight.shape) == config.weight_shape
    assert tuple(connection.in_shape) == config.in_shape and tuple(connection.out_shape) == config.out_shape
    out = connection(torch.ones((2, batch, *config.in_shape)))
    assert tuple(out.shape) == (2, batch, *config.out_shape)
    if config.kind.startswith("conv"):
        geometry = config.geometry()
        assert tuple(geometry.weight_shape) == config.weight_shape


def test_connection_configs_cover_every_conv_option() -> None:
    seen: dict[str, set] = {
        "padding_mode": set(),
        "groups": set(),
        "stride": set(),
        "dilation": set(),
        "padding": set(),
    }

    @settings(max_examples=25, derandomize=True, database=None)
    @given(config=pst.connection_configs(kinds=("conv1d",)))
    def collect(config) -> None:
        for key in seen:
            value = config.options[key]
            seen[key].add(value if isinstance(value, (str, int)) else tuple(value))

    collect()
    assert len(seen["padding_mode"]) >= 3 and len(seen["padding"]) >= 3
    assert {1, 2} <= seen["groups"] and len(seen["stride"]) >= 2 and len(seen["dilation"]) >= 2


@given(kernel=pst.kernels())
def test_kernels_follow_the_kernel_protocol(kernel) -> None:
    function, kwargs = kernel
    delta = torch.tensor([-30.0, -1.0, 0.0, 1.0, 30.0, math.nan], dtype=torch.float64)
    values = function(delta, **kwargs)
    assert values.shape == delta.shape and values.dtype == torch.float64
    assert torch.isfinite(values[:5]).all()


@given(cell=pst.cells(batch_size=2, updater={"clamp": (0.0, 1.0)}), data=st.data())
def test_cells_are_ready_to_run(cell, data) -> None:
    assert isinstance(cell, Cell) and cell.updater is not None and cell.step_mode == "window"
    spikes = data.draw(pst.spike_trains(shape=cell.in_shape, steps=3, batch_size=2))
    out = cell(spikes.to(cell.connection.weight.dtype))
    assert tuple(out.shape) == (3, 2, *cell.out_shape)


def test_scripted_neuron_fires_what_it_is_told() -> None:
    neuron = ScriptedNeuron((2,), batch_size=1, step_mode="window")
    script = torch.tensor([[[True, False]], [[False, True]], [[True, True]]])
    neuron.script(script)
    out = neuron(torch.zeros((2, 1, 2)))
    assert torch.equal(out, script[:2].float()) and torch.equal(neuron.spike, script[:2])
    neuron.step_mode = "single"
    assert torch.equal(neuron(torch.zeros((1, 2))), script[2].float())
    with pytest.raises(ValueError, match=r"^spikes: 0 scripted step"):
        neuron(torch.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"^spikes: expected shape"):
        neuron.script(torch.zeros((3, 2, 2), dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^spikes: expected spikes"):
        neuron.script(torch.full((3, 1, 2), 0.5))


def test_register_profiles(monkeypatch) -> None:
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "dev")
    current = settings._current_profile
    try:
        assert register_profiles() == "dev"
        assert settings.default.max_examples == 10
        assert register_profiles(load=False, default="ci") == "dev"
        assert set(PROFILES) == {"ci", "thorough", "dev"}
        assert settings.get_profile("ci").max_examples == 25 and settings.get_profile("ci").derandomize
        assert settings.get_profile("thorough").max_examples == 500
    finally:
        settings.load_profile(current)


def test_report_text() -> None:
    report = CheckReport("rule", ("no spikes",), {"device consistency": "no CUDA"}, {})
    assert report.ok and "1 passed, 1 skipped, 0 failed" in str(report)


# --------------------------------------------------------------------------- the documentation


def doc_example(name: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"zoo_docs/testing.md has no example {name!r}"
    return match.group(1)


def test_doc_custom_kernel_example_runs(capsys) -> None:
    code = doc_example("custom-kernel")
    assert len(code.strip().splitlines()) <= 25
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert isinstance(namespace["report"], CheckReport) and namespace["report"].ok
    assert "triangle kernel" in capsys.readouterr().out
    # the page's claim: the flipped kernel fails on causality
    flipped = TrainerRule(
        lambda **o: KernelSTDP(kernel_post=namespace["triangle"], kernel_pre=namespace["no_kernel"],
                               kernel_post_kwargs={"amplitude": -1.0}, **o),
        name="triangle kernel",
    )  # fmt: skip
    expected = (
        r"^causality sign: triangle kernel: pre before post \(pre at step 0, post at step 1\) gave a net change of -0.9"
    )
    with pytest.raises(AssertionError, match=expected):
        check_rule(flipped, properties=[CAUSALITY])


def test_doc_functional_example_runs() -> None:
    namespace: dict = {}
    exec(compile(doc_example("functional-rule"), str(DOC), "exec"), namespace)
