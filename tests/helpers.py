"""Helpers shared by the test files: a scripted neuron, cell drivers, explicit references.

Everything here is written independently of the code under test: receptive
sites and unfolded inputs come from explicit loops over the geometry's numbers
(kernel, stride, dilation, padding), never from :mod:`plastic.functional.receptive`,
so a test's expected value stays an independent reference.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, Conv2d, LinearDense
from plastic.neural.neurons import LIF

F64 = torch.float64


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """The functional forms compute in the default dtype when no state is given yet."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


# --------------------------------------------------------------------------- cells


class ScriptedNeuron(nn.Module):
    """Emits the spikes put in ``script`` (``[B, *shape]`` or ``[T, B, *shape]``), whatever the input."""

    def __init__(self, shape, *, batch_size=1, dt=1.0, step_mode="single"):
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.dt, self.step_mode, self.batch_size = dt, step_mode, batch_size
        self.script = None
        self.spike = torch.zeros(batch_size, *self.shape, dtype=torch.bool)

    def reset(self):
        self.spike = torch.zeros(self.batch_size, *self.shape, dtype=torch.bool)

    def forward(self, x):
        self.spike = self.script.clone()
        return self.spike.to(x.dtype)


class ScriptedVoltageNeuron(nn.Module):
    """Emits the spikes and keeps the values put in ``script`` (``(spikes, values)``), whatever the
    input: the values as ``voltage_sequence``, which a voltage rule's monitors record."""

    store_voltage_sequence = True
    #: the attribute that keeps the scripted values
    recorded = "voltage_sequence"

    def __init__(self, shape, *, batch_size=1, dt=1.0, step_mode="single"):
        super().__init__()
        self.shape = tuple(shape)
        self.dt, self.step_mode, self.batch_size = dt, step_mode, batch_size
        self.voltage = torch.zeros(batch_size, *self.shape, dtype=F64)
        self.script = None
        self.spike = torch.zeros(batch_size, *self.shape, dtype=torch.bool)
        self.reset()

    def reset(self):
        setattr(self, self.recorded, None)

    def forward(self, x):
        spikes, values = self.script
        self.spike = spikes.clone()
        setattr(self, self.recorded, values.clone())
        return spikes.to(x.dtype)


class ScriptedProbabilityNeuron(ScriptedVoltageNeuron):
    """:class:`ScriptedVoltageNeuron` keeping its values as ``spike_probability`` (an escape-noise
    neuron's firing probability, which R-max records)."""

    recorded = "spike_probability"

    def reset(self):
        self.spike_probability = torch.zeros(self.batch_size, *self.shape, dtype=F64)


def _input(cell, pre):
    """Presynaptic spikes as values of the connection's dtype."""
    return pre.to(cell.connection.weight.dtype)


def run(cell, pre, post, mode="single"):
    """Drive ``cell`` with presynaptic ``pre`` [T, B, *in]; its scripted neuron emits ``post`` [T, B, *out]."""
    cell.step_mode = mode
    if mode == "window":
        cell.neuron.script = post
        cell(_input(cell, pre))
    else:
        for step in range(pre.shape[0]):
            cell.neuron.script = post[step]
            cell(_input(cell, pre[step]))


def feed_values(cell, pre, values, post=None, mode="window"):
    """Drive a cell whose neuron is a :class:`ScriptedVoltageNeuron` (or :class:`ScriptedProbabilityNeuron`)
    with presynaptic spikes ``pre`` and the postsynaptic ``values`` (voltage, probability) and spikes
    ``post`` (none by default), ``[T, B, ...]`` each."""
    post = torch.zeros(values.shape, dtype=torch.bool) if post is None else post
    cell.step_mode = mode
    if mode == "window":
        cell.neuron.script = (post, values)
        cell(_input(cell, pre))
    else:
        for t in range(pre.shape[0]):
            cell.neuron.script = (post[t], values[t])
            cell(_input(cell, pre[t]))


def make_cell(spec, batch, dt, *, n_in=3, n_out=2, weight_init=None, dtype=F64):
    """A cell (float64 unless ``dtype``) with a scripted neuron and a default updater:
    ``LinearDense(n_in, n_out)`` when ``spec`` is None, else a ``Conv1d``/``Conv2d`` from 2 input
    channels to 2 output channels per group (dilation 1) described by ``spec``: ``in_size``,
    ``groups``, ``kernel``, ``stride``, ``padding``, ``padding_mode``."""
    if spec is None:
        connection = LinearDense(n_in, n_out, batch_size=batch, dt=dt, dtype=dtype, weight_init=weight_init)
    else:
        dims = len(spec["in_size"])
        cls = Conv1d if dims == 1 else Conv2d
        connection = cls(
            2, 2 * spec["groups"], spec["kernel"], spec["stride"], spec["padding"], 1, spec["groups"],
            spec["padding_mode"], in_size=spec["in_size"][0] if dims == 1 else tuple(spec["in_size"]),
            batch_size=batch, dt=dt, dtype=dtype, weight_init=weight_init,
        )  # fmt: skip
    cell = Cell(connection, ScriptedNeuron(connection.out_shape, batch_size=batch, dt=dt))
    cell.make_updater()
    return cell


def make_lif_cell(n_in, n_out, batch, seed=0, dtype=F64):
    """A ``LinearDense(n_in, n_out)`` + LIF cell (tau 2, threshold 0.4: it fires on a few inputs) with
    weights uniform in [0, 1) from ``seed`` and a default updater (the trainers' dense cells)."""
    generator = torch.Generator().manual_seed(seed)
    connection = LinearDense(
        n_in,
        n_out,
        batch_size=batch,
        dtype=dtype,
        weight_init=lambda w: w.copy_(torch.rand(w.shape, generator=generator, dtype=w.dtype)),
    )
    cell = Cell(connection, LIF(n_out, tau=2.0, v_threshold=0.4, batch_size=batch, dtype=dtype))
    cell.make_updater()
    return cell


def make_voltage_cell(spec, batch, dt, *, dtype=F64, neuron=ScriptedVoltageNeuron):
    """:func:`make_cell` with a :class:`ScriptedVoltageNeuron` (or another ``neuron`` class of that
    kind; drive it with :func:`feed_values`)."""
    cell = make_cell(spec, batch, dt, dtype=dtype)
    cell.neuron = neuron(cell.connection.out_shape, batch_size=batch, dt=dt)
    return cell


#: ``spec`` of :func:`make_cell`: None (dense), a Conv1d (every padding mode, groups 1 or 2) or a Conv2d
conv_specs = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(3, 6)),
            "kernel": st.integers(1, 3),
            "stride": st.integers(1, 2),
            "padding": st.integers(0, 1),
            "groups": st.sampled_from([1, 2]),
            "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "in_size": st.tuples(st.integers(2, 4), st.integers(2, 4)),
            "kernel": st.sampled_from([1, 2]),
            "stride": st.sampled_from([1, 2]),
            "padding": st.sampled_from([0, 1]),
            "groups": st.just(1),
            "padding_mode": st.sampled_from(["zeros", "circular"]),
        }
    ),
)


# --------------------------------------------------------------------------- calling a trainer in chunks

#: how a test calls a trainer over a run of T steps: ``"once"`` (one window, one call), ``"every step"``
#: (the cell in single-step mode, a call after each step) or a list of cut points (windows between
#: them, a call after each)
Chunking = str | Sequence[int]


def cut_points(max_cut=12):
    """One to three cut points of a run (clipped to it by :func:`chunk_bounds`): a chunking."""
    return st.lists(st.integers(1, max_cut), min_size=1, max_size=3)


def chunk_bounds(steps: int, chunking: Chunking) -> list[int]:
    """The steps at which the trainer is called, from 0 to ``steps`` (both included, sorted, no repeats)."""
    if chunking == "once":
        return [0, steps]
    if chunking == "every step":
        return list(range(steps + 1))
    return sorted({min(int(cut), steps) for cut in chunking} | {0, steps})


def drive(
    cell: Cell,
    trainer: Callable[..., object],
    inputs: Sequence[torch.Tensor],
    chunking: Chunking,
    *,
    feed: Callable[..., None] = run,
    call: Callable[[int, int], object] | None = None,
) -> None:
    """Run ``cell`` through ``inputs`` (tensors ``[T, ...]``, the arguments of ``feed`` after the
    cell: by default presynaptic and postsynaptic spikes) and call ``trainer`` after each chunk of
    ``chunking``; ``"every step"`` runs the cell step by step (single-step mode), the others in
    windows. ``call(start, stop)`` replaces ``trainer()`` (e.g. to pass the chunk's reward)."""
    steps = inputs[0].shape[0]
    mode = "single" if chunking == "every step" else "window"
    for start, stop in itertools.pairwise(chunk_bounds(steps, chunking)):
        feed(cell, *(values[start:stop] for values in inputs), mode=mode)
        if call is None:
            trainer()
        else:
            call(start, stop)


def net_pending(cell: Cell) -> torch.Tensor:
    """The change the cell's updater holds for the weight: potentiation minus depression."""
    potentiation, depression = cell.updater.pending("weight")
    return potentiation - depression


# --------------------------------------------------------------------------- receptive references


def padded_index(x, size, mode):
    """Input coordinate read at padded coordinate ``x`` (None: zero padding)."""
    if 0 <= x < size:
        return x
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -x if x < 0 else 2 * (size - 1) - x
    if mode == "replicate":
        return min(max(x, 0), size - 1)
    return x % size  # circular


def synapse_sites(connection):
    """Every (weight index, post index, pre index or None) of a dense or conv connection, explicitly."""
    if isinstance(connection, LinearDense):
        n_out, n_in = connection.weight.shape
        return [((i, j), (i,), (j,)) for i in range(n_out) for j in range(n_in)]
    geometry = connection.geometry
    in_channels, *in_spatial = connection.in_shape
    out_channels, *out_spatial = connection.out_shape
    per_in, per_out = in_channels // geometry.groups, out_channels // geometry.groups
    sites = []
    for oc in range(out_channels):
        for c in range(per_in):
            for kpos in itertools.product(*(range(k) for k in geometry.kernel_size)):
                for opos in itertools.product(*(range(o) for o in out_spatial)):
                    coords = [
                        padded_index(
                            opos[d] * geometry.stride[d]
                            + kpos[d] * geometry.dilation[d]
                            - geometry.padding_pairs[d][0],
                            in_spatial[d],
                            geometry.padding_mode,
                        )
                        for d in range(len(kpos))
                    ]
                    pre = None if None in coords else ((oc // per_out) * per_in + c, *coords)
                    sites.append(((oc, c, *kpos), (oc, *opos), pre))
    return sites


def explicit_unfold(x, kernel, stride, padding, dilation):
    """``[N, C, *spatial]`` -> ``[N, P, C * prod(kernel)]`` by explicit indexing, zero padding."""
    n, channels, *spatial = x.shape
    padded = torch.zeros(n, channels, *[s + 2 * q for s, q in zip(spatial, padding, strict=True)], dtype=x.dtype)
    padded[(slice(None), slice(None), *[slice(q, q + s) for s, q in zip(spatial, padding, strict=True)])] = x
    out_sizes = [
        (s + 2 * q - d * (k - 1) - 1) // st_ + 1
        for s, q, d, k, st_ in zip(spatial, padding, dilation, kernel, stride, strict=True)
    ]
    columns = []
    for position in itertools.product(*[range(o) for o in out_sizes]):
        entries = []
        for c in range(channels):
            for offset in itertools.product(*[range(k) for k in kernel]):
                index = [
                    pos * st_ + off * d for pos, off, st_, d in zip(position, offset, stride, dilation, strict=True)
                ]
                entries.append(padded[(slice(None), c, *index)])
        columns.append(torch.stack(entries, dim=1))
    return torch.stack(columns, dim=1)


# --------------------------------------------------------------------------- spike pairing schemes


def _latest(times, t):
    """The latest of ``times`` at or before ``t`` (None: none)."""
    earlier = [u for u in times if u <= t]
    return max(earlier) if earlier else None


def _earliest(times, t):
    """The earliest of ``times`` at or after ``t`` (None: none)."""
    later = [u for u in times if u >= t]
    return min(later) if later else None


def counted_pairs(pre_times, post_times, scheme):
    """``(potentiation pairs, depression pairs)`` of one synapse as sets of ``(p, q)``, by definition:

    all: every p <= q / every q <= p; symmetric: each post spike with the latest pre spike at or
    before it / each pre spike with the latest post spike at or before it; presynaptic-centred:
    each pre spike with the first post spike at or after it / as symmetric; restricted: the
    symmetric pairs whose spikes are each other's nearest partners (no spike of either neuron
    between them).
    """
    pre, post = sorted(pre_times), sorted(post_times)
    if scheme == "all":
        return {(p, q) for p in pre for q in post if p <= q}, {(p, q) for p in pre for q in post if q <= p}
    symmetric_depression = {(p, _latest(post, p)) for p in pre if _latest(post, p) is not None}
    if scheme in ("nearest", "symmetric"):
        return {(_latest(pre, q), q) for q in post if _latest(pre, q) is not None}, symmetric_depression
    if scheme == "presynaptic_centred":
        return {(p, _earliest(post, p)) for p in pre if _earliest(post, p) is not None}, symmetric_depression
    assert scheme == "restricted"
    potentiation = {(p, q) for p in pre for q in post if _latest(pre, q) == p and _earliest(post, p) == q}
    depression = {(p, q) for p in pre for q in post if _latest(post, p) == q and _earliest(pre, q) == p}
    return potentiation, depression


def pair_sums(pre_train, post_train, scheme, decay_pre, decay_post, amp_pre, amp_post):
    """Potentiation and depression of one synapse: the counted pairs' trace values."""
    pre_times = [t for t, s in enumerate(pre_train) if s]
    post_times = [t for t, s in enumerate(post_train) if s]
    potentiation, depression = counted_pairs(pre_times, post_times, scheme)
    return (
        sum(amp_pre * decay_pre ** (q - p) for p, q in potentiation),
        sum(amp_post * decay_post ** (p - q) for p, q in depression),
    )


def enumerated_products(connection, pre, post, scheme, *, decay_pre, decay_post, amp_pre, amp_post):
    """Per-sample ``[B, *weight_shape]`` potentiation and depression, site by site, pair by pair."""
    batch = pre.shape[1]
    shape = tuple(connection.weight.shape)
    potentiation, depression = np.zeros((batch, *shape)), np.zeros((batch, *shape))
    for weight_index, post_index, pre_index in synapse_sites(connection):
        if pre_index is None:
            continue
        for b in range(batch):
            pot, dep = pair_sums(
                pre[(slice(None), b, *pre_index)].tolist(), post[(slice(None), b, *post_index)].tolist(), scheme,
                decay_pre, decay_post, amp_pre, amp_post,
            )  # fmt: skip
            potentiation[(b, *weight_index)] += pot
            depression[(b, *weight_index)] += dep
    return potentiation, depression


# --------------------------------------------------------------------------- data and comparisons


def spikes(generator, shape, rate):
    """Bernoulli spikes (bool) from the default-dtype uniform draws of ``generator``."""
    return torch.rand(shape, generator=generator) < rate


def assert_close_relative(actual, expected, rel=1e-6, atol=1e-12):
    """``max |actual - expected| <= rel * max |expected| + atol``, shapes equal (float64)."""
    expected = torch.as_tensor(np.asarray(expected), dtype=F64)
    actual = actual.detach().to(F64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    error = (actual - expected).abs().max().item() if expected.numel() else 0.0
    scale = expected.abs().max().item() if expected.numel() else 0.0
    assert error <= rel * scale + atol, (error, scale)


def assert_close_for_dtype(actual, expected, dtype, scale=None):
    """Relative and absolute tolerance 1e-5 (float32) or 1e-9 (float64), the absolute one
    times ``scale`` (default: ``max |expected|``)."""
    expected = expected.to(torch.float64)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-9
    if scale is None:
        scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual.to(torch.float64), expected, rtol=tolerance, atol=tolerance * max(scale, 1e-12))


# --------------------------------------------------------------------------- documentation pages

# a fenced block: ```info, the body, a closing ``` on its own line
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each block fenced as exactly ```python (```py blocks are shown, not run)."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group("body"))
        for match in FENCE.finditer(text)
        if match.group("info").strip() == "python"
    ]
