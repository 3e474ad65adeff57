"""One check per invariant on concrete inputs (``check_batch_additivity(rule, spikes_pre, spikes_post,
...)``), each raising ``AssertionError`` that starts with the property's name.
"""

from __future__ import annotations

import unittest
from collections.abc import Sequence

import torch
from torch import Tensor

from plastic.testing.invariants.adaptors import BoundingKind, RuleOutput, RuleUnderTest, _default_config
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
    TIME_SHIFT,
    UPDATER_BOUNDS,
    WINDOW_ADDITIVITY,
)
from plastic.testing.strategies import (
    ConnectionConfig,
)

# --------------------------------------------------------------------------- comparisons


def _scale(*outputs: RuleOutput) -> float:
    largest = 0.0
    for output in outputs:
        for value in output.terms.values():
            if value.numel():
                largest = max(largest, float(value.detach().abs().max().cpu()))
    return largest


def _assert_close(prop: str, actual: RuleOutput, expected: RuleOutput, *, rtol: float, atol: float, what: str) -> None:
    """Every term of ``actual`` equals ``expected`` within ``atol + rtol * max|value|``."""
    if set(actual.terms) != set(expected.terms):
        raise AssertionError(f"{prop}: {what}: terms {sorted(actual.terms)} differ from {sorted(expected.terms)}")
    tolerance = atol + rtol * _scale(actual, expected)
    for name in sorted(expected.terms):
        got = actual.terms[name].detach().to(device="cpu", dtype=torch.float64)
        want = expected.terms[name].detach().to(device="cpu", dtype=torch.float64)
        if got.shape != want.shape:
            raise AssertionError(f"{prop}: {what}: {name} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        difference = (got - want).abs()
        bad = ~(difference <= tolerance)  # NaN counts as a mismatch
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            raise AssertionError(
                f"{prop}: {what}: {name}{list(index)} is {got[index].item():.10g}, expected "
                f"{want[index].item():.10g} (|diff| {difference[index].item():.3g} > tolerance {tolerance:.3g}; "
                f"{int(bad.sum())} of {bad.numel()} entries differ)"
            )


def _assert_zero(prop: str, output: RuleOutput, allowed: Sequence[str], *, atol: float, what: str) -> None:
    for name in sorted(output.terms):
        if name in allowed:
            continue
        value = output.terms[name].detach().to(device="cpu", dtype=torch.float64)
        bad = ~(value.abs() <= atol)
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            raise AssertionError(
                f"{prop}: {what}, but {name}{list(index)} is {value[index].item():.10g} "
                f"({int(bad.sum())} of {bad.numel()} entries nonzero)"
            )


def _resolve_config(spikes_pre: Tensor, spikes_post: Tensor, config: ConnectionConfig | None) -> ConnectionConfig:
    return config or _default_config(spikes_pre, spikes_post)


# --------------------------------------------------------------------------- checks


def check_no_spikes(
    rule: RuleUnderTest,
    *,
    config: ConnectionConfig,
    steps: int = 5,
    batch_size: int = 2,
    batch_reduction: str | None = None,
) -> None:
    """Silent trains give no update (every term zero)."""
    pre = torch.zeros((steps, batch_size, *config.in_shape), dtype=torch.bool)
    post = torch.zeros((steps, batch_size, *config.out_shape), dtype=torch.bool)
    output = rule.run(pre, post, config=config, batch_reduction=batch_reduction)
    _assert_zero(NO_SPIKES, output, (), atol=rule.atol, what=f"{rule.name} got silent trains ({config.kind})")


def check_pre_only(
    rule: RuleUnderTest,
    spikes_pre: Tensor,
    *,
    config: ConnectionConfig | None = None,
    batch_reduction: str | None = None,
) -> None:
    """Presynaptic spikes with a silent postsynaptic train give only ``rule.terms_pre_only``."""
    _check_one_side(rule, spikes_pre, "pre", config, batch_reduction)


def check_post_only(
    rule: RuleUnderTest,
    spikes_post: Tensor,
    *,
    config: ConnectionConfig | None = None,
    batch_reduction: str | None = None,
) -> None:
    """Postsynaptic spikes with a silent presynaptic train give only ``rule.terms_post_only``."""
    _check_one_side(rule, spikes_post, "post", config, batch_reduction)


def _check_one_side(
    rule: RuleUnderTest, spikes: Tensor, side: str, config: ConnectionConfig | None, batch_reduction: str | None
) -> None:
    """Spikes on ``side`` (``"pre"`` or ``"post"``) only: the terms outside that side's allowance stay zero."""
    other = "post" if side == "pre" else "pre"
    if config is None:
        raise ValueError(f"config: needed to know the {other}synaptic shape")
    silent_shape = config.out_shape if side == "pre" else config.in_shape
    silent = torch.zeros((*spikes.shape[:2], *silent_shape), dtype=torch.bool)
    pre, post = (spikes, silent) if side == "pre" else (silent, spikes)
    output = rule.run(pre, post, config=config, batch_reduction=batch_reduction)
    allowed = rule.terms_pre_only if side == "pre" else rule.terms_post_only
    _assert_zero(
        PRE_ONLY if side == "pre" else POST_ONLY, output, allowed, atol=rule.atol,
        what=f"{rule.name} saw {side}synaptic spikes only and may produce {list(allowed) or 'nothing'}",
    )  # fmt: skip


def check_batch_additivity(
    rule: RuleUnderTest,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    *,
    config: ConnectionConfig | None = None,
    batch_reduction: str = "sum",
) -> None:
    """The update of a batch equals the sum (``"sum"``) or mean (``"mean"``) of its samples' updates."""
    config = _resolve_config(spikes_pre, spikes_post, config)
    keyword = batch_reduction if rule.reductions else None
    batched = rule.run(spikes_pre, spikes_post, config=config, batch_reduction=keyword)
    samples = [
        rule.run(spikes_pre[:, b : b + 1], spikes_post[:, b : b + 1], config=config, batch_reduction=keyword)
        for b in range(spikes_pre.shape[1])
    ]
    expected = samples[0]
    for sample in samples[1:]:
        expected = expected + sample
    if batch_reduction == "mean":
        expected = expected.map(lambda value: value / len(samples))
    _assert_close(
        BATCH_ADDITIVITY, batched, expected, rtol=rule.rtol, atol=rule.atol,
        what=f"{rule.name} ({config.kind}, batch_reduction={batch_reduction!r}): the update of a batch of "
        f"{len(samples)} differs from the {batch_reduction} of its {len(samples)} samples' updates",
    )  # fmt: skip


def check_window_additivity(
    rule: RuleUnderTest, spikes_pre: Tensor, spikes_post: Tensor, *, config: ConnectionConfig | None = None
) -> None:
    """Calling the rule after every single step (state carried) equals one call on the window."""
    config = _resolve_config(spikes_pre, spikes_post, config)
    steps = spikes_pre.shape[0]
    whole = rule.run(spikes_pre, spikes_post, config=config)
    stepped = rule.run(spikes_pre, spikes_post, config=config, chunks=[1] * steps)
    _assert_close(
        WINDOW_ADDITIVITY, stepped, whole, rtol=rule.rtol, atol=rule.atol,
        what=f"{rule.name} ({config.kind}): {steps} single steps differ from one window of {steps} steps",
    )  # fmt: skip


def check_chained_windows(
    rule: RuleUnderTest,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    *,
    chunks: Sequence[int],
    config: ConnectionConfig | None = None,
) -> None:
    """Consecutive windows of lengths ``chunks`` (state carried) equal one window."""
    config = _resolve_config(spikes_pre, spikes_post, config)
    whole = rule.run(spikes_pre, spikes_post, config=config)
    chained = rule.run(spikes_pre, spikes_post, config=config, chunks=chunks)
    _assert_close(
        CHAINED_WINDOWS, chained, whole, rtol=rule.rtol, atol=rule.atol,
        what=f"{rule.name} ({config.kind}): windows of {list(chunks)} steps differ from one window of "
        f"{spikes_pre.shape[0]} steps (is the carried state used?)",
    )  # fmt: skip


def check_time_shift(
    rule: RuleUnderTest, spikes_pre: Tensor, spikes_post: Tensor, *, shift: int, config: ConnectionConfig | None = None
) -> None:
    """Shifting both trains ``shift`` steps later leaves the update unchanged.

    Compares ``trains + silence(shift + latency)`` with ``silence(shift) +
    trains + silence(latency)``: both trains stay in the window.
    """
    config = _resolve_config(spikes_pre, spikes_post, config)

    def silence(steps: int, like: Tensor) -> Tensor:
        return torch.zeros((steps, *like.shape[1:]), dtype=torch.bool)

    latency = rule.latency
    early = rule.run(
        torch.cat([spikes_pre, silence(shift + latency, spikes_pre)]),
        torch.cat([spikes_post, silence(shift + latency, spikes_post)]),
        config=config,
    )
    late = rule.run(
        torch.cat([silence(shift, spikes_pre), spikes_pre, silence(latency, spikes_pre)]),
        torch.cat([silence(shift, spikes_post), spikes_post, silence(latency, spikes_post)]),
        config=config,
    )
    _assert_close(
        TIME_SHIFT, late, early, rtol=rule.rtol, atol=rule.atol,
        what=f"{rule.name} ({config.kind}): shifting both trains by {shift} step(s) changed the update",
    )  # fmt: skip


def check_causality(
    rule: RuleUnderTest,
    *,
    lag: int,
    onset: int = 0,
    in_features: int = 1,
    out_features: int = 1,
    pre_index: int = 0,
    post_index: int = 0,
) -> None:
    """A Hebbian rule potentiates a pre-before-post pair and depresses post-before-pre.

    One presynaptic spike (neuron ``pre_index``) and one postsynaptic spike
    (``post_index``) ``lag >= 1`` steps apart, starting at ``onset``, on a
    dense connection, batch 1, followed by ``latency + 1`` silent steps: the
    net change of that synapse must be > 0 for the causal order and < 0 for
    the anti-causal one.
    """
    if lag < 1:
        raise ValueError(f"lag: expected an int >= 1, got {lag!r}")
    config = ConnectionConfig.dense(in_features, out_features)
    steps = onset + lag + 1 + rule.latency + 1
    first, second = onset, onset + lag
    for order, t_pre, t_post, sign in (
        ("pre before post", first, second, 1.0),
        ("post before pre", second, first, -1.0),
    ):
        pre = torch.zeros((steps, 1, in_features), dtype=torch.bool)
        post = torch.zeros((steps, 1, out_features), dtype=torch.bool)
        pre[t_pre, 0, pre_index] = True
        post[t_post, 0, post_index] = True
        net = rule.run(pre, post, config=config).net
        value = float(net[post_index, pre_index])
        if not sign * value > 0:
            expected = "potentiation (> 0)" if sign > 0 else "depression (< 0)"
            raise AssertionError(
                f"{CAUSALITY}: {rule.name}: {order} (pre at step {t_pre}, post at step {t_post}) gave a net change "
                f"of {value:.6g} on synapse [{post_index}, {pre_index}], expected {expected}"
            )


def check_conv_consistency(rule: RuleUnderTest, spikes_pre: Tensor, spikes_post: Tensor, *, dims: int = 1) -> None:
    """A 1x1 convolution over inputs of spatial size 1 equals the dense rule.

    ``spikes_pre`` ``[T, B, C_in]``, ``spikes_post`` ``[T, B, C_out]``; the
    convolution sees them as ``[T, B, C, 1]`` (``dims=1``) or ``[T, B, C, 1, 1]``.
    """
    if dims not in (1, 2):
        raise ValueError(f"dims: expected 1 or 2, got {dims!r}")
    in_channels, out_channels = spikes_pre.shape[2], spikes_post.shape[2]
    dense = ConnectionConfig.dense(in_channels, out_channels)
    conv = ConnectionConfig.conv(dims, in_channels, out_channels, 1, in_size=1)
    spatial = (1,) * dims
    weight = rule.initial_weight(dense)
    expected = rule.run(spikes_pre, spikes_post, config=dense, weight=weight)
    actual = rule.run(
        spikes_pre.reshape(*spikes_pre.shape, *spatial),
        spikes_post.reshape(*spikes_post.shape, *spatial),
        config=conv,
        weight=weight.reshape(conv.weight_shape),
    ).map(lambda value: value.reshape(out_channels, in_channels))
    _assert_close(
        CONV_CONSISTENCY, actual, expected, rtol=rule.rtol, atol=rule.atol,
        what=f"{rule.name}: a 1x1 conv{dims}d on inputs of size 1 differs from the dense rule",
    )  # fmt: skip


def check_dtype_consistency(
    rule: RuleUnderTest,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    *,
    config: ConnectionConfig | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """float32 and float64 runs agree within ``atol + rtol * max|value|`` (None: the rule's
    ``dtype_rtol`` / ``dtype_atol``)."""
    config = _resolve_config(spikes_pre, spikes_post, config)
    single = rule.run(spikes_pre, spikes_post, config=config, dtype=torch.float32)
    double = rule.run(spikes_pre, spikes_post, config=config, dtype=torch.float64)
    _assert_close(
        DTYPE_CONSISTENCY, single, double,
        rtol=rule.dtype_rtol if rtol is None else rtol, atol=rule.dtype_atol if atol is None else atol,
        what=f"{rule.name} ({config.kind}): float32 differs from float64",
    )  # fmt: skip


def check_device_consistency(
    rule: RuleUnderTest,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    *,
    config: ConnectionConfig | None = None,
    device: torch.device | str = "cuda",
) -> None:
    """CPU and ``device`` runs agree (float64). Raises ``unittest.SkipTest`` without CUDA."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise unittest.SkipTest(f"{DEVICE_CONSISTENCY}: CUDA is not available")
    config = _resolve_config(spikes_pre, spikes_post, config)
    cpu = rule.run(spikes_pre, spikes_post, config=config, device="cpu")
    other = rule.run(spikes_pre, spikes_post, config=config, device=device)
    for name, value in other.terms.items():
        if value.device.type != torch.device(device).type:
            raise AssertionError(f"{DEVICE_CONSISTENCY}: {rule.name}: {name} came back on {value.device}, not {device}")
    _assert_close(
        DEVICE_CONSISTENCY, other, cpu, rtol=max(rule.rtol, 1e-9), atol=rule.atol,
        what=f"{rule.name} ({config.kind}): {device} differs from cpu",
    )  # fmt: skip


def check_updater_bounds(
    rule: RuleUnderTest,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    *,
    config: ConnectionConfig | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    bounding: BoundingKind = "hard",
    weight: Tensor | None = None,
) -> None:
    """After ``update()`` with a clamped ``bounding`` updater, weights lie in ``bounds``; masked ones are unchanged."""
    config = _resolve_config(spikes_pre, spikes_post, config)
    before, after, mask = rule.run_bounded(
        spikes_pre, spikes_post, config=config, bounds=bounds, bounding=bounding, weight=weight
    )
    low, high = bounds
    outside = ~((after >= low) & (after <= high))
    if mask is not None:
        outside &= mask
    if bool(outside.any()):
        index = tuple(int(i) for i in outside.nonzero()[0])
        raise AssertionError(
            f"{UPDATER_BOUNDS}: {rule.name} ({config.kind}, {bounding} bounding): weight{list(index)} is "
            f"{after[index].item():.10g} after update(), outside [{low}, {high}] (was {before[index].item():.10g})"
        )
    if mask is not None:
        changed = ~mask & (after != before)
        if bool(changed.any()):
            index = tuple(int(i) for i in changed.nonzero()[0])
            raise AssertionError(
                f"{UPDATER_BOUNDS}: {rule.name} ({config.kind}): masked weight{list(index)} changed from "
                f"{before[index].item():.10g} to {after[index].item():.10g}"
            )
