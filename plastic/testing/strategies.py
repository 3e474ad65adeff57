"""Hypothesis strategies for spiking networks and learning rules.

Everything a property test of a plasticity rule needs to draw: neuron shapes,
batch sizes, window lengths and ``dt``; spike windows ``[T, B, *shape]``
(bool, time first) with a drawn or given firing probability and the edge
cases that break rules (silent, saturated, a single spike, a simultaneous
pre/post pair); connection configurations (dense, direct, lateral, conv1d and
conv2d with stride, padding and padding modes, dilation and groups);
spike-time kernels from a family with drawn parameters; and cells ready to
run, with updaters.

Tensors are built from a drawn seed (``torch.Generator().manual_seed(seed)``),
not drawn element by element, so shrinking stays cheap: hypothesis shrinks
the seed, the sizes and the pattern, never thousands of booleans.

Example::

    from hypothesis import given
    from plastic.testing import strategies as pst

    @given(pst.spike_pairs(in_shape=(3,), out_shape=(2,)))
    def test_my_rule(pair):
        spikes_pre, spikes_post = pair          # [T, B, 3] and [T, B, 2], bool
        ...

:class:`ScriptedNeuron` (:mod:`plastic.testing.scripted`) is a neuron that fires what it is told: a cell built
with it runs a connection forward normally while its postsynaptic spikes are
chosen by the test, which is how :mod:`plastic.testing.invariants` drives
trainers with drawn pre and post trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import attrs
import torch
from hypothesis import strategies as st
from torch import Tensor, nn

from plastic.functional.kernels import exp_post, exp_pre, gaussian, mexican_hat, rectangular
from plastic.functional.receptive import ConvGeometry, conv_output_shape
from plastic.functional.traces import spike_values  # noqa: F401 (importable from here before scripted.py)
from plastic.functional.validation import check_choice, check_positive, check_spikes, check_tensor  # noqa: F401 (likewise)
from plastic.neural.buffers import rebind_buffer, set_plain  # noqa: F401 (likewise)
from plastic.neural.cell import Cell
from plastic.neural.connections import Connection, Conv1d, Conv2d, LinearDense, LinearDirect, LinearLateral
from plastic.neural.neurons import IF, LIF
from plastic.testing.scripted import ScriptedNeuron, seeded_weight_init

__all__ = [
    "CONNECTION_KINDS",
    "KERNEL_FAMILIES",
    "PAIR_PATTERNS",
    "SPIKE_PATTERNS",
    "ConnectionConfig",
    "ScriptedNeuron",
    "batch_sizes",
    "cells",
    "connection_configs",
    "dts",
    "kernels",
    "make_spikes",
    "neuron_shapes",
    "rates",
    "seeded_weight_init",
    "seeds",
    "spike_pairs",
    "spike_trains",
    "time_steps",
]

#: connection kinds :func:`connection_configs` can draw
CONNECTION_KINDS = ("dense", "direct", "lateral", "conv1d", "conv2d")
#: kernel families :func:`kernels` can draw
KERNEL_FAMILIES = ("exp", "mexican_hat", "rectangular", "gaussian")
#: patterns of one spike train (besides ``"random"``)
SPIKE_PATTERNS = ("silent", "saturated", "single")
#: patterns of a pre/post pair of trains (besides ``"random"``)
PAIR_PATTERNS = ("silent", "saturated", "pre_only", "post_only", "causal", "anticausal", "simultaneous")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

SizeArgument = int | st.SearchStrategy[int] | None
ShapeArgument = Sequence[int] | st.SearchStrategy[tuple[int, ...]] | None


# --------------------------------------------------------------------------- scalars


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``torch.Generator().manual_seed`` (shrink towards 0)."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def neuron_shapes(min_dims: int = 1, max_dims: int = 2, max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Neuron group shapes (without the batch): tuples of ``min_dims..max_dims`` sizes in ``1..max_side``."""
    return st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def batch_sizes(min_value: int = 1, max_value: int = 4) -> st.SearchStrategy[int]:
    """Batch sizes ``B``."""
    return st.integers(min_value, max_value)


def time_steps(min_value: int = 1, max_value: int = 10) -> st.SearchStrategy[int]:
    """Window lengths ``T`` (steps)."""
    return st.integers(min_value, max_value)


def dts(min_value: float = 0.05, max_value: float = 2.0) -> st.SearchStrategy[float]:
    """Step lengths ``dt > 0`` (ms by convention): common values first, then any in range."""
    common = [value for value in (1.0, 0.5, 0.1) if min_value <= value <= max_value]
    floats = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(common), floats) if common else floats


def rates(min_value: float = 0.05, max_value: float = 0.6) -> st.SearchStrategy[float]:
    """Per-step spike probabilities."""
    return st.floats(min_value, max_value, allow_nan=False)


def _draw_size(draw: st.DrawFn, value: SizeArgument, default: st.SearchStrategy[int]) -> int:
    if value is None:
        return int(draw(default))
    if isinstance(value, st.SearchStrategy):
        return int(draw(value))
    return int(value)


def _draw_shape(draw: st.DrawFn, value: ShapeArgument) -> tuple[int, ...]:
    if value is None:
        return tuple(draw(neuron_shapes()))
    if isinstance(value, st.SearchStrategy):
        return tuple(draw(value))
    return tuple(int(side) for side in value)


# --------------------------------------------------------------------------- spikes


def make_spikes(
    pattern: str, steps: int, batch_size: int, shape: Sequence[int], *, rate: float = 0.3, seed: int = 0
) -> Tensor:
    """A bool window ``[steps, batch_size, *shape]`` following ``pattern``.

    ``"random"``: Bernoulli(``rate``) per element; ``"silent"``: no spike;
    ``"saturated"``: a spike everywhere; ``"single"``: one spike at a position
    chosen from ``seed``. Reproducible: the same arguments give the same window.
    """
    check_choice(pattern, "pattern", ("random", *SPIKE_PATTERNS))
    size = (steps, batch_size, *shape)
    generator = torch.Generator().manual_seed(seed)
    if pattern == "random":
        return torch.rand(size, generator=generator) < rate
    if pattern == "silent":
        return torch.zeros(size, dtype=torch.bool)
    if pattern == "saturated":
        return torch.ones(size, dtype=torch.bool)
    spikes = torch.zeros(math.prod(size), dtype=torch.bool)
    spikes[int(torch.randint(spikes.numel(), (), generator=generator))] = True
    return spikes.reshape(size)


def _pattern(edge_cases: bool, patterns: Sequence[str]) -> st.SearchStrategy[str]:
    # half "random", half the edge cases: edge cases are cheap to hit, random trains do the work
    if not edge_cases:
        return st.just("random")
    return st.one_of(st.just("random"), st.sampled_from(tuple(patterns)))


@st.composite
def spike_trains(
    draw: st.DrawFn,
    shape: ShapeArgument = None,
    steps: SizeArgument = None,
    batch_size: SizeArgument = None,
    rate: float | None = None,
    edge_cases: bool = True,
) -> Tensor:
    """Bool spike windows ``[T, B, *shape]``.

    Args:
        shape: neuron shape, a strategy for one, or None (:func:`neuron_shapes`).
        steps: ``T``, a strategy, or None (:func:`time_steps`).
        batch_size: ``B``, a strategy, or None (:func:`batch_sizes`).
        rate: spike probability per step and neuron (None: drawn by :func:`rates`).
        edge_cases: also draw silent, saturated and single-spike windows.
    """
    shape = _draw_shape(draw, shape)
    steps = _draw_size(draw, steps, time_steps())
    batch = _draw_size(draw, batch_size, batch_sizes())
    pattern = draw(_pattern(edge_cases, SPIKE_PATTERNS), label="pattern")
    probability = draw(rates()) if rate is None else float(rate)
    seed = draw(seeds(), label="seed")
    return make_spikes(pattern, steps, batch, shape, rate=probability, seed=seed)


def _single_pair(
    steps: int, batch: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...], lag: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """One presynaptic spike and one postsynaptic spike ``lag`` steps later (negative: earlier)."""
    pre = torch.zeros((steps, batch, math.prod(in_shape)), dtype=torch.bool)
    post = torch.zeros((steps, batch, math.prod(out_shape)), dtype=torch.bool)
    span = steps - abs(lag)
    start = int(torch.randint(span, (), generator=generator))
    sample = int(torch.randint(batch, (), generator=generator))
    t_pre, t_post = (start, start + lag) if lag >= 0 else (start - lag, start)
    pre[t_pre, sample, int(torch.randint(pre.shape[-1], (), generator=generator))] = True
    post[t_post, sample, int(torch.randint(post.shape[-1], (), generator=generator))] = True
    return pre.reshape(steps, batch, *in_shape), post.reshape(steps, batch, *out_shape)


@st.composite
def spike_pairs(
    draw: st.DrawFn,
    in_shape: ShapeArgument = None,
    out_shape: ShapeArgument = None,
    steps: SizeArgument = None,
    batch_size: SizeArgument = None,
    rate: float | None = None,
    edge_cases: bool = True,
) -> tuple[Tensor, Tensor]:
    """Presynaptic and postsynaptic windows ``([T, B, *in_shape], [T, B, *out_shape])``, bool.

    Both trains share ``T`` and ``B``. Besides independent random trains, the
    edge cases (``edge_cases=True``) are: both silent, both saturated,
    presynaptic activity only, postsynaptic activity only, a single causal
    pair (pre then post), a single anti-causal pair (post then pre) and a
    simultaneous pair (both in the same step and sample).
    """
    in_shape = _draw_shape(draw, in_shape)
    out_shape = _draw_shape(draw, out_shape)
    steps = _draw_size(draw, steps, time_steps())
    batch = _draw_size(draw, batch_size, batch_sizes())
    pattern = draw(_pattern(edge_cases, PAIR_PATTERNS), label="pattern")
    probability = draw(rates()) if rate is None else float(rate)
    seed = draw(seeds(), label="seed")
    generator = torch.Generator().manual_seed(seed)
    silent_pre = torch.zeros((steps, batch, *in_shape), dtype=torch.bool)
    silent_post = torch.zeros((steps, batch, *out_shape), dtype=torch.bool)

    def random(shape: tuple[int, ...]) -> Tensor:
        return torch.rand((steps, batch, *shape), generator=generator) < probability

    if pattern == "random":
        return random(in_shape), random(out_shape)
    if pattern == "silent":
        return silent_pre, silent_post
    if pattern == "saturated":
        return ~silent_pre, ~silent_post
    if pattern == "pre_only":
        return random(in_shape), silent_post
    if pattern == "post_only":
        return silent_pre, random(out_shape)
    if pattern == "simultaneous" or steps == 1:
        return _single_pair(steps, batch, in_shape, out_shape, 0, generator)
    lag = draw(st.integers(1, steps - 1), label="lag")
    return _single_pair(steps, batch, in_shape, out_shape, lag if pattern == "causal" else -lag, generator)


# --------------------------------------------------------------------------- connections


def _check_kind(kind: str) -> str:
    return str(check_choice(kind, "kind", CONNECTION_KINDS))


# typed converters (attrs gives the constructor the converter's argument type)
def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    return dict(options)


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(shape)


@attrs.frozen
class ConnectionConfig:
    """A connection to build: its kind, its constructor arguments and its shapes.

    ``kind`` is one of :data:`CONNECTION_KINDS`; ``options`` the keyword
    arguments of the connection's constructor that define its geometry
    (features, channels, kernel size, stride, padding, dilation, groups,
    padding mode, input size); ``in_shape``/``out_shape`` its shapes without
    the batch. :meth:`build` constructs it, :meth:`geometry` gives the
    :class:`~plastic.functional.receptive.ConvGeometry` of a convolution
    (``None`` for dense) for functional rules.
    """

    kind: str = attrs.field(converter=_check_kind)
    options: Mapping[str, Any] = attrs.field(converter=_options)
    in_shape: tuple[int, ...] = attrs.field(converter=_shape)
    out_shape: tuple[int, ...] = attrs.field(converter=_shape)

    @classmethod
    def dense(cls, in_features: int, out_features: int) -> ConnectionConfig:
        """All-to-all ``in_features -> out_features``."""
        options = {"in_features": in_features, "out_features": out_features}
        return cls("dense", options, (in_features,), (out_features,))

    @classmethod
    def direct(cls, features: int) -> ConnectionConfig:
        """One-to-one over ``features`` neurons."""
        return cls("direct", {"features": features}, (features,), (features,))

    @classmethod
    def lateral(cls, features: int) -> ConnectionConfig:
        """All-to-all within one group, without self-connections."""
        return cls("lateral", {"features": features}, (features,), (features,))

    @classmethod
    def conv(
        cls,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        *,
        in_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> ConnectionConfig:
        """A ``dims``-d convolution (1 or 2) over inputs of spatial size ``in_size``."""
        geometry = ConvGeometry.create(
            dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode
        )
        spatial = (in_size,) * dims if isinstance(in_size, int) else tuple(in_size)
        out_spatial = conv_output_shape(geometry, spatial)
        options = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "kernel_size": kernel_size,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "padding_mode": padding_mode,
            "in_size": spatial[0] if dims == 1 else spatial,
        }
        return cls(f"conv{dims}d", options, (in_channels, *spatial), (out_channels, *out_spatial))

    def geometry(self) -> ConvGeometry | None:
        """The convolution's geometry; ``None`` for dense. Direct and lateral have none (ValueError)."""
        if self.kind == "dense":
            return None
        if self.kind in ("direct", "lateral"):
            raise ValueError(f"kind: a {self.kind} connection has no dense or conv geometry")
        o = self.options
        dims = 1 if self.kind == "conv1d" else 2
        return ConvGeometry.create(
            dims, o["in_channels"], o["out_channels"], o["kernel_size"], o["stride"], o["padding"],
            o["dilation"], o["groups"], o["padding_mode"],
        )  # fmt: skip

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the connection's weight."""
        if self.kind == "dense":
            return (self.out_shape[0], self.in_shape[0])
        if self.kind == "direct":
            return (self.in_shape[0],)
        if self.kind == "lateral":
            return (self.in_shape[0], self.in_shape[0])
        geometry = self.geometry()
        assert geometry is not None
        return tuple(geometry.weight_shape)

    def build(self, **kwargs: Any) -> Connection:
        """Construct the connection; ``kwargs`` (``dt``, ``batch_size``, ``step_mode``,
        ``dtype``, ``device``, ``weight_init``, ``delay``...) go to its constructor."""
        constructor: type[Connection] = {
            "dense": LinearDense,
            "direct": LinearDirect,
            "lateral": LinearLateral,
            "conv1d": Conv1d,
            "conv2d": Conv2d,
        }[self.kind]
        return constructor(**self.options, **kwargs)


@st.composite
def _conv_configs(
    draw: st.DrawFn, dims: int, max_channels: int, max_kernel: int, max_stride: int, max_dilation: int
) -> ConnectionConfig:
    groups = draw(st.integers(1, 2), label="groups")
    in_channels = groups * draw(st.integers(1, max(1, max_channels // groups)))
    out_channels = groups * draw(st.integers(1, max(1, max_channels // groups)))
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, max_dilation)) for _ in range(dims))
    padding_mode = draw(st.sampled_from(PADDING_MODES), label="padding_mode")
    choices: list[Any] = [st.tuples(*[st.integers(0, 2)] * dims), st.just("valid")]
    if all(s == 1 for s in stride):
        choices.append(st.just("same"))
    padding = draw(st.one_of(*choices), label="padding")
    geometry = ConvGeometry.create(
        dims, in_channels, out_channels, kernel, stride, padding, dilation, groups, padding_mode
    )
    spatial = []
    for (left, right), k, d in zip(geometry.padding_pairs, kernel, dilation, strict=True):
        # the dilated kernel must fit the padded input; reflect/circular padding must fit the input
        smallest = max(1, d * (k - 1) + 1 - left - right)
        if padding_mode == "reflect":
            smallest = max(smallest, max(left, right) + 1)
        elif padding_mode == "circular":
            smallest = max(smallest, max(left, right))
        spatial.append(draw(st.integers(smallest, smallest + 2)))
    return ConnectionConfig.conv(
        dims, in_channels, out_channels, kernel if dims == 2 else kernel[0],
        in_size=tuple(spatial), stride=stride if dims == 2 else stride[0],
        padding=padding if isinstance(padding, str) or dims == 2 else padding[0],
        dilation=dilation if dims == 2 else dilation[0], groups=groups, padding_mode=padding_mode,
    )  # fmt: skip


@st.composite
def connection_configs(
    draw: st.DrawFn,
    kinds: Sequence[str] = CONNECTION_KINDS,
    *,
    max_features: int = 4,
    max_channels: int = 4,
    max_kernel: int = 3,
    max_stride: int = 2,
    max_dilation: int = 2,
) -> ConnectionConfig:
    """:class:`ConnectionConfig` of one of ``kinds``, with small drawn sizes.

    Convolutions draw groups (1 or 2), channels (multiples of groups up to
    ``max_channels``), per-dimension kernel sizes, strides and dilations,
    padding (explicit amounts, ``"valid"``, or ``"same"`` when the stride is
    1), the padding mode (zeros, reflect, replicate, circular) and an input
    size the dilated kernel fits.
    """
    for kind in kinds:
        _check_kind(kind)
    kind = draw(st.sampled_from(tuple(kinds)), label="kind")
    features = st.integers(1, max_features)
    if kind == "dense":
        return ConnectionConfig.dense(draw(features), draw(features))
    if kind == "direct":
        return ConnectionConfig.direct(draw(features))
    if kind == "lateral":
        return ConnectionConfig.lateral(draw(st.integers(min(2, max_features), max_features)))
    dims = 1 if kind == "conv1d" else 2
    return draw(_conv_configs(dims, max_channels, max_kernel, max_stride, max_dilation))


# --------------------------------------------------------------------------- kernels


@st.composite
def kernels(
    draw: st.DrawFn, families: Sequence[str] = KERNEL_FAMILIES, *, max_time: float = 40.0
) -> tuple[Callable[..., Tensor], dict[str, float]]:
    """A spike-time kernel and drawn keyword arguments: ``(kernel, kwargs)``.

    Families (:mod:`plastic.functional.kernels`): ``"exp"`` (:func:`exp_post`
    or :func:`exp_pre`, either sign), ``"mexican_hat"``, ``"rectangular"``
    (a window ``[start, stop)``), ``"gaussian"``. Amplitudes in ``+-[0.1, 2]``,
    time constants and widths in ``[0.5, max_time]`` (unit of ``dt``).
    """
    for family in families:
        check_choice(family, "families", KERNEL_FAMILIES)
    family = draw(st.sampled_from(tuple(families)), label="family")
    magnitude = draw(st.floats(0.1, 2.0, allow_nan=False))
    amplitude = magnitude if draw(st.booleans()) else -magnitude
    time = st.floats(0.5, max_time, allow_nan=False)
    if family == "exp":
        if draw(st.booleans(), label="causal"):
            return exp_post, {"eta_post": amplitude, "tau_post": draw(time)}
        return exp_pre, {"eta_pre": amplitude, "tau_pre": draw(time)}
    if family == "mexican_hat":
        return mexican_hat, {"amplitude": amplitude, "sigma": draw(time)}
    if family == "rectangular":
        start = draw(st.floats(-max_time, max_time - 0.5, allow_nan=False))
        width = draw(st.floats(0.5, max_time, allow_nan=False))
        return rectangular, {"amplitude": amplitude, "start": start, "stop": start + width}
    center = draw(st.floats(-max_time / 2, max_time / 2, allow_nan=False))
    return gaussian, {"amplitude": amplitude, "center": center, "sigma": draw(time)}


# --------------------------------------------------------------------------- cells


class _ModuleOptions(TypedDict):
    """The keyword arguments a drawn cell's connection and neurons share."""

    dt: float
    batch_size: int
    step_mode: str
    dtype: torch.dtype | None
    device: torch.device | str | None


@st.composite
def cells(
    draw: st.DrawFn,
    kinds: Sequence[str] = CONNECTION_KINDS,
    *,
    neuron: str = "lif",
    batch_size: SizeArgument = None,
    dt: float | st.SearchStrategy[float] | None = None,
    step_mode: str = "window",
    updater: Mapping[str, Any] | None = None,
    connection: Mapping[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Cell:
    """Cells ready to run: a drawn connection, neurons, and an updater.

    Args:
        kinds: connection kinds to draw from (:func:`connection_configs`).
        neuron: ``"lif"`` (drawn ``tau`` and threshold), ``"if"`` or
            ``"scripted"`` (:class:`ScriptedNeuron`).
        batch_size, dt: values, strategies, or None (drawn).
        step_mode: ``"window"`` (default) or ``"single"``.
        updater: keyword arguments of ``cell.make_updater`` (default: none).
        connection: extra keyword arguments of the connection (e.g. ``delay``).
        dtype, device: where the cell lives.

    The weight is drawn from a seed, uniform in ``[0, 1)``.
    """
    check_choice(neuron, "neuron", ("lif", "if", "scripted"))
    config = draw(connection_configs(kinds), label="connection")
    batch = _draw_size(draw, batch_size, batch_sizes())
    if dt is None:
        step = draw(dts())
    elif isinstance(dt, st.SearchStrategy):
        step = draw(dt)
    else:
        step = float(dt)
    common = _ModuleOptions(dt=step, batch_size=batch, step_mode=step_mode, dtype=dtype, device=device)
    weight_init = seeded_weight_init(draw(seeds(), label="weight_seed"))
    built = config.build(weight_init=weight_init, **common, **dict(connection or {}))
    if neuron == "scripted":
        group: nn.Module = ScriptedNeuron(config.out_shape, **common)
    elif neuron == "if":
        group = IF(config.out_shape, v_threshold=draw(st.floats(0.1, 2.0)), **common)
    else:
        group = LIF(
            config.out_shape,
            tau=step * draw(st.floats(1.0, 20.0)),  # tau >= dt: at least one step
            v_threshold=draw(st.floats(0.1, 2.0)),
            **common,
        )
    cell = Cell(built, group)
    cell.make_updater(**dict(updater or {}))
    return cell
