"""Integer STDP (plastic.functional.integer) against a reference in plain Python
integers: per step, per sample, per synapse, with the uniform draws recomputed
from the same seed; bit-identical reruns; bounds; the halving rule."""

from __future__ import annotations

import itertools

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.integer import (
    IntegerSTDPParameters,
    IntegerTraces,
    integer_stdp_step,
    integer_stdp_window,
    stochastic_round,
)
from plastic.functional.receptive import ConvGeometry
from plastic.neural.connections import Conv1d


def round_reference(value: int, u: float, k: int) -> int:
    """round_s(v) = floor(v / 2^k) + [u < (v mod 2^k) / 2^k], in Python integers."""
    return value // 2**k + (1 if u < (value % 2**k) / 2**k else 0)


def explicit_unfold_1d(x, kernel, stride, padding, dilation):
    """``[C, L]`` nested lists -> ``[P][C * kernel]`` nested lists (zero padding)."""
    channels, length = len(x), len(x[0])
    padded = [[0] * padding + list(row) + [0] * padding for row in x]
    positions = (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return [
        [padded[c][p * stride + k * dilation] for c in range(channels) for k in range(kernel)] for p in range(positions)
    ]


def reference_integer(pre, post, weight, p: IntegerSTDPParameters, seed, traces=None, threshold=None, conv=None):
    """Python-int reference. ``conv`` = (groups, kernel, stride, padding, dilation) for a 1-d conv.

    Draws the uniforms exactly as documented: ``rand([T, B, *out])`` for depression,
    then ``rand([T, B, *in])`` for potentiation, float32, from ``Generator(seed)``.
    """
    steps, batch = pre.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    k = p.rounding_shift
    u_dep = torch.rand(post.shape, generator=generator, dtype=torch.float32).tolist() if k else None
    u_pot = torch.rand(pre.shape, generator=generator, dtype=torch.float32).tolist() if k else None
    pre_l, post_l = pre.int().tolist(), post.int().tolist()
    if traces is None:
        x_pre = torch.zeros(pre.shape[1:], dtype=torch.int64).tolist()
        x_post = torch.zeros(post.shape[1:], dtype=torch.int64).tolist()
    else:
        x_pre, x_post = traces[0].tolist(), traces[1].tolist()
    rows = weight.shape[0]
    columns = weight[0].numel()
    pot = [[0] * columns for _ in range(rows)]
    dep = [[0] * columns for _ in range(rows)]

    def decay_and_set(trace, spiked, d):
        if isinstance(trace, list):
            return [decay_and_set(a, b, d) for a, b in zip(trace, spiked, strict=True)]
        return p.trace_scale if spiked else (d * trace) >> p.trace_decay_shift

    def rounded(values, uniforms, nu):
        if isinstance(values, list):
            return [
                rounded(a, (b if uniforms is not None else None), nu)
                for a, b in zip(values, uniforms if uniforms is not None else [None] * len(values), strict=True)
            ]
        return round_reference(nu * values, uniforms, k) if k else nu * values

    for t in range(steps):
        for b in range(batch):
            x_pre[b] = decay_and_set(x_pre[b], pre_l[t][b], p.trace_decay_pre)
            x_post[b] = decay_and_set(x_post[b], post_l[t][b], p.trace_decay_post)
            dep_values = rounded(x_post[b], None if u_dep is None else u_dep[t][b], p.nu_pre)
            pot_values = rounded(x_pre[b], None if u_pot is None else u_pot[t][b], p.nu_post)
            if conv is None:
                for i, j in itertools.product(range(rows), range(columns)):
                    pot[i][j] += post_l[t][b][i] * pot_values[j]
                    dep[i][j] += dep_values[i] * pre_l[t][b][j]
                continue
            groups, kernel, stride, padding, dilation = conv
            per_in, per_out = len(pre_l[t][b]) // groups, rows // groups
            for g in range(groups):
                sl = slice(g * per_in, (g + 1) * per_in)
                unf_pot = explicit_unfold_1d(pot_values[sl], kernel, stride, padding, dilation)
                unf_pre = explicit_unfold_1d(pre_l[t][b][sl], kernel, stride, padding, dilation)
                for o in range(per_out):
                    i = g * per_out + o
                    for position, j in itertools.product(range(len(unf_pot)), range(columns)):
                        pot[i][j] += post_l[t][b][i][position] * unf_pot[position][j]
                        dep[i][j] += dep_values[i][position] * unf_pre[position][j]
    flat_weight = weight.reshape(rows, columns).long().tolist()
    new = []
    for i in range(rows):
        row = [flat_weight[i][j] + pot[i][j] - dep[i][j] for j in range(columns)]
        if threshold is not None and p.max_threshold is not None and float(threshold[i]) > p.max_threshold:
            row = [w // 2 for w in row]
        new.append([min(max(w, p.w_min), p.w_max) for w in row])
    shape = weight.shape
    return (
        torch.tensor(new).reshape(shape),
        torch.tensor(pot).reshape(shape),
        torch.tensor(dep).reshape(shape),
        (torch.tensor(x_pre), torch.tensor(x_post)),
    )


parameters_strategy = st.builds(
    IntegerSTDPParameters,
    trace_scale=st.integers(0, 255),
    trace_decay_pre=st.integers(0, 255),
    trace_decay_post=st.integers(0, 255),
    trace_decay_shift=st.just(8),
    nu_pre=st.integers(0, 8),
    nu_post=st.integers(0, 8),
    rounding_shift=st.integers(0, 8),
    w_min=st.integers(-50, 0),
    w_max=st.integers(1, 60),
    max_threshold=st.one_of(st.none(), st.floats(-1.0, 1.0)),
)


# ----------------------------------------------------------------- stochastic rounding


@given(seed=st.integers(0, 2**31 - 1), k=st.integers(0, 24), dtype=st.sampled_from([torch.int32, torch.int64]))
def test_stochastic_round_matches_explicit_recomputation(seed, k, dtype):
    values = torch.randint(-(2**20), 2**20, (5, 7), generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    result = stochastic_round(values, k, torch.Generator().manual_seed(seed))
    assert result.dtype == dtype
    if k == 0:
        assert torch.equal(result, values)
        return
    uniforms = torch.rand(values.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    expected = [
        round_reference(v, u, k) for v, u in zip(values.flatten().tolist(), uniforms.flatten().tolist(), strict=True)
    ]
    assert result.flatten().tolist() == expected


def test_stochastic_round_is_unbiased():
    values = torch.full((200_000,), 5, dtype=torch.int64)  # 5 / 2^3 = 0.625
    result = stochastic_round(values, 3, torch.Generator().manual_seed(0))
    assert set(result.unique().tolist()) == {0, 1}
    assert abs(result.double().mean().item() - 0.625) < 0.005


# ----------------------------------------------------------------- dense and conv vs reference


@given(
    seed=st.integers(0, 2**31 - 1),
    steps=st.integers(1, 6),
    batch=st.integers(1, 3),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    rate=st.floats(0.1, 0.9),
    parameters=parameters_strategy,
    weight_dtype=st.sampled_from([torch.int32, torch.int64, torch.float64]),
    with_traces=st.booleans(),
)
def test_dense_window_matches_reference(seed, steps, batch, n_in, n_out, rate, parameters, weight_dtype, with_traces):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, n_in, generator=generator) < rate
    post = torch.rand(steps, batch, n_out, generator=generator) < rate
    weight = torch.randint(parameters.w_min, parameters.w_max + 1, (n_out, n_in), generator=generator).to(weight_dtype)
    threshold = torch.rand(n_out, generator=generator) * 2 - 1
    traces = None
    if with_traces:
        traces = IntegerTraces(
            torch.randint(0, 256, (batch, n_in), generator=generator),
            torch.randint(0, 256, (batch, n_out), generator=generator),
        )
    result = integer_stdp_window(
        pre, post, weight, traces, parameters, threshold=threshold, generator=torch.Generator().manual_seed(seed)
    )
    new, pot, dep, (x_pre, x_post) = reference_integer(pre, post, weight, parameters, seed, traces, threshold)
    assert result.weight.dtype == weight_dtype
    assert torch.equal(result.potentiation, pot) and torch.equal(result.depression, dep)
    assert torch.equal(result.weight.long(), new)
    assert torch.equal(result.traces.trace_pre, x_pre) and torch.equal(result.traces.trace_post, x_post)
    assert bool((result.weight >= parameters.w_min).all()) and bool((result.weight <= parameters.w_max).all())
    assert bool((result.weight == result.weight.round()).all())


@given(
    seed=st.integers(0, 2**31 - 1),
    groups=st.sampled_from([1, 2]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    steps=st.integers(1, 3),
    batch=st.integers(1, 2),
    parameters=parameters_strategy,
)
def test_conv1d_matches_reference_on_unfolded_input(
    seed, groups, kernel, stride, padding, dilation, steps, batch, parameters
):
    length = 5
    span = dilation * (kernel - 1) + 1
    c_in, c_out = 2 * groups, groups
    geometry = ConvGeometry.create(1, c_in, c_out, kernel, stride, padding, dilation, groups)
    out_length = (length + 2 * padding - span) // stride + 1
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, c_in, length, generator=generator) < 0.4
    post = torch.rand(steps, batch, c_out, out_length, generator=generator) < 0.4
    weight = torch.zeros(geometry.weight_shape, dtype=torch.int64)
    result = integer_stdp_window(
        pre, post, weight, None, parameters, view=geometry, generator=torch.Generator().manual_seed(seed)
    )
    new, pot, dep, _ = reference_integer(
        pre, post, weight, parameters, seed, conv=(groups, kernel, stride, padding, dilation)
    )
    assert torch.equal(result.potentiation, pot) and torch.equal(result.depression, dep)
    assert torch.equal(result.weight, new)
    # the connection itself as the view: the same reference
    connection = Conv1d(c_in, c_out, kernel, stride, padding, dilation, groups, in_size=length)
    by_connection = integer_stdp_window(
        pre, post, weight, None, parameters, view=connection, generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(by_connection.potentiation, pot) and torch.equal(by_connection.depression, dep)
    assert torch.equal(by_connection.weight, new)


# ----------------------------------------------------------------- hand case, halving, reproducibility


def test_hand_computed_case():
    """trace_scale 100, decay 128/256 (halves each step), k = 0.

    pre at 0 and 3, post at 2: x_pre = 100, 50, 25, 100; x_post = 0, 0, 100, 50.
    potentiation at 2: nu_post * 25 = 50; depression at 3: nu_pre * 50 = 150 (at 0: 0).
    """
    p = IntegerSTDPParameters(
        trace_scale=100,
        trace_decay_pre=128,
        trace_decay_post=128,
        trace_decay_shift=8,
        nu_pre=3,
        nu_post=2,
        rounding_shift=0,
        w_min=-200,
        w_max=200,
    )
    pre = torch.tensor([1, 0, 0, 1]).reshape(4, 1, 1)
    post = torch.tensor([0, 0, 1, 0]).reshape(4, 1, 1)
    result = integer_stdp_window(pre, post, torch.tensor([[10]]), None, p)
    assert result.potentiation.item() == 50 and result.depression.item() == 150
    assert result.weight.item() == 10 + 50 - 150
    assert result.traces.trace_pre.item() == 100 and result.traces.trace_post.item() == 50
    # k = 1: 50 and 150 are even, so rounding is exact: 25 and 75
    halved = integer_stdp_window(pre, post, torch.tensor([[10]]), None, attrs.evolve(p, rounding_shift=1))
    assert halved.potentiation.item() == 25 and halved.depression.item() == 75


def test_halving_rows_above_max_threshold():
    p = IntegerSTDPParameters(w_min=-10, w_max=10, max_threshold=2.0)
    weight = torch.tensor([[7, -3], [9, 4], [-10, 10]], dtype=torch.int32)
    quiet_pre, quiet_post = torch.zeros(1, 1, 2, dtype=torch.bool), torch.zeros(1, 1, 3, dtype=torch.bool)
    result = integer_stdp_window(quiet_pre, quiet_post, weight, None, p, threshold=torch.tensor([5.0, 1.0, 2.5]))
    assert result.weight.tolist() == [[3, -2], [9, 4], [-5, 5]]
    unchanged = integer_stdp_window(quiet_pre, quiet_post, weight, None, p)  # no threshold given
    assert torch.equal(unchanged.weight, weight)


def test_bit_identical_with_same_seed_and_bounds_hold():
    p = IntegerSTDPParameters(nu_pre=7, nu_post=9, rounding_shift=5, w_min=-20, w_max=40, max_threshold=0.5)
    generator = torch.Generator().manual_seed(2)
    pre = torch.rand(50, 4, 16, generator=generator) < 0.3
    post = torch.rand(50, 4, 8, generator=generator) < 0.3
    threshold = torch.rand(8, generator=generator)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        weight, traces, outputs = torch.zeros(8, 16, dtype=torch.int32), None, []
        for start in range(0, 50, 10):
            result = integer_stdp_window(
                pre[start : start + 10], post[start : start + 10], weight, traces, p, threshold=threshold, generator=g
            )
            weight, traces = result.weight, result.traces
            outputs.append(result)
            assert bool((weight >= -20).all()) and bool((weight <= 40).all())
        return outputs

    first, second = run(7), run(7)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.potentiation, b.potentiation)
        assert torch.equal(a.depression, b.depression)
    other = run(8)
    assert any(not torch.equal(a.potentiation, b.potentiation) for a, b in zip(first, other, strict=True))


@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(2, 6), split=st.integers(1, 5))
def test_window_equals_steps_and_chained_windows_without_rounding(seed, steps, split):
    split = min(split, steps - 1)
    p = IntegerSTDPParameters(nu_pre=3, nu_post=5, rounding_shift=0, w_min=-(10**6), w_max=10**6)
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, 2, 4, generator=generator) < 0.4
    post = torch.rand(steps, 2, 3, generator=generator) < 0.4
    weight = torch.zeros(3, 4, dtype=torch.int64)
    whole = integer_stdp_window(pre, post, weight, None, p)
    traces, pot, dep, stepped = None, 0, 0, weight
    for t in range(steps):
        result = integer_stdp_step(pre[t], post[t], stepped, traces, p)
        traces, stepped = result.traces, result.weight
        pot, dep = pot + result.potentiation, dep + result.depression
    assert torch.equal(pot, whole.potentiation) and torch.equal(dep, whole.depression)
    assert torch.equal(stepped, whole.weight)  # no clamp reached: per-step application agrees
    first = integer_stdp_window(pre[:split], post[:split], weight, None, p)
    second = integer_stdp_window(pre[split:], post[split:], first.weight, first.traces, p)
    assert torch.equal(second.weight, whole.weight)
    assert torch.equal(second.traces.trace_pre, whole.traces.trace_pre)


def test_bad_input_raises_named_errors():
    pre, post = torch.zeros(2, 1, 3, dtype=torch.bool), torch.zeros(2, 1, 2, dtype=torch.bool)
    weight = torch.zeros(2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"^weight"):
        integer_stdp_window(pre, post, torch.full((2, 3), 0.5))
    with pytest.raises(TypeError, match=r"^weight"):
        integer_stdp_window(pre, post, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^weight"):
        integer_stdp_window(pre, post, torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^spikes_pre"):
        integer_stdp_window(torch.full((2, 1, 3), 3), post, weight)
    with pytest.raises(TypeError, match=r"^traces\.trace_pre"):
        integer_stdp_window(pre, post, weight, IntegerTraces(torch.zeros(1, 3), torch.zeros(1, 2)))
    with pytest.raises(ValueError, match=r"^traces\.trace_post"):
        integer_stdp_window(
            pre, post, weight, IntegerTraces(torch.zeros(1, 3, dtype=torch.int64), torch.zeros(1, 3, dtype=torch.int64))
        )
    with pytest.raises(ValueError, match=r"^threshold"):
        integer_stdp_window(pre, post, weight, None, IntegerSTDPParameters(max_threshold=1.0), threshold=torch.zeros(3))
    with pytest.raises(TypeError, match=r"^generator"):
        integer_stdp_window(pre, post, weight, generator=0)
    with pytest.raises(TypeError, match=r"^view"):
        integer_stdp_window(pre, post, weight, view="dense")
    with pytest.raises(ValueError, match=r"^trace_decay_pre"):
        IntegerSTDPParameters(trace_decay_pre=256, trace_decay_shift=8)
    with pytest.raises(ValueError, match=r"^w_min"):
        IntegerSTDPParameters(w_min=5, w_max=4)
    with pytest.raises(TypeError, match=r"^nu_pre"):
        IntegerSTDPParameters(nu_pre=0.5)
    with pytest.raises(ValueError, match=r"^rounding_shift"):
        IntegerSTDPParameters(rounding_shift=30)
    with pytest.raises(TypeError, match=r"^value"):
        stochastic_round(torch.zeros(3), 2)
    with pytest.raises(ValueError, match=r"^shift"):
        stochastic_round(torch.zeros(3, dtype=torch.int64), -1)


def test_integer_parameters_name_a_one_sided_bound_plainly() -> None:
    with pytest.raises(ValueError, match=r"^nu_pre: expected an int >= 0, got -1$"):
        IntegerSTDPParameters(nu_pre=-1)
