"""Rules under test: a trainer (:class:`TrainerRule`) or a function (:class:`FunctionalRule`) run on
chosen spike windows, its update read as named terms (:class:`RuleOutput`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import torch
from torch import Tensor, nn

from plastic.functional.bounding import Bounding
from plastic.functional.validation import check_spikes
from plastic.neural.cell import Cell
from plastic.neural.updater import Updater
from plastic.testing.invariants.properties import PROPERTIES, TERM_NAMES
from plastic.testing.strategies import (
    CONNECTION_KINDS,
    ConnectionConfig,
    ScriptedNeuron,
    seeded_weight_init,
)

if TYPE_CHECKING:  # the trainers are typed only: plastic.testing needs no plastic.learn at runtime
    from plastic.learn.base import IndependentCellTrainer

#: the kinds of :class:`~plastic.functional.bounding.Bounding` (its ``kind``)
BoundingKind = Literal["none", "hard", "soft", "power", "scaled"]


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
        dtype_rtol, dtype_atol: the same for the float32 run against the
            float64 one (``dtype consistency``). A rule that returns a signed
            net of terms that may cancel needs a larger ``dtype_atol``: its
            float32 error follows the size of the cancelling sums, not of the
            net (all-to-all STDP on trains that spike at every step: a net of
            1.8e-15 in float64, -1.9e-6 in float32).
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
        dtype_rtol: float = 1e-4,
        dtype_atol: float = 1e-6,
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
        self.dtype_rtol = float(dtype_rtol)
        self.dtype_atol = float(dtype_atol)
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
        bounding: BoundingKind = "hard",
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
        factory: Callable[..., IndependentCellTrainer],
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
        super().__init__(name=name or str(getattr(factory, "__name__", "trainer")), **options)
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
    ) -> tuple[IndependentCellTrainer, Cell]:
        """A fresh trainer with a fresh registered cell (window mode, scripted neurons)."""
        overrides = {} if batch_reduction is None else {"batch_reduction": batch_reduction}
        trainer = self.factory(**overrides)
        common: dict[str, Any] = {
            "dt": self.dt,
            "batch_size": batch_size,
            "step_mode": "window",
            "dtype": dtype,
            "device": device,
        }
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
        bounding: BoundingKind = "hard",
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
        trainer.update()
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
            name=name or str(getattr(function, "__name__", "rule")), kinds=kinds, reductions=reductions, **options
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
        bounding: BoundingKind = "hard",
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
