""":func:`check_rule`: the checks run under hypothesis, their inputs drawn from
:mod:`plastic.testing.strategies`, every failure reported together (:class:`CheckReport`).
"""

from __future__ import annotations

import itertools
import unittest
from collections.abc import Callable, Mapping, Sequence

import attrs
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch import Tensor

from plastic.testing.invariants.adaptors import BoundingKind, RuleUnderTest
from plastic.testing.invariants.checks import (
    check_batch_additivity,
    check_causality,
    check_chained_windows,
    check_conv_consistency,
    check_device_consistency,
    check_dtype_consistency,
    check_no_spikes,
    check_post_only,
    check_pre_only,
    check_time_shift,
    check_updater_bounds,
    check_window_additivity,
)
from plastic.testing.invariants.properties import (
    BATCH_ADDITIVITY,
    CAUSALITY,
    CHAINED_WINDOWS,
    CONV_CONSISTENCY,
    DEVICE_CONSISTENCY,
    DTYPE_CONSISTENCY,
    NO_SPIKES,
    POST_ONLY,
    PRE_ONLY,
    PROPERTIES,
    TIME_SHIFT,
    UPDATER_BOUNDS,
    WINDOW_ADDITIVITY,
)
from plastic.testing.strategies import (
    ConnectionConfig,
    batch_sizes,
    connection_configs,
    seeds,
    spike_pairs,
    time_steps,
)

# --------------------------------------------------------------------------- the battery


def _draw_config(data: st.DataObject, rule: RuleUnderTest, kinds: Sequence[str] | None = None) -> ConnectionConfig:
    return data.draw(connection_configs(tuple(kinds or rule.kinds), max_features=3, max_channels=2), label="config")


def _draw_pair(
    data: st.DataObject,
    config: ConnectionConfig,
    *,
    min_batch: int = 1,
    min_steps: int = 1,
    max_steps: int = 8,
    edge_cases: bool = True,
) -> tuple[Tensor, Tensor]:
    strategy = spike_pairs(
        config.in_shape, config.out_shape, steps=time_steps(min_steps, max_steps),
        batch_size=batch_sizes(min_batch, 3), edge_cases=edge_cases,
    )  # fmt: skip
    return data.draw(strategy, label="spikes")


def _draw_reduction(data: st.DataObject, rule: RuleUnderTest) -> str | None:
    if not rule.reductions:
        return None
    return data.draw(st.sampled_from(rule.reductions), label="batch_reduction")


def _property_no_spikes(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    steps = data.draw(time_steps(1, 6), label="steps")
    batch = data.draw(batch_sizes(1, 3), label="batch_size")
    check_no_spikes(rule, config=config, steps=steps, batch_size=batch, batch_reduction=_draw_reduction(data, rule))


def _property_pre_only(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, _ = _draw_pair(data, config)
    check_pre_only(rule, pre, config=config, batch_reduction=_draw_reduction(data, rule))


def _property_post_only(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    _, post = _draw_pair(data, config)
    check_post_only(rule, post, config=config, batch_reduction=_draw_reduction(data, rule))


def _property_batch(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config, min_batch=2)
    reduction = _draw_reduction(data, rule) or "sum"
    check_batch_additivity(rule, pre, post, config=config, batch_reduction=reduction)


def _property_window(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config, min_steps=2)
    check_window_additivity(rule, pre, post, config=config)


def _property_chained(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config, min_steps=2)
    steps = pre.shape[0]
    cuts = data.draw(st.sets(st.integers(1, steps - 1), min_size=1, max_size=3), label="cuts")
    edges = [0, *sorted(cuts), steps]
    chunks = [b - a for a, b in itertools.pairwise(edges)]
    check_chained_windows(rule, pre, post, chunks=chunks, config=config)


def _property_shift(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config, max_steps=6)
    shift = data.draw(st.integers(1, 3), label="shift")
    check_time_shift(rule, pre, post, shift=shift, config=config)


def _property_causality(rule: RuleUnderTest, data: st.DataObject) -> None:
    if "dense" not in rule.kinds:
        raise unittest.SkipTest(f"{CAUSALITY}: checked on dense connections, which {rule.name} does not support")
    in_features = data.draw(st.integers(1, 3), label="in_features")
    out_features = data.draw(st.integers(1, 3), label="out_features")
    check_causality(
        rule,
        lag=data.draw(st.integers(1, 6), label="lag"),
        onset=data.draw(st.integers(0, 3), label="onset"),
        in_features=in_features,
        out_features=out_features,
        pre_index=data.draw(st.integers(0, in_features - 1), label="pre_index"),
        post_index=data.draw(st.integers(0, out_features - 1), label="post_index"),
    )


def _property_conv(rule: RuleUnderTest, data: st.DataObject) -> None:
    dims = [d for d in (1, 2) if f"conv{d}d" in rule.kinds]
    if "dense" not in rule.kinds or not dims:
        raise unittest.SkipTest(f"{CONV_CONSISTENCY}: {rule.name} does not support both dense and conv connections")
    in_channels = data.draw(st.integers(1, 3), label="in_channels")
    out_channels = data.draw(st.integers(1, 3), label="out_channels")
    pre, post = _draw_pair(data, ConnectionConfig.dense(in_channels, out_channels))
    check_conv_consistency(rule, pre, post, dims=data.draw(st.sampled_from(dims), label="dims"))


def _property_dtype(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config)
    check_dtype_consistency(rule, pre, post, config=config)


def _property_device(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config)
    check_device_consistency(rule, pre, post, config=config)


def _property_bounds(rule: RuleUnderTest, data: st.DataObject) -> None:
    config = _draw_config(data, rule)
    pre, post = _draw_pair(data, config)
    # weights on and near the bounds, where an unclamped update would cross them
    generator = torch.Generator().manual_seed(data.draw(seeds(), label="weight_seed"))
    weight = torch.rand(config.weight_shape, generator=generator, dtype=torch.float64)
    weight = torch.where(
        weight < 0.2, torch.zeros_like(weight), torch.where(weight > 0.8, torch.ones_like(weight), weight)
    )
    kinds: tuple[BoundingKind, ...] = ("hard", "soft")
    bounding = data.draw(st.sampled_from(kinds), label="bounding")
    check_updater_bounds(rule, pre, post, config=config, bounds=(0.0, 1.0), bounding=bounding, weight=weight)


_DRAWN: dict[str, Callable[[RuleUnderTest, st.DataObject], None]] = {
    NO_SPIKES: _property_no_spikes,
    PRE_ONLY: _property_pre_only,
    POST_ONLY: _property_post_only,
    BATCH_ADDITIVITY: _property_batch,
    WINDOW_ADDITIVITY: _property_window,
    CHAINED_WINDOWS: _property_chained,
    TIME_SHIFT: _property_shift,
    CAUSALITY: _property_causality,
    CONV_CONSISTENCY: _property_conv,
    DTYPE_CONSISTENCY: _property_dtype,
    DEVICE_CONSISTENCY: _property_device,
    UPDATER_BOUNDS: _property_bounds,
}


def _not_applicable(rule: RuleUnderTest, name: str) -> str | None:
    """Why a property cannot run on ``rule`` (None: it can)."""
    if name == DEVICE_CONSISTENCY and not torch.cuda.is_available():
        return "CUDA is not available"
    if name == CAUSALITY and "dense" not in rule.kinds:
        return f"checked on dense connections, which {rule.name} does not support"
    if name == CONV_CONSISTENCY and ("dense" not in rule.kinds or not {"conv1d", "conv2d"} & set(rule.kinds)):
        return f"{rule.name} does not support both dense and conv connections"
    return None


def _hypothesis_test(
    rule: RuleUnderTest, drawn: Callable[[RuleUnderTest, st.DataObject], None], config: settings
) -> Callable[[], None]:
    @config
    @given(data=st.data())
    def run_property(data: st.DataObject) -> None:
        drawn(rule, data)

    return run_property


@attrs.frozen
class CheckReport:
    """What :func:`check_rule` found: ``passed`` names, ``skipped`` and ``failed`` ``{property: message}``."""

    rule: str
    passed: tuple[str, ...]
    skipped: Mapping[str, str]
    failed: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"{self.rule}: {len(self.passed)} passed, {len(self.skipped)} skipped, {len(self.failed)} failed"]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped.items()]
        lines += [f"  FAILED {message}" for message in self.failed.values()]
        return "\n".join(lines)


def _message(prop: str, error: BaseException) -> str:
    text = str(error)
    if not text.startswith(prop):
        text = f"{prop}: {type(error).__name__}: {text}"
    notes = [note for note in getattr(error, "__notes__", []) if note.strip()]
    return text + ("\n" + "\n".join(notes) if notes else "")


def check_rule(
    rule: RuleUnderTest,
    *,
    properties: Sequence[str] | None = None,
    max_examples: int | None = None,
    shrink: bool = True,
    raise_on_failure: bool = True,
) -> CheckReport:
    """Run the battery of invariants on ``rule`` with hypothesis; report every failure together.

    Args:
        rule: a :class:`TrainerRule` or :class:`FunctionalRule`.
        properties: names from :data:`PROPERTIES` to run (None: all). The
            rule's ``skip`` entries are skipped with their reason; ``device
            consistency`` is skipped without CUDA.
        max_examples: examples per property (None: the active hypothesis
            profile's ``max_examples``; a larger value is capped to it).
        shrink: shrink a failing example to a minimal one (slower to fail;
            turn it off where only the verdict matters).
        raise_on_failure: raise ``AssertionError`` when a property fails. Its
            message is the failing property's own message (starting with its
            name, with hypothesis' falsifying example) when one failed, and
            lists every failure when several did.

    Returns:
        :class:`CheckReport`.
    """
    if not isinstance(rule, RuleUnderTest):
        raise TypeError(f"rule: expected a TrainerRule or FunctionalRule, got {type(rule).__name__}")
    selected = PROPERTIES if properties is None else tuple(properties)
    unknown = [name for name in selected if name not in PROPERTIES]
    if unknown:
        raise ValueError(f"properties: unknown {unknown}; expected some of {list(PROPERTIES)}")
    profile = settings.default
    assert profile is not None  # hypothesis always has a loaded profile
    examples = profile.max_examples if max_examples is None else min(int(max_examples), profile.max_examples)
    # the explain phase points at lines of this module, not of the rule: skip it
    skipped_phases = {Phase.explain} | (set() if shrink else {Phase.shrink})
    config = settings(
        profile,
        max_examples=max(1, examples),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[phase for phase in profile.phases if phase not in skipped_phases],
    )
    passed: list[str] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name in selected:
        if name in rule.skip:
            skipped[name] = rule.skip[name]
            continue
        reason = _not_applicable(rule, name)
        if reason:
            skipped[name] = reason
            continue
        try:
            _hypothesis_test(rule, _DRAWN[name], config)()
        except unittest.SkipTest as error:
            skipped[name] = str(error)
        except Exception as error:  # every failure is reported, not only the first
            failed[name] = _message(name, error)
        else:
            passed.append(name)
    report = CheckReport(rule.name, tuple(passed), skipped, failed)
    if failed and raise_on_failure:
        if len(failed) == 1:
            raise AssertionError(next(iter(failed.values())))
        raise AssertionError(
            f"{', '.join(failed)}: {len(failed)} properties failed for {rule.name}\n"
            + "\n".join(f"- {message}" for message in failed.values())
        )
    return report
