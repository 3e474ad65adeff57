"""Tests for plastic.functional.bounding and plastic.neural.updater.

Expected values are written literally (hand-computed from the equations in
plain Python floats) or from explicit per-element loops, never with the code
under test.
"""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.distributed as dist
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from plastic.functional.bounding import (
    Bounding,
    bound,
    clamp_,
    hard_lower,
    hard_upper,
    normalize_rows,
    normalize_rows_,
    scaled_lower,
    scaled_upper,
    soft_lower,
    soft_upper,
)
from plastic.neural.updater import Updater

WEIGHTS = [-1.0, 0.0, 0.5, 1.0, 2.0]
POS = 0.5
NEG = 0.25


def as_tensor(values: list[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def assert_close(actual: torch.Tensor, expected: list, atol: float = 1e-12) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# ---------------------------------------------------------------------------- bounding factors

# (bounding, upper factors, lower factors) for WEIGHTS, written by hand.
SQRT_HALF = math.sqrt(0.5)
SQRT_2 = math.sqrt(2.0)
FACTOR_CASES = [
    (Bounding("none"), [1.0] * 5, [1.0] * 5),
    (Bounding("hard", w_min=0.0, w_max=1.0), [1.0, 1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0, 1.0]),
    (Bounding("soft", w_min=0.0, w_max=1.0), [2.0, 1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 1.0, 2.0]),
    (
        Bounding("power", w_min=0.0, w_max=1.0, mu=2.0),
        [4.0, 1.0, 0.25, 0.0, 0.0],
        [0.0, 0.0, 0.25, 1.0, 4.0],
    ),
    (
        Bounding("power", w_min=0.0, w_max=1.0, mu=0.5),
        [SQRT_2, 1.0, SQRT_HALF, 0.0, 0.0],
        [0.0, 0.0, SQRT_HALF, 1.0, SQRT_2],
    ),
    (
        # range 4: upper (3 - w)/4, lower (w + 1)/4
        Bounding("scaled", w_min=-1.0, w_max=3.0),
        [1.0, 0.75, 0.625, 0.5, 0.25],
        [0.0, 0.25, 0.375, 0.5, 0.75],
    ),
    (
        Bounding("scaled", w_min=-1.0, w_max=3.0, mu=2.0),
        [1.0, 0.5625, 0.390625, 0.25, 0.0625],
        [0.0, 0.0625, 0.140625, 0.25, 0.5625],
    ),
    # one side only: the other factor is 1 (additive)
    (Bounding("soft", w_max=1.0, side="upper"), [2.0, 1.0, 0.5, 0.0, 0.0], [1.0] * 5),
    (Bounding("soft", w_min=0.0, side="lower"), [1.0] * 5, [0.0, 0.0, 0.5, 1.0, 2.0]),
    (Bounding("hard", w_max=1.0, side="upper"), [1.0, 1.0, 1.0, 0.0, 0.0], [1.0] * 5),
    (
        Bounding("power", w_min=0.0, mu=2.0, side="lower"),
        [1.0] * 5,
        [0.0, 0.0, 0.25, 1.0, 4.0],
    ),
    (
        Bounding("scaled", w_min=-1.0, w_max=3.0, side="upper"),
        [1.0, 0.75, 0.625, 0.5, 0.25],
        [1.0] * 5,
    ),
]


@pytest.mark.parametrize(("bounding", "upper", "lower"), FACTOR_CASES, ids=repr)
def test_bounding_factors_and_dw(bounding: Bounding, upper: list, lower: list) -> None:
    w = as_tensor(WEIGHTS)
    assert_close(bounding.upper_factor(w), upper)
    assert_close(bounding.lower_factor(w), lower)
    pos = torch.full_like(w, POS)
    neg = torch.full_like(w, NEG)
    expected = [up * POS - low * NEG for up, low in zip(upper, lower, strict=True)]
    assert_close(bounding(w, pos, neg), expected)


def test_factor_functions_by_hand() -> None:
    w = as_tensor(WEIGHTS)
    assert_close(hard_upper(w, 1.0), [1.0, 1.0, 1.0, 0.0, 0.0])
    assert_close(hard_lower(w, 0.0), [0.0, 0.0, 1.0, 1.0, 1.0])
    assert hard_upper(w.float(), 1.0).dtype == torch.float32
    assert_close(soft_upper(w, 1.0), [2.0, 1.0, 0.5, 0.0, 0.0])
    assert_close(soft_lower(w, 0.0, mu=3.0), [0.0, 0.0, 0.125, 1.0, 8.0])
    assert_close(scaled_upper(w, -1.0, 3.0, mu=0.5), [1.0, math.sqrt(0.75), math.sqrt(0.625), SQRT_HALF, 0.5])
    assert_close(scaled_lower(w, -1.0, 3.0), [0.0, 0.25, 0.375, 0.5, 0.75])
    # per-synapse (tensor) bounds
    w_max = as_tensor([0.0, 1.0, 1.0, 3.0, 2.0])
    assert_close(soft_upper(w, w_max), [1.0, 1.0, 0.5, 2.0, 0.0])


def test_bound_with_callables_and_none() -> None:
    w = as_tensor([0.2, 0.8])
    pos = as_tensor([1.0, 2.0])
    neg = as_tensor([0.5, 0.5])
    # additive: pos - neg
    assert_close(bound(w, pos, neg), [0.5, 1.5])
    # f_post = 1 - w, f_pre = w
    dw = bound(w, pos, neg, upper=lambda x: 1 - x, lower=lambda x: x)
    assert_close(dw, [0.8 * 1.0 - 0.2 * 0.5, 0.2 * 2.0 - 0.8 * 0.5])
    assert_close(bound(w, None, neg), [-0.5, -0.5])
    with pytest.raises(ValueError, match=r"^potentiation"):
        bound(w, as_tensor([1.0, 2.0, 3.0]), neg)


@given(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8),
    st.floats(0.05, 4.0),
)
def test_soft_factors_never_nan_and_non_negative(values: list[float], mu: float) -> None:
    w = as_tensor(values)
    for factor in (
        soft_upper(w, 1.0, mu),
        soft_lower(w, 0.0, mu),
        scaled_upper(w, -0.5, 1.5, mu),
        scaled_lower(w, -0.5, 1.5, mu),
    ):
        assert bool(torch.isfinite(factor).all())
        assert bool((factor >= 0).all())
    # per-element reference for the power-law upper factor
    expected = [max(1.0 - v, 0.0) ** mu for v in values]
    assert_close(soft_upper(w, 1.0, mu), expected, atol=1e-9)


def test_bounding_validation() -> None:
    with pytest.raises(ValueError, match=r"^w_min"):
        Bounding("soft", w_min=1.0, w_max=0.0)
    with pytest.raises(ValueError, match=r"^w_min"):
        Bounding("hard", w_min=1.0, w_max=1.0)
    with pytest.raises(ValueError, match=r"^mu"):
        Bounding("power", w_min=0.0, w_max=1.0, mu=0.0)
    with pytest.raises(ValueError, match=r"^mu"):
        Bounding("power", w_min=0.0, w_max=1.0, mu=-1.0)
    with pytest.raises(ValueError, match=r"^mu"):
        Bounding("soft", w_min=0.0, w_max=1.0, mu=2.0)
    with pytest.raises(ValueError, match=r"^side"):
        Bounding("soft", w_min=0.0, w_max=1.0, side="middle")
    with pytest.raises(ValueError, match=r"^kind"):
        Bounding("elastic")
    with pytest.raises(ValueError, match=r"^w_max"):
        Bounding("soft", w_min=0.0)
    with pytest.raises(ValueError, match=r"^w_min"):
        Bounding("hard", w_max=1.0, side="lower")
    with pytest.raises(ValueError, match=r"^w_min"):
        Bounding("scaled", w_max=1.0, side="upper")
    with pytest.raises(ValueError, match=r"^w_max"):
        Bounding("none", w_max=float("nan"))
    with pytest.raises(TypeError, match=r"^w_max"):
        Bounding("soft", w_min=0.0, w_max="1")
    with pytest.raises(ValueError, match=r"^w_min"):
        scaled_upper(as_tensor([0.0]), 2.0, 1.0)
    with pytest.raises(ValueError, match=r"^mu"):
        soft_upper(as_tensor([0.0]), 1.0, mu=float("nan"))


# ---------------------------------------------------------------------------- clamp, normalize


def test_clamp_in_place() -> None:
    w = nn.Parameter(as_tensor([-1.0, 0.5, 2.0]))
    result = clamp_(w, 0.0, 1.0)
    assert result is w
    assert_close(w.detach(), [0.0, 0.5, 1.0])
    clamp_(w, None, 0.25)
    assert_close(w.detach(), [0.0, 0.25, 0.25])
    with pytest.raises(ValueError, match=r"^w_min"):
        clamp_(w, 1.0, 0.0)
    assert_close(w.detach(), [0.0, 0.25, 0.25])


def test_normalize_rows_hand_example() -> None:
    weight = as_tensor([[1.0, 3.0], [0.0, 0.0], [-1.0, 1.0]]).reshape(3, 2)
    result = normalize_rows(weight, 2.0)
    assert_close(result, [[0.5, 1.5], [0.0, 0.0], [-1.0, 1.0]])
    # Diehl & Cook: 784 inputs, target 78.4
    weight = torch.rand(5, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sums = normalize_rows(weight, 78.4).sum(dim=1)
    torch.testing.assert_close(sums, torch.full((5,), 78.4, dtype=torch.float64))


@given(
    rows=st.integers(1, 6),
    columns=st.integers(1, 7),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_normalize_rows_in_place_is_normalize_rows(rows, columns, transposed, seed) -> None:
    """normalize_rows_ (the updater's hook) writes exactly what normalize_rows returns, in any layout."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(rows, columns, generator=generator, dtype=torch.float64)
    values[0] = 0.0  # an all-zero row stays zero
    weight = values.T.contiguous().T if transposed else values.clone()
    expected = normalize_rows(weight.clone(), 1.7)  # the same layout (its row sums run in its order)
    assert normalize_rows_(weight, 1.7) is weight
    assert torch.equal(weight, expected)
    torch.testing.assert_close(weight, normalize_rows(values, 1.7), rtol=1e-14, atol=1e-14)
    parameter = nn.Parameter(values.clone())  # a leaf that requires grad
    assert torch.equal(normalize_rows_(parameter, 1.7), normalize_rows(values, 1.7))
    with pytest.raises(ValueError, match=r"^target_sum"):
        normalize_rows_(weight, -1.0)


def test_normalize_rows_conv() -> None:
    # [out=2, in=1, 2, 2]: each output channel normalised over its 4 weights.
    weight = as_tensor([1.0, 1.0, 1.0, 1.0, 0.0, 2.0, 0.0, -2.0]).reshape(2, 1, 2, 2)
    result = normalize_rows(weight, 1.0)
    assert_close(result.flatten(), [0.25, 0.25, 0.25, 0.25, 0.0, 0.5, 0.0, -0.5])
    # explicit dim: normalise along the last dimension only
    result = normalize_rows(weight, 1.0, dim=-1)
    assert_close(result.flatten(), [0.5, 0.5, 0.5, 0.5, 0.0, 1.0, 0.0, -1.0])
    with pytest.raises(ValueError, match=r"^target_sum"):
        normalize_rows(weight, 0.0)
    with pytest.raises(ValueError, match=r"^dim"):
        normalize_rows(weight, 1.0, dim=4)


# ---------------------------------------------------------------------------- updater basics


def make_linear(values: list[list[float]], dtype: torch.dtype = torch.float64) -> nn.Linear:
    rows, cols = len(values), len(values[0])
    layer = nn.Linear(cols, rows, bias=False, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(values, dtype=dtype))
    return layer


REDUCTION_CALLS = [[1.0, 4.0], [3.0, 2.0], [2.0, 0.0]]
REDUCTION_EXPECTED = {
    "sum": [6.0, 6.0],
    "mean": [2.0, 2.0],
    "max": [3.0, 4.0],
    "min": [1.0, 0.0],
    "last": [2.0, 0.0],
}


@pytest.mark.parametrize("reduction", sorted(REDUCTION_EXPECTED))
def test_reductions_hand_computed(reduction: str) -> None:
    layer = make_linear([[0.0, 0.0]])
    updater = Updater(layer, reduction=reduction)
    for values in REDUCTION_CALLS:
        updater.accumulate("weight", potentiation=as_tensor([values]))
    # depression: a single call, the reduction of one value is that value
    updater.accumulate("weight", depression=as_tensor([[0.5, 0.25]]))
    positive, negative = updater.pending("weight")
    assert_close(positive, [REDUCTION_EXPECTED[reduction]])
    assert_close(negative, [[0.5, 0.25]])
    assert updater.count("weight") == (3, 1)
    updater.apply()
    expected = [p - n for p, n in zip(REDUCTION_EXPECTED[reduction], [0.5, 0.25], strict=True)]
    assert_close(layer.weight.detach(), [expected])
    assert not updater.has_pending()
    assert updater.count("weight") == (0, 0)


@given(st.lists(st.floats(0.0, 100.0), min_size=1, max_size=12))
def test_running_mean_matches_python_mean(values: list[float]) -> None:
    layer = make_linear([[0.0]])
    updater = Updater(layer, reduction="mean")
    for value in values:
        updater.accumulate("weight", potentiation=as_tensor([[value]]))
    expected = sum(values) / len(values)
    assert abs(updater.pending("weight")[0].item() - expected) <= 1e-9 * max(1.0, expected)


def updater_bytes(updater: Updater) -> int:
    return sum(t.numel() * t.element_size() for t in updater.buffers())


def test_memory_constant_in_number_of_calls() -> None:
    for reduction in ("sum", "mean", "max", "min", "last"):
        layer = make_linear([[0.0, 0.0, 0.0]], dtype=torch.float32)
        updater = Updater(layer, reduction=reduction)
        value = torch.ones(1, 3)
        updater.accumulate("weight", value, value)
        after_one = updater_bytes(updater)
        calls = 10_000 if reduction == "sum" else 500
        for _ in range(calls - 1):
            updater.accumulate("weight", value, value)
        assert updater_bytes(updater) == after_one
        assert updater.count("weight") == (calls, calls)


def test_pending_zeros_and_has_pending() -> None:
    layer = make_linear([[1.0, 2.0]])
    updater = Updater(layer)
    positive, negative = updater.pending("weight")
    assert_close(positive, [[0.0, 0.0]])
    assert_close(negative, [[0.0, 0.0]])
    assert not updater.has_pending()
    before = layer.weight.detach().clone()
    updater.apply()  # nothing pending: nothing changes
    torch.testing.assert_close(layer.weight.detach(), before)
    updater.accumulate("weight", depression=as_tensor([[0.0, 0.0]]))
    assert updater.has_pending("weight")
    updater.clear()
    assert not updater.has_pending()


def test_apply_with_bounding_clamp_and_normalize() -> None:
    # soft bounds in [0, 1]: dw = (1 - w) * pos - w * neg
    layer = make_linear([[0.2, 0.6], [0.5, 0.9]])
    updater = Updater(layer, bounding=Bounding("soft", w_min=0.0, w_max=1.0))
    updater.accumulate("weight", as_tensor([[1.0, 1.0], [0.0, 2.0]]), as_tensor([[0.5, 0.0], [1.0, 0.0]]))
    updater.apply()
    expected = [
        [0.2 + 0.8 * 1.0 - 0.2 * 0.5, 0.6 + 0.4 * 1.0],
        [0.5 - 0.5 * 1.0, 0.9 + 0.1 * 2.0],
    ]
    assert_close(layer.weight.detach(), expected)

    # clamp then normalise (row L1 = 1)
    layer = make_linear([[0.2, 0.6], [0.5, 0.9]])
    updater = Updater(layer, clamp=(0.0, 1.0), normalize=1.0)
    updater.accumulate("weight", as_tensor([[0.0, 1.0], [0.0, 0.0]]), as_tensor([[0.0, 0.0], [1.0, 0.0]]))
    updater.apply()
    # after dw: [[0.2, 1.6], [-0.5, 0.9]]; clamp: [[0.2, 1.0], [0.0, 0.9]]; normalise rows
    assert_close(layer.weight.detach(), [[0.2 / 1.2, 1.0 / 1.2], [0.0, 1.0]])

    # normalise first, then clamp
    layer = make_linear([[0.5, 0.5]])
    updater = Updater(layer, clamp=(None, 1.0), normalize=3.0, normalize_first=True)
    updater.accumulate("weight", as_tensor([[0.0, 1.0]]))
    updater.apply()
    # dw -> [0.5, 1.5]; normalise to 3 -> [0.75, 2.25]; clamp -> [0.75, 1.0]
    assert_close(layer.weight.detach(), [[0.75, 1.0]])


def test_per_name_settings_for_several_params() -> None:
    layer = nn.Linear(2, 1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(as_tensor([[0.5, 0.5]]))
        layer.bias.copy_(as_tensor([0.0]))
    updater = Updater(
        layer,
        ("weight", "bias"),
        bounding={"weight": Bounding("hard", w_min=0.0, w_max=0.5)},
        clamp={"bias": (-0.1, 0.1)},
    )
    updater.accumulate("weight", as_tensor([[1.0, 0.0]]), as_tensor([[0.0, 0.25]]))
    updater.accumulate("bias", as_tensor([1.0]))
    updater.apply()
    # hard upper [0.5 < 0.5] = 0 blocks potentiation; depression allowed
    assert_close(layer.weight.detach(), [[0.5, 0.25]])
    assert_close(layer.bias.detach(), [0.1])


def test_mask_respected_explicit_and_implicit() -> None:
    diagonal_free = ~torch.eye(3, dtype=torch.bool)
    layer = make_linear([[0.0, 0.1, 0.2], [0.3, 0.0, 0.4], [0.5, 0.6, 0.0]])
    updater = Updater(layer, mask={"weight": diagonal_free}, normalize=1.0)
    updater.accumulate("weight", torch.ones(3, 3, dtype=torch.float64))
    updater.apply()
    weight = layer.weight.detach()
    assert_close(torch.diagonal(weight), [0.0, 0.0, 0.0])
    # off-diagonal: +1 then row-normalised; by hand row 0: [1.1, 1.2] / 2.3
    assert_close(weight[0], [0.0, 1.1 / 2.3, 1.2 / 2.3])

    # a module attribute weight_mask (as lateral connections have) is used by default
    layer = make_linear([[0.0, 0.5], [0.5, 0.0]])
    layer.register_buffer("weight_mask", ~torch.eye(2, dtype=torch.bool))
    updater = Updater(layer)
    updater.accumulate("weight", torch.ones(2, 2, dtype=torch.float64))
    updater.apply()
    assert_close(layer.weight.detach(), [[0.0, 1.5], [1.5, 0.0]])


def test_to_grad_with_sgd_matches_apply() -> None:
    initial = [[0.2, 0.7, 0.4], [0.9, 0.1, 0.5]]
    bounding = Bounding("power", w_min=0.0, w_max=1.0, mu=0.5)
    positive = as_tensor([[1.0, 0.5, 0.0], [0.2, 0.3, 0.4]])
    negative = as_tensor([[0.1, 0.0, 0.6], [0.5, 0.5, 0.5]])

    applied = make_linear(initial)
    updater = Updater(applied, bounding=bounding)
    updater.accumulate("weight", positive, negative)
    updater.apply()

    optimised = make_linear(initial)
    updater = Updater(optimised, bounding=bounding)
    updater.accumulate("weight", positive, negative)
    optimizer = torch.optim.SGD(optimised.parameters(), lr=1.0)
    optimizer.zero_grad(set_to_none=True)
    updater.to_grad()
    assert not updater.has_pending()
    optimizer.step()
    torch.testing.assert_close(optimised.weight.detach(), applied.weight.detach())

    # a per-element reference for the first entries: w + sqrt(1-w)*pos - sqrt(w)*neg
    expected00 = 0.2 + math.sqrt(0.8) * 1.0 - math.sqrt(0.2) * 0.1
    assert abs(applied.weight[0, 0].item() - expected00) < 1e-12

    # accumulate=True adds to an existing grad, scale multiplies
    layer = make_linear([[0.0]])
    layer.weight.grad = as_tensor([[1.0]])
    updater = Updater(layer)
    updater.accumulate("weight", as_tensor([[2.0]]))
    updater.to_grad(scale=0.5)
    assert_close(layer.weight.grad, [[1.0 - 0.5 * 2.0]])
    updater.accumulate("weight", as_tensor([[2.0]]))
    updater.to_grad(accumulate=False)
    assert_close(layer.weight.grad, [[-2.0]])


def test_apply_keeps_autograd_clean() -> None:
    layer = make_linear([[0.0, 0.0]])
    updater = Updater(layer)
    updater.accumulate("weight", as_tensor([[1.0, 2.0]]))
    updater.apply()
    assert layer.weight.grad is None
    assert layer.weight.is_leaf
    # nn.Module.apply(fn) still works through a parent
    seen = []
    nn.Sequential(updater).apply(lambda module: seen.append(type(module).__name__))
    assert seen == ["Updater", "Sequential"]


# ---------------------------------------------------------------------------- bad input


def snapshot(updater: Updater) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in updater.state_dict().items()}


def assert_unchanged(updater: Updater, before: dict[str, torch.Tensor]) -> None:
    after = updater.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)


def test_bad_input_raises_and_leaves_state_unchanged() -> None:
    layer = make_linear([[0.0, 0.0], [0.0, 0.0]], dtype=torch.float32)
    updater = Updater(layer)
    good = torch.ones(2, 2)
    updater.accumulate("weight", good, good)
    before = snapshot(updater)
    cases = [
        (ValueError, "^potentiation", {"potentiation": torch.ones(2, 3), "depression": good}),
        (ValueError, "^potentiation", {"potentiation": torch.ones(4)}),
        # depression is bad: potentiation must not be reduced either
        (ValueError, "^depression", {"potentiation": good, "depression": torch.ones(1, 2, 2)}),
        (ValueError, "^depression", {"potentiation": good, "depression": -good}),
        (ValueError, "^potentiation", {"potentiation": torch.tensor([[1.0, float("nan")], [0.0, 0.0]])}),
        (ValueError, "^depression", {"potentiation": good, "depression": torch.full((2, 2), float("inf"))}),
        (TypeError, "^potentiation", {"potentiation": torch.ones(2, 2, dtype=torch.int64)}),
        (TypeError, "^potentiation", {"potentiation": torch.ones(2, 2, dtype=torch.bool)}),
        (TypeError, "^depression", {"depression": [[1.0, 1.0], [1.0, 1.0]]}),
        # another device than the parameter's (meta stands in for CUDA here)
        (ValueError, "^potentiation", {"potentiation": torch.ones(2, 2, device="meta")}),
    ]
    for error, message, kwargs in cases:
        with pytest.raises(error, match=message):
            updater.accumulate("weight", **kwargs)
        assert_unchanged(updater, before)
    with pytest.raises(ValueError, match=r"^name"):
        updater.accumulate("bias", good)
    with pytest.raises(ValueError, match=r"^name"):
        updater.pending("nope")
    assert_unchanged(updater, before)


def test_constructor_validation() -> None:
    layer = nn.Linear(2, 2, bias=False)
    with pytest.raises(ValueError, match=r"^params"):
        Updater(layer, ("weight", "bias"))  # bias is None
    with pytest.raises(ValueError, match=r"^params"):
        Updater(layer, ("gain",))
    with pytest.raises(ValueError, match=r"^params"):
        Updater(layer, ())
    with pytest.raises(ValueError, match=r"^params"):
        Updater(layer, ("weight", "weight"))
    with pytest.raises(TypeError, match=r"^params"):
        Updater(layer, "weight")
    with pytest.raises(TypeError, match=r"^module"):
        Updater(torch.ones(2), ("weight",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^reduction"):
        Updater(layer, reduction="median")
    with pytest.raises(ValueError, match=r"^all_reduce"):
        Updater(layer, all_reduce="max")
    with pytest.raises(ValueError, match=r"^clamp"):
        Updater(layer, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"^clamp"):
        Updater(layer, clamp=(0.0,))
    with pytest.raises(ValueError, match=r"^clamp"):
        Updater(layer, clamp={"bias": (0.0, 1.0)})
    with pytest.raises(TypeError, match=r"^bounding"):
        Updater(layer, bounding="soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^bounding"):
        Updater(layer, bounding={"delay": Bounding()})
    with pytest.raises(ValueError, match=r"^normalize"):
        Updater(layer, normalize=-1.0)
    with pytest.raises(ValueError, match=r"^mask"):
        Updater(layer, mask={"weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"^mask"):
        Updater(layer, mask={"weight": torch.full((2, 2), 0.5)})
    with pytest.raises(ValueError, match=r"^scale"):
        Updater(layer).to_grad(scale=0.0)


def test_tensor_attribute_and_dotted_names() -> None:
    holder = nn.Module()
    holder.inner = nn.Module()
    holder.inner.register_buffer("delay", as_tensor([1.0, 2.0]))
    updater = Updater(holder, ("inner.delay",), clamp=(0.0, 2.0))
    updater.accumulate("inner.delay", as_tensor([0.5, 0.5]), as_tensor([2.0, 0.0]))
    updater.apply()
    assert_close(holder.inner.delay, [0.0, 2.0])
    assert "inner__delay_potentiation" in updater.state_dict()


# ---------------------------------------------------------------------------- state_dict, .to


def test_state_dict_round_trip() -> None:
    source = Updater(make_linear([[0.0, 0.0]]), reduction="max")
    source.accumulate("weight", as_tensor([[1.0, 3.0]]), as_tensor([[0.5, 0.0]]))
    source.accumulate("weight", as_tensor([[2.0, 1.0]]))
    state = source.state_dict()
    assert set(state) == {
        "weight_potentiation",
        "weight_potentiation_count",
        "weight_depression",
        "weight_depression_count",
    }
    target_layer = make_linear([[0.0, 0.0]])
    target = Updater(target_layer, reduction="max")
    target.load_state_dict(state)
    assert target.count("weight") == (2, 1)
    assert_close(target.pending("weight")[0], [[2.0, 3.0]])
    # the reduction continues from the loaded state
    target.accumulate("weight", as_tensor([[5.0, 0.0]]))
    assert_close(target.pending("weight")[0], [[5.0, 3.0]])
    target.apply()
    assert_close(target_layer.weight.detach(), [[5.0 - 0.5, 3.0]])


def test_to_float64_module_and_updater() -> None:
    layer = make_linear([[0.25, 0.5]], dtype=torch.float32)
    updater = Updater(layer, bounding=Bounding("soft", w_min=0.0, w_max=1.0))
    updater.accumulate("weight", torch.tensor([[1.0, 1.0]]))

    # moving the module re-homes the accumulators at the next call
    layer.to(torch.float64)
    updater.accumulate("weight", as_tensor([[1.0, 0.0]]))
    positive, _ = updater.pending("weight")
    assert positive.dtype == torch.float64
    assert_close(positive, [[2.0, 1.0]])
    assert all(b.dtype == torch.float64 for k, b in updater.state_dict().items() if not k.endswith("count"))

    # moving the updater alone: accumulators follow the parameter again
    updater.to(torch.float32)
    assert updater.weight_potentiation.dtype == torch.float32
    updater.accumulate("weight", as_tensor([[0.0, 1.0]]))
    assert updater.pending("weight")[0].dtype == torch.float64
    updater.apply()
    assert layer.weight.dtype == torch.float64
    assert_close(layer.weight.detach(), [[0.25 + 0.75 * 2.0, 0.5 + 0.5 * 2.0]])

    # both together, float32 -> float64
    layer = make_linear([[0.25, 0.5]], dtype=torch.float32)
    updater = Updater(layer, bounding=Bounding("soft", w_min=0.0, w_max=1.0))
    updater.accumulate("weight", torch.zeros(1, 2), torch.ones(1, 2))
    layer.to(torch.float64)
    updater.to(torch.float64)
    assert updater.weight_depression.dtype == torch.float64
    assert updater.weight_depression_count.dtype == torch.int64
    updater.accumulate("weight", torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64))
    assert updater.count("weight") == (2, 2)
    updater.apply()
    assert_close(layer.weight.detach(), [[0.25 - 0.25 * 2.0, 0.5 - 0.5 * 2.0]])


# ---------------------------------------------------------------------------- distributed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_update(all_reduce: str | None) -> torch.Tensor:
    layer = make_linear([[0.3, 0.6]])
    updater = Updater(layer, bounding=Bounding("soft", w_min=0.0, w_max=1.0), all_reduce=all_reduce)
    updater.accumulate("weight", as_tensor([[1.0, 0.5]]), as_tensor([[0.25, 0.5]]))
    updater.apply()
    return layer.weight.detach().clone()


def test_all_reduce_without_process_group_raises() -> None:
    assert not (dist.is_available() and dist.is_initialized())
    layer = make_linear([[0.3, 0.6]])
    updater = Updater(layer, all_reduce="sum")
    updater.accumulate("weight", as_tensor([[1.0, 0.5]]))
    before = snapshot(updater)
    weight_before = layer.weight.detach().clone()
    with pytest.raises(ValueError, match=r"^all_reduce"):
        updater.apply()
    with pytest.raises(ValueError, match=r"^all_reduce"):
        updater.sync()
    with pytest.raises(ValueError, match=r"^all_reduce"):
        Updater(layer).sync()  # no op configured nor given
    assert_unchanged(updater, before)
    torch.testing.assert_close(layer.weight.detach(), weight_before)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_all_reduce_single_process_group() -> None:
    reference = run_update(None)
    # by hand: w + (1 - w) * pos - w * neg
    assert_close(reference, [[0.3 + 0.7 * 1.0 - 0.3 * 0.25, 0.6 + 0.4 * 0.5 - 0.6 * 0.5]])
    dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{free_port()}")
    try:
        for op in ("sum", "mean"):
            torch.testing.assert_close(run_update(op), reference)
        updater = Updater(make_linear([[0.0, 0.0]]))
        updater.accumulate("weight", as_tensor([[1.0, 2.0]]))
        updater.sync("mean")
        assert_close(updater.pending("weight")[0], [[1.0, 2.0]])
        assert updater.count("weight") == (1, 0)
    finally:
        dist.destroy_process_group()


def test_figure_script_writes_png(tmp_path) -> None:
    from plastic.zoo.figures_bounding import main

    path = main(tmp_path)
    assert path.name == "bounding.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
