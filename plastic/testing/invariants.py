"""Invariants every plasticity rule should satisfy, as reusable checks.

A rule under test is wrapped in a :class:`RuleUnderTest` adaptor that runs it
on given pre and post spike windows and returns its update as named terms
(``potentiation`` and ``depression``, or ``net``):

* :class:`TrainerRule` wraps a trainer factory ``lambda **overrides:
  Trainer(...)`` (a :class:`~plastic.learn.base.IndependentCellTrainer`). It
  builds a cell around a connection whose postsynaptic neurons are a
  :class:`~plastic.testing.strategies.ScriptedNeuron`, so the test chooses
  both trains, runs the cell in window mode, calls the trainer, and reads the
  updater's pending potentiation and depression.
* :class:`FunctionalRule` wraps a function
  ``rule(spikes_pre [T, B, *in], spikes_post [T, B, *out], **kwargs)``
  returning ``(potentiation, depression)`` or a signed ``dw``; with
  ``stateful=True`` it is called with ``state=`` (None at the start) and
  returns ``(result, state)``, the state it carries to the next window.

Each check raises ``AssertionError`` whose message starts with the
property's name (``"batch additivity: ..."``). The properties:

=========================  ===================================================
``no spikes``              silent trains give no update
``pre-only activity``      presynaptic spikes alone give only the terms the
                           rule declares (``terms_pre_only``; none by default)
``post-only activity``     likewise for postsynaptic spikes (``terms_post_only``)
``batch additivity``       with ``sum`` reduction the update of a batch is the
                           sum of the updates of its samples; ``mean``: the mean
``window additivity``      calling the rule after every step (state carried)
                           equals one call on the whole window
``chained windows``        two or more consecutive windows equal one window
``time-shift invariance``  shifting both trains later (both staying in the
                           window, ``latency`` silent steps after them) leaves
                           the update unchanged
``causality sign``         one pre-before-post pair potentiates (net > 0) the
                           synapse, the reverse order depresses it (net < 0)
``dense/conv consistency`` a 1x1 convolution on 1x1 inputs equals the dense rule
``dtype consistency``      float32 and float64 agree within tolerance
``device consistency``     CPU and CUDA agree (skipped without CUDA)
``updater bounds``         after ``update()`` with a clamped, hard-bounded
                           updater every weight lies within the bounds, and
                           masked synapses are unchanged
=========================  ===================================================

Each property has a check on concrete inputs (``check_batch_additivity(rule,
spikes_pre, spikes_post, ...)``) for use in one's own tests, and
:func:`check_rule` runs the battery (or a subset) with hypothesis, drawing the
inputs from :mod:`plastic.testing.strategies` under the active hypothesis
profile, and reports every failure together. A rule declares the properties
that do not apply to it, with a reason, in ``skip``.

Example::

    from plastic.learn.kernel_stdp import KernelSTDP
    from plastic.testing.invariants import TrainerRule, check_rule

    rule = TrainerRule(lambda **overrides: KernelSTDP(**overrides), name="KernelSTDP",
                       skip={"window additivity": "event-time form", "chained windows": "event-time form"})
    check_rule(rule)
"""

from __future__ import annotations

import itertools
import unittest
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from plastic.functional.bounding import Bounding
from plastic.functional.validation import check_spikes
from plastic.neural.cell import Cell
from plastic.neural.updater import Updater
from plastic.testing.strategies import (
    CONNECTION_KINDS,
    ConnectionConfig,
    ScriptedNeuron,
    batch_sizes,
    connection_configs,
    seeded_weight_init,
    seeds,
    spike_pairs,
    time_steps,
)

__all__ = [
    "BATCH_ADDITIVITY",
    "CAUSALITY",
    "CHAINED_WINDOWS",
    "CONV_CONSISTENCY",
    "DEVICE_CONSISTENCY",
    "DTYPE_CONSISTENCY",
    "NO_SPIKES",
    "POST_ONLY",
    "PRE_ONLY",
    "PROPERTIES",
    "TIME_SHIFT",
    "UPDATER_BOUNDS",
    "WINDOW_ADDITIVITY",
    "CheckReport",
    "FunctionalRule",
    "RuleOutput",
    "RuleUnderTest",
    "TrainerRule",
    "check_batch_additivity",
    "check_causality",
    "check_chained_windows",
    "check_conv_consistency",
    "check_device_consistency",
    "check_dtype_consistency",
    "check_no_spikes",
    "check_post_only",
    "check_pre_only",
    "check_rule",
    "check_time_shift",
    "check_updater_bounds",
    "check_window_additivity",
    "default_weight",
]

NO_SPIKES = "no spikes"
PRE_ONLY = "pre-only activity"
POST_ONLY = "post-only activity"
BATCH_ADDITIVITY = "batch additivity"
WINDOW_ADDITIVITY = "window additivity"
CHAINED_WINDOWS = "chained windows"
TIME_SHIFT = "time-shift invariance"
CAUSALITY = "causality sign"
CONV_CONSISTENCY = "dense/conv consistency"
DTYPE_CONSISTENCY = "dtype consistency"
DEVICE_CONSISTENCY = "device consistency"
UPDATER_BOUNDS = "updater bounds"

#: every property, in the order :func:`check_rule` runs them
PROPERTIES = (
    NO_SPIKES,
    PRE_ONLY,
    POST_ONLY,
    BATCH_ADDITIVITY,
    WINDOW_ADDITIVITY,
    CHAINED_WINDOWS,
    TIME_SHIFT,
    CAUSALITY,
    CONV_CONSISTENCY,
    DTYPE_CONSISTENCY,
    DEVICE_CONSISTENCY,
    UPDATER_BOUNDS,
)

TERM_NAMES = ("potentiation", "depression", "net")


# --------------------------------------------------------------------------- outputs


@attrs.frozen
class RuleOutput:
    """A rule's update as named terms of the weight's shape.

    ``terms`` holds ``potentiation`` and ``depression`` (non-negative
    magnitudes) or ``net`` (signed change).
    """

    terms: Mapping[str, Tensor]

    @property
    def net(self) -> Tensor:
        """The signed change: ``net``, or ``potentiation - depression``."""
        if "net" in self.terms:
            return self.terms["net"]
        return self.terms["potentiation"] - self.terms["depression"]

    def split(self) -> tuple[Tensor, Tensor]:
        """``(potentiation, depression)`` magnitudes (a net change split by sign)."""
        if "net" in self.terms:
            net = self.terms["net"]
            return net.clamp(min=0), (-net).clamp(min=0)
        return self.terms["potentiation"], self.terms["depression"]

    def map(self, function: Callable[[Tensor], Tensor]) -> RuleOutput:
        return RuleOutput({name: function(value) for name, value in self.terms.items()})

    def __add__(self, other: RuleOutput) -> RuleOutput:
        return RuleOutput({name: value + other.terms[name] for name, value in self.terms.items()})


def _as_output(result: object, rule_name: str) -> RuleOutput:
    if isinstance(result, RuleOutput):
        return result
    if isinstance(result, Tensor):
        return RuleOutput({"net": result.detach()})
    if isinstance(result, tuple) and len(result) == 2 and all(isinstance(item, Tensor) for item in result):
        return RuleOutput({"potentiation": result[0].detach(), "depression": result[1].detach()})
    raise TypeError(
        f"rule: {rule_name} returned {type(result).__name__}; expected a tensor dw or a pair "
        "(potentiation, depression) (stateful rules: (that, state))"
    )


# --------------------------------------------------------------------------- adaptors


def _check_skip(skip: Mapping[str, str] | None) -> dict[str, str]:
    result = dict(skip or {})
    unknown = sorted(set(result) - set(PROPERTIES))
    if unknown:
        raise ValueError(f"skip: unknown properties {unknown}; expected some of {list(PROPERTIES)}")
    return result


def _check_terms(terms: Sequence[str], name: str) -> tuple[str, ...]:
    result = tuple(terms)
    unknown = sorted(set(result) - set(TERM_NAMES))
    if unknown:
        raise ValueError(f"{name}: unknown terms {unknown}; expected some of {list(TERM_NAMES)}")
    return result


class RuleUnderTest:
    """What the checks need from a rule: run it on windows, declare what applies.

    Args:
        name: shown in failure messages.
        kinds: connection kinds the rule supports (drawn by :func:`check_rule`).
        reductions: batch reductions to check (``"sum"``, ``"mean"``); passed
            to the rule as ``batch_reduction``. Empty: the rule takes none
            and sums over the batch.
        skip: ``{property: reason}`` for properties that do not apply.
        terms_pre_only, terms_post_only: terms (``"potentiation"``,
            ``"depression"``, ``"net"``) that presynaptic-only (postsynaptic-only)
            activity may produce; every other term must stay zero.
        latency: silent steps after the last spike the rule needs before its
            update is complete (MSTDP applies the eligibility of step ``t`` with
            the reward of ``t + 1``: 1).
        rtol, atol: tolerance of float64 comparisons: entries may differ by
            ``atol + rtol * (largest magnitude compared)``.
        dt: step length the rule is run with.
        weight_init: ``config -> weight`` (float64, the weight's shape), the
            weight the rule sees unless a check gives one (default:
            :func:`default_weight`, seeded uniform in ``[0, 1)``).
    """

    def __init__(
        self,
        *,
        name: str,
        kinds: Sequence[str] = CONNECTION_KINDS,
        reductions: Sequence[str] = ("sum", "mean"),
        skip: Mapping[str, str] | None = None,
        terms_pre_only: Sequence[str] = (),
        terms_post_only: Sequence[str] = (),
        latency: int = 0,
        rtol: float = 1e-7,
        atol: float = 1e-10,
        dt: float = 1.0,
        weight_init: Callable[[ConnectionConfig], Tensor] | None = None,
    ) -> None:
        for kind in kinds:
            if kind not in CONNECTION_KINDS:
                raise ValueError(f"kinds: unknown connection kind {kind!r}; expected some of {list(CONNECTION_KINDS)}")
        if not kinds:
            raise ValueError("kinds: expected at least one connection kind")
        for reduction in reductions:
            if reduction not in ("sum", "mean"):
                raise ValueError(f"reductions: expected 'sum' and/or 'mean', got {reduction!r}")
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValueError(f"latency: expected an int >= 0, got {latency!r}")
        self.name = name
        self.kinds = tuple(kinds)
        self.reductions = tuple(reductions)
        self.skip = _check_skip(skip)
        self.terms_pre_only = _check_terms(terms_pre_only, "terms_pre_only")
        self.terms_post_only = _check_terms(terms_post_only, "terms_post_only")
        self.latency = latency
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.dt = float(dt)
        self.weight_init = weight_init

    def initial_weight(self, config: ConnectionConfig) -> Tensor:
        """The weight the rule is run with on ``config`` unless a check gives one."""
        return default_weight(config) if self.weight_init is None else self.weight_init(config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def run(
        self,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        *,
        config: ConnectionConfig | None = None,
        chunks: Sequence[int] | None = None,
        batch_reduction: str | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        weight: Tensor | None = None,
    ) -> RuleOutput:
        """Run the rule on ``spikes_pre`` ``[T, B, *in]`` and ``spikes_post`` ``[T, B, *out]``.

        ``config``: the connection (None: dense from the spikes' shapes);
        ``chunks``: window lengths summing to ``T``, the rule being called
        after each with its state carried (None: one call); ``weight``: the
        weight the rule sees (None: a fixed seeded draw in ``[0, 1)``).
        """
        raise NotImplementedError

    def run_bounded(
        self,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        *,
        config: ConnectionConfig,
        bounds: tuple[float, float],
        bounding: str = "hard",
        weight: Tensor | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run, then apply through an updater clamped to ``bounds`` with ``bounding``.

        Returns ``(weight_before, weight_after, mask)`` (``mask``: synapses
        that may change, or None for all).
        """
        raise NotImplementedError


def _default_config(spikes_pre: Tensor, spikes_post: Tensor) -> ConnectionConfig:
    if spikes_pre.ndim != 3 or spikes_post.ndim != 3:
        raise ValueError(
            "config: needed for spikes that are not [T, B, N] (got "
            f"{tuple(spikes_pre.shape)} and {tuple(spikes_post.shape)})"
        )
    return ConnectionConfig.dense(spikes_pre.shape[2], spikes_post.shape[2])


def _check_chunks(chunks: Sequence[int] | None, steps: int) -> list[int]:
    if chunks is None:
        return [steps]
    result = [int(chunk) for chunk in chunks]
    if any(chunk < 1 for chunk in result) or sum(result) != steps:
        raise ValueError(f"chunks: expected window lengths >= 1 summing to {steps}, got {list(chunks)}")
    return result


def _check_windows(spikes_pre: Tensor, spikes_post: Tensor, config: ConnectionConfig) -> tuple[Tensor, Tensor]:
    pre = check_spikes(spikes_pre, "spikes_pre", min_ndim=3)
    post = check_spikes(spikes_post, "spikes_post", min_ndim=3)
    if tuple(pre.shape[2:]) != config.in_shape:
        raise ValueError(f"spikes_pre: expected [T, B, *{config.in_shape}], got {tuple(pre.shape)}")
    if tuple(post.shape[2:]) != config.out_shape or post.shape[:2] != pre.shape[:2]:
        raise ValueError(
            f"spikes_post: expected [{pre.shape[0]}, {pre.shape[1]}, *{config.out_shape}], got {tuple(post.shape)}"
        )
    return pre, post


def default_weight(config: ConnectionConfig) -> Tensor:
    """The weight rules are run with unless told otherwise: seeded, uniform in ``[0, 1)``, float64."""
    weight = torch.empty(config.weight_shape, dtype=torch.float64)
    seeded_weight_init(12345)(weight)
    return weight


class TrainerRule(RuleUnderTest):
    """A trainer, built by ``factory(**overrides)``, run on a cell with scripted postsynaptic spikes.

    Args:
        factory: ``lambda **overrides: Trainer(...)``; receives
            ``batch_reduction`` when a reduction is checked.
        parameter: the connection parameter the rule writes (``"weight"``).
        connection_kwargs: extra arguments of the connection (e.g.
            ``{"delay": 3.0}`` for delay-adjusted rules).
        updater_kwargs: arguments of ``cell.make_updater`` (default: none,
            i.e. additive and summed over calls).
        call_kwargs: arguments of each trainer call (e.g. ``{"reward": 1.0}``).
        compare: ``"terms"`` (default) compares the pending potentiation and
            depression separately; ``"net"`` compares only their difference,
            for trainers that write a net change split by sign (the split then
            depends on how samples and calls are grouped, the applied additive
            update does not).
        Others: see :class:`RuleUnderTest`.
    """

    def __init__(
        self,
        factory: Callable[..., nn.Module],
        *,
        name: str | None = None,
        parameter: str = "weight",
        connection_kwargs: Mapping[str, Any] | None = None,
        updater_kwargs: Mapping[str, Any] | None = None,
        call_kwargs: Mapping[str, Any] | None = None,
        compare: str = "terms",
        **options: Any,
    ) -> None:
        if compare not in ("terms", "net"):
            raise ValueError(f"compare: expected 'terms' or 'net', got {compare!r}")
        if not callable(factory):
            raise TypeError(f"factory: expected a callable(**overrides) -> trainer, got {factory!r}")
        super().__init__(name=name or getattr(factory, "__name__", "trainer"), **options)
        self.factory = factory
        self.parameter = parameter
        self.connection_kwargs = dict(connection_kwargs or {})
        self.updater_kwargs = dict(updater_kwargs or {})
        self.call_kwargs = dict(call_kwargs or {})
        self.compare = compare

    def build(
        self,
        config: ConnectionConfig,
        batch_size: int,
        *,
        batch_reduction: str | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        weight: Tensor | None = None,
        updater_kwargs: Mapping[str, Any] | None = None,
    ) -> tuple[nn.Module, Cell]:
        """A fresh trainer with a fresh registered cell (window mode, scripted neurons)."""
        overrides = {} if batch_reduction is None else {"batch_reduction": batch_reduction}
        trainer = self.factory(**overrides)
        common = {"dt": self.dt, "batch_size": batch_size, "step_mode": "window", "dtype": dtype, "device": device}
        connection = config.build(**common, **self.connection_kwargs)
        values = self.initial_weight(config) if weight is None else weight
        with torch.no_grad():
            connection.weight.copy_(values.to(device=connection.weight.device, dtype=connection.weight.dtype))
            if connection.weight_mask is not None:
                connection.weight.mul_(connection.weight_mask)
        cell = Cell(connection, ScriptedNeuron(config.out_shape, **common))
        cell.make_updater(**(self.updater_kwargs if updater_kwargs is None else dict(updater_kwargs)))
        trainer.register_cell("cell", cell)
        trainer.to(device=device, dtype=dtype)
        return trainer, cell

    def _feed(
        self, trainer: nn.Module, cell: Cell, pre: Tensor, post: Tensor, chunks: list[int], dtype: torch.dtype
    ) -> None:
        neuron = cell.neuron
        assert isinstance(neuron, ScriptedNeuron)
        start = 0
        device = cell.connection.weight.device
        for chunk in chunks:
            neuron.script(post[start : start + chunk].to(device))
            cell(pre[start : start + chunk].to(device=device, dtype=dtype))
            trainer(**self.call_kwargs)
            start += chunk

    def run(
        self,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        *,
        config: ConnectionConfig | None = None,
        chunks: Sequence[int] | None = None,
        batch_reduction: str | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        weight: Tensor | None = None,
    ) -> RuleOutput:
        config = config or _default_config(spikes_pre, spikes_post)
        pre, post = _check_windows(spikes_pre, spikes_post, config)
        steps = _check_chunks(chunks, pre.shape[0])
        trainer, cell = self.build(
            config, pre.shape[1], batch_reduction=batch_reduction, dtype=dtype, device=device, weight=weight
        )
        self._feed(trainer, cell, pre, post, steps, dtype)
        assert cell.updater is not None
        potentiation, depression = (value.detach().clone() for value in cell.updater.pending(self.parameter))
        if self.compare == "net":
            return RuleOutput({"net": potentiation - depression})
        return RuleOutput({"potentiation": potentiation, "depression": depression})

    def run_bounded(
        self,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        *,
        config: ConnectionConfig,
        bounds: tuple[float, float],
        bounding: str = "hard",
        weight: Tensor | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        pre, post = _check_windows(spikes_pre, spikes_post, config)
        low, high = bounds
        updater_kwargs = {
            **self.updater_kwargs,
            "clamp": {self.parameter: (low, high)},
            "bounding": {self.parameter: Bounding(bounding, w_min=low, w_max=high)},
        }
        trainer, cell = self.build(config, pre.shape[1], dtype=dtype, weight=weight, updater_kwargs=updater_kwargs)
        parameter = getattr(cell.connection, self.parameter)
        before = parameter.detach().clone()
        self._feed(trainer, cell, pre, post, [pre.shape[0]], dtype)
        trainer.update()  # type: ignore[operator]
        mask = getattr(cell.connection, f"{self.parameter}_mask", None)
        return before, parameter.detach().clone(), None if mask is None else mask != 0


class _WeightHolder(nn.Module):
    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)


class FunctionalRule(RuleUnderTest):
    """A functional rule ``function(spikes_pre, spikes_post, **kwargs)``.

    The function gets float ``{0, 1}`` spikes of the dtype and device under
    test and returns the update in the weight's shape: a signed tensor
    ``dw``, or ``(potentiation, depression)``.

    Args:
        function: the rule.
        kwargs: fixed keyword arguments of every call.
        stateful: the rule carries state between windows: it is called with
            ``state=`` (None for a fresh start) and returns ``(result, state)``.
        view_keyword: the keyword receiving the view
            (:data:`plastic.functional.bilinear.View`): the
            :class:`~plastic.functional.receptive.ConvGeometry` of a
            convolution (nothing is passed for dense).
        reduction_keyword: the keyword receiving the batch reduction.
        Others: see :class:`RuleUnderTest` (``kinds`` defaults to dense and
            conv; ``reductions`` to ``("sum",)``).
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
        stateful: bool = False,
        view_keyword: str = "view",
        reduction_keyword: str = "batch_reduction",
        kinds: Sequence[str] = ("dense", "conv1d", "conv2d"),
        reductions: Sequence[str] = ("sum",),
        **options: Any,
    ) -> None:
        if not callable(function):
            raise TypeError(f"function: expected a callable rule, got {function!r}")
        bad = [kind for kind in kinds if kind in ("direct", "lateral")]
        if bad:
            raise ValueError(f"kinds: functional rules take dense or conv layouts, not {bad}")
        super().__init__(
            name=name or getattr(function, "__name__", "rule"), kinds=kinds, reductions=reductions, **options
        )
        self.function = function
        self.kwargs = dict(kwargs or {})
        self.stateful = bool(stateful)
        self.view_keyword = view_keyword
        self.reduction_keyword = reduction_keyword

    def run(
        self,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        *,
        config: ConnectionConfig | None = None,
        chunks: Sequence[int] | None = None,
        batch_reduction: str | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        weight: Tensor | None = None,
    ) -> RuleOutput:
        config = config or _default_config(spikes_pre, spikes_post)
        pre, post = _check_windows(spikes_pre, spikes_post, config)
        steps = _check_chunks(chunks, pre.shape[0])
        kwargs = dict(self.kwargs)
        geometry = config.geometry()
        if geometry is not None:
            kwargs[self.view_keyword] = geometry
        if batch_reduction is not None:
            kwargs[self.reduction_keyword] = batch_reduction
        pre = pre.to(device=device, dtype=dtype)
        post = post.to(device=device, dtype=dtype)
        state = None
        total: RuleOutput | None = None
        start = 0
        for chunk in steps:
            window = (pre[start : start + chunk], post[start : start + chunk])
            if self.stateful:
                returned = self.function(*window, state=state, **kwargs)
                if not isinstance(returned, tuple) or len(returned) != 2:
                    raise TypeError(f"rule: {self.name} is stateful and must return (result, state)")
                result, state = returned
            else:
                result = self.function(*window, **kwargs)
            output = _as_output(result, self.name)
            total = output if total is None else total + output
            start += chunk
        assert total is not None
        shape = config.weight_shape
        for term, value in total.terms.items():
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"rule: {self.name} returned {term} of shape {tuple(value.shape)}, expected the weight's {shape}"
                )
        return total

    def run_bounded(
        self,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        *,
        config: ConnectionConfig,
        bounds: tuple[float, float],
        bounding: str = "hard",
        weight: Tensor | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        output = self.run(spikes_pre, spikes_post, config=config, dtype=dtype, weight=weight)
        low, high = bounds
        holder = _WeightHolder((self.initial_weight(config) if weight is None else weight).to(dtype))
        updater = Updater(holder, ("weight",), clamp=(low, high), bounding=Bounding(bounding, w_min=low, w_max=high))
        potentiation, depression = output.split()
        updater.accumulate("weight", potentiation=potentiation, depression=depression)
        before = holder.weight.detach().clone()
        updater.apply()
        return before, holder.weight.detach().clone(), None


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
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """float32 and float64 runs agree within ``atol + rtol * max|value|``."""
    config = _resolve_config(spikes_pre, spikes_post, config)
    single = rule.run(spikes_pre, spikes_post, config=config, dtype=torch.float32)
    double = rule.run(spikes_pre, spikes_post, config=config, dtype=torch.float64)
    _assert_close(
        DTYPE_CONSISTENCY, single, double, rtol=rtol, atol=atol,
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
    bounding: str = "hard",
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
    bounding = data.draw(st.sampled_from(("hard", "soft")), label="bounding")
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
