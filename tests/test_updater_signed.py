"""Updater.accumulate_signed and the in-place apply of additive, unmasked updates.

References are per-element Python (or numpy float32 scalar) arithmetic written
here: ``p = max(d, 0)``, ``n = p - d``, the running reductions by hand, and
``w + (p - n)`` element by element; never the updater's own code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import make_cell as make_scripted_cell
from helpers import run
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from plastic.functional.bounding import Bounding
from plastic.learn.stdp import STDP
from plastic.neural.updater import Updater

finite32 = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def make_linear(values: list[float], dtype: torch.dtype = torch.float32) -> nn.Linear:
    layer = nn.Linear(len(values), 1, bias=False, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([values], dtype=dtype))
    return layer


def parts(values: list[float]) -> tuple[list[float], list[float]]:
    """The potentiation and depression parts of a signed change, element by element (float32)."""
    positive = [float(np.float32(max(v, 0.0))) for v in values]
    negative = [float(np.float32(p) - np.float32(v)) for p, v in zip(positive, values, strict=True)]
    return positive, negative


def row(values: list[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor([values], dtype=dtype)


# the reads of the two accumulators that change nothing
PLAIN_READS = ("pending", "state_dict", "attribute")


def read_parts(updater: Updater, read: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight's (potentiation, depression) through one of PLAIN_READS."""
    if read == "pending":
        return updater.pending("weight")
    if read == "state_dict":
        state = updater.state_dict()
        return state["weight_potentiation"], state["weight_depression"]
    return updater.weight_potentiation.clone(), updater.weight_depression.clone()


@given(st.lists(finite32, min_size=1, max_size=9))
def test_fresh_accumulate_signed_writes_the_two_parts(values: list[float]) -> None:
    updater = Updater(make_linear([0.0] * len(values)))
    updater.accumulate_signed("weight", row(values))
    positive, negative = updater.pending("weight")
    expected_positive, expected_negative = parts(values)
    assert positive[0].tolist() == expected_positive
    assert negative[0].tolist() == expected_negative
    assert all(value >= 0 for value in negative[0].tolist())
    assert updater.count("weight") == (1, 1)


# two calls per reduction, by hand: d1 = [2, -1, 0.5], d2 = [-3, 4, 0.25]
FIRST, SECOND = [2.0, -1.0, 0.5], [-3.0, 4.0, 0.25]
SIGNED_EXPECTED = {  # (potentiation, depression) after both calls
    "sum": ([2.0, 4.0, 0.75], [3.0, 1.0, 0.0]),
    "mean": ([1.0, 2.0, 0.375], [1.5, 0.5, 0.0]),
    "max": ([2.0, 4.0, 0.5], [3.0, 1.0, 0.0]),
    "min": ([0.0, 0.0, 0.25], [0.0, 0.0, 0.0]),
    "last": ([0.0, 4.0, 0.25], [3.0, 0.0, 0.0]),
}


@pytest.mark.parametrize("reduction", sorted(SIGNED_EXPECTED))
def test_accumulate_signed_reduces_over_calls(reduction: str) -> None:
    layer = make_linear([1.0, 1.0, 1.0])
    updater = Updater(layer, reduction=reduction)
    updater.accumulate_signed("weight", row(FIRST))
    assert updater.pending("weight")[0][0].tolist() == [2.0, 0.0, 0.5]  # the first call sets the value
    updater.accumulate_signed("weight", row(SECOND))
    positive, negative = updater.pending("weight")
    expected_positive, expected_negative = SIGNED_EXPECTED[reduction]
    assert positive[0].tolist() == expected_positive
    assert negative[0].tolist() == expected_negative
    assert updater.count("weight") == (2, 2)
    updater.apply()
    assert layer.weight[0].tolist() == [1.0 + p - n for p, n in zip(expected_positive, expected_negative, strict=True)]


def test_accumulate_signed_after_plain_accumulate_adds_to_it() -> None:
    updater = Updater(make_linear([0.0, 0.0]))
    updater.accumulate("weight", potentiation=row([1.0, 0.0]))  # depression stays empty
    updater.accumulate_signed("weight", row([-2.0, 3.0]))
    positive, negative = updater.pending("weight")
    assert positive[0].tolist() == [1.0, 3.0]
    assert negative[0].tolist() == [2.0, 0.0]
    assert updater.count("weight") == (2, 1)


@given(st.lists(st.tuples(finite32, finite32), min_size=1, max_size=9))
def test_apply_adds_exactly_w_plus_p_minus_n(pairs: list[tuple[float, float]]) -> None:
    weights = [w for w, _ in pairs]
    change = [d for _, d in pairs]
    layer = make_linear(weights)
    updater = Updater(layer)
    updater.accumulate_signed("weight", row(change))
    updater.apply()
    positive, negative = parts(change)
    expected = [
        float(np.float32(w) + (np.float32(p) - np.float32(n)))
        for w, p, n in zip(weights, positive, negative, strict=True)
    ]
    assert layer.weight[0].tolist() == expected
    # everything cleared
    pending_positive, pending_negative = updater.pending("weight")
    assert pending_positive.abs().sum().item() == 0.0 and pending_negative.abs().sum().item() == 0.0
    assert updater.count("weight") == (0, 0)


def test_in_place_apply_equals_the_general_path() -> None:
    """No bounding and kind "none" (in place) against an all-True mask (general path), by hand."""
    weights, positive, negative = [0.5, -1.0, 2.0, 0.1], [0.3, 0.0, 1.5, 0.7], [0.1, 0.2, 0.0, 0.4]
    expected = [
        float(np.float32(w) + (np.float32(p) - np.float32(n)))
        for w, p, n in zip(weights, positive, negative, strict=True)
    ]
    settings = ({}, {"bounding": Bounding("none")}, {"mask": {"weight": torch.ones(1, 4, dtype=torch.bool)}})
    for setting in settings:
        layer = make_linear(weights)
        updater = Updater(layer, **setting)  # type: ignore[arg-type]
        updater.accumulate("weight", row(positive), row(negative))
        updater.apply()
        assert layer.weight[0].tolist() == expected
        assert updater.count("weight") == (0, 0)


def test_soft_bounding_and_mask_take_the_general_path() -> None:
    layer = make_linear([0.25, 0.5, 0.75], dtype=torch.float64)
    mask = {"weight": torch.tensor([[True, False, True]])}
    updater = Updater(layer, bounding=Bounding("soft", w_min=0.0, w_max=1.0), mask=mask)
    updater.accumulate_signed("weight", row([0.5, 0.5, -0.5], torch.float64))
    updater.apply()
    # soft: dw = (1 - w) * p - (w - 0) * n; the masked synapse keeps its weight
    assert layer.weight[0].tolist() == [0.25 + 0.75 * 0.5, 0.5, 0.75 - 0.75 * 0.5]


def test_integer_parameter_rounds_the_change() -> None:
    holder = nn.Module()
    holder.register_buffer("count", torch.tensor([1, 2, 3]))
    updater = Updater(holder, ("count",))
    updater.accumulate_signed("count", torch.tensor([0.6, -1.4, 0.0]))
    positive, negative = updater.pending("count")
    assert positive.tolist() == pytest.approx([0.6, 0.0, 0.0])
    assert negative.tolist() == pytest.approx([0.0, 1.4, 0.0])
    updater.apply()
    assert holder.count.tolist() == [2, 1, 3]  # round(0.6) = 1, round(-1.4) = -1


def test_an_accumulator_passed_back_is_read_before_it_is_written() -> None:
    updater = Updater(make_linear([0.0, 0.0]))
    updater.accumulate_signed("weight", row([1.0, -2.0]))
    updater.accumulate_signed("weight", updater.weight_potentiation)  # [[1, 0]] once more
    positive, negative = updater.pending("weight")
    assert positive[0].tolist() == [2.0, 0.0]
    assert negative[0].tolist() == [0.0, 2.0]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (row([float("nan"), 1.0]), ValueError, "^change: expected finite"),
        (row([1.0, float("inf")]), ValueError, "^change: expected finite"),
        (row([-float("inf"), 1.0]), ValueError, "^change: expected finite"),
        (torch.zeros(2, 1), ValueError, "^change: expected shape"),
        (row([1.0, 2.0], torch.float64), TypeError, "^change: expected dtype"),
        (torch.tensor([[True, False]]), TypeError, "^change: expected a real"),
        ([[1.0, 2.0]], TypeError, "^change: expected a torch.Tensor"),
    ],
)
def test_bad_change_raises_and_leaves_state_unchanged(change: object, error: type, message: str) -> None:
    layer = make_linear([0.5, 0.5])
    updater = Updater(layer)
    with pytest.raises(error, match=message):
        updater.accumulate_signed("weight", change)  # type: ignore[arg-type]
    assert updater.count("weight") == (0, 0)
    assert updater.weight_potentiation.abs().sum().item() == 0.0
    assert updater.weight_depression.abs().sum().item() == 0.0
    # and on top of a pending call
    updater.accumulate_signed("weight", row([1.0, -1.0]))
    with pytest.raises(error, match=message):
        updater.accumulate_signed("weight", change)  # type: ignore[arg-type]
    assert updater.count("weight") == (1, 1)
    assert updater.weight_potentiation[0].tolist() == [1.0, 0.0]
    assert updater.weight_depression[0].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"^name"):
        updater.accumulate_signed("bias", row([1.0, 1.0]))


def test_stdp_one_product_splits_the_net_change() -> None:
    """One pre spike at step 0, one post spike at step 2 and one pre spike at step 3 (dt 1).

    Potentiation of synapse (0, 1): eta_post * exp(-2/tau_pre); depression of
    synapse (0, 2) (pre at step 3, post trace exp(-1/tau_post)): eta_pre * exp(-1/tau_post).
    """
    cell = make_scripted_cell(None, 1, 1.0, weight_init=(0.0, 0.0))
    trainer = STDP(eta_post=0.3, eta_pre=0.2, tau_pre=4.0, tau_post=8.0)
    trainer.register_cell("c", cell)
    assert trainer.uses_one_product(trainer.get_unit("c"))
    pre = torch.zeros(4, 1, 3, dtype=torch.bool)
    post = torch.zeros(4, 1, 2, dtype=torch.bool)
    pre[0, 0, 1] = True
    post[2, 0, 0] = True
    pre[3, 0, 2] = True
    run(cell, pre, post)
    trainer()
    positive, negative = cell.updater.pending("weight")
    expected_positive = torch.zeros(2, 3, dtype=positive.dtype)
    expected_negative = torch.zeros(2, 3, dtype=positive.dtype)
    expected_positive[0, 1] = 0.3 * math.exp(-2.0 / 4.0)
    expected_negative[0, 2] = 0.2 * math.exp(-1.0 / 8.0)
    torch.testing.assert_close(positive, expected_positive, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(negative, expected_negative, rtol=1e-12, atol=1e-15)
    assert cell.updater.count("weight") == (1, 1)
    trainer.update()
    torch.testing.assert_close(
        cell.connection.weight.detach(), expected_positive - expected_negative, rtol=1e-12, atol=1e-15
    )


def test_stdp_bounded_change_skips_the_finiteness_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window whose pair_change_bound is far below the dtype's largest value is accumulated without
    the pass over the change (known_finite); the same values as the checked path."""
    import plastic.neural.updater as updater_module

    values = {}
    for skip in (True, False):
        cell = make_scripted_cell(None, 1, 1.0, weight_init=(0.0, 0.0))
        trainer = STDP(eta_post=0.3, eta_pre=0.2, tau_pre=4.0, tau_post=8.0)
        trainer.register_cell("c", cell)
        generator = torch.Generator().manual_seed(3)
        run(cell, torch.rand(6, 1, 3, generator=generator) < 0.5, torch.rand(6, 1, 2, generator=generator) < 0.5)
        passes: list[int] = []
        checked = updater_module.all_finite
        monkeypatch.setattr(
            updater_module,
            "all_finite",
            lambda tensor, passes=passes, checked=checked: passes.append(tensor.numel()) or checked(tensor),
        )
        if not skip:  # the checked path: a bound that proves nothing
            monkeypatch.setattr(STDP, "_bounded_change", staticmethod(lambda *args: False))
        trainer()
        monkeypatch.undo()
        assert passes == ([] if skip else [6])
        values[skip] = cell.updater.pending("weight")
    assert all(torch.equal(a, b) for a, b in zip(values[True], values[False], strict=True))


def test_stdp_overflowing_change_is_refused_before_any_state_changes() -> None:
    cell = make_scripted_cell(None, 1, 1.0, weight_init=(0.0, 0.0))
    trainer = STDP(eta_post=1e308, eta_pre=1.0, tau_pre=4.0, tau_post=8.0)
    trainer.register_cell("c", cell)
    pre = torch.ones(3, 1, 3, dtype=torch.bool)
    post = torch.ones(3, 1, 2, dtype=torch.bool)
    run(cell, pre, post)
    with pytest.raises(ValueError, match=r"^change: expected finite"):
        trainer()
    assert cell.updater.count("weight") == (0, 0)
    state = trainer.get_unit("c").state
    assert state.trace_pre.abs().sum().item() == 0.0 and state.trace_post.abs().sum().item() == 0.0


# ------------------------------------------------ the deferred split (issue 15)


@given(
    st.lists(finite32, min_size=1, max_size=9),
    st.sampled_from(["pending", "state_dict", "attribute", "accumulate", "signed_again", "apply", "delta", "load"]),
)
def test_a_pending_net_change_reads_as_its_two_parts_everywhere(values: list[float], read: str) -> None:
    """The first signed change after a clear is kept whole until read; every read sees the parts."""
    weights = [0.25] * len(values)
    layer = make_linear(weights)
    updater = Updater(layer)
    updater.accumulate_signed("weight", row(values))
    positive, negative = parts(values)
    if read in PLAIN_READS:
        got_positive, got_negative = read_parts(updater, read)
    elif read == "accumulate":
        updater.accumulate("weight", potentiation=row([1.0] * len(values)), depression=row([2.0] * len(values)))
        positive = [float(np.float32(p) + np.float32(1.0)) for p in positive]
        negative = [float(np.float32(n) + np.float32(2.0)) for n in negative]
        got_positive, got_negative = updater.pending("weight")
    elif read == "signed_again":
        updater.accumulate_signed("weight", row(values))
        positive = [float(np.float32(p) * 2) for p in positive]
        negative = [float(np.float32(n) * 2) for n in negative]
        got_positive, got_negative = updater.pending("weight")
    elif read == "delta":
        expected = [float(np.float32(p) - np.float32(n)) for p, n in zip(positive, negative, strict=True)]
        assert updater.delta("weight")[0].tolist() == expected
        return
    elif read == "load":
        other = Updater(make_linear(weights))
        other.load_state_dict(updater.state_dict())
        got_positive, got_negative = other.pending("weight")
    else:
        updater.apply()
        expected = [
            float(np.float32(w) + (np.float32(p) - np.float32(n)))
            for w, p, n in zip(weights, positive, negative, strict=True)
        ]
        assert layer.weight[0].tolist() == expected
        assert updater.count("weight") == (0, 0)
        got_positive, got_negative = updater.pending("weight")
        positive, negative = [0.0] * len(values), [0.0] * len(values)
    assert got_positive[0].tolist() == positive
    assert got_negative[0].tolist() == negative


def test_loading_a_checkpoint_replaces_a_pending_net_change() -> None:
    source = Updater(make_linear([0.0, 0.0]))
    source.accumulate("weight", potentiation=row([3.0, 0.0]), depression=row([0.0, 1.0]))
    target = Updater(make_linear([0.0, 0.0]))
    target.accumulate_signed("weight", row([-5.0, 7.0]))
    target.load_state_dict(source.state_dict())
    positive, negative = target.pending("weight")
    assert positive[0].tolist() == [3.0, 0.0] and negative[0].tolist() == [0.0, 1.0]


def test_change_buffer_takes_a_change_computed_in_place() -> None:
    layer = make_linear([0.5, 0.5])
    updater = Updater(layer)
    buffer = updater.change_buffer("weight")
    assert buffer is not None and buffer.shape == (1, 2)
    buffer.copy_(row([2.0, -3.0]))
    updater.accumulate_signed("weight", buffer)
    assert updater.count("weight") == (1, 1)
    positive, negative = updater.pending("weight")
    assert positive[0].tolist() == [2.0, 0.0] and negative[0].tolist() == [0.0, 3.0]
    assert updater.change_buffer("weight") is None  # not empty any more
    updater.apply()
    assert layer.weight[0].tolist() == [2.5, -2.5]
    # a refused change computed in the buffer leaves the accumulators empty
    buffer = updater.change_buffer("weight")
    assert buffer is not None
    buffer.copy_(row([float("nan"), 1.0]))
    with pytest.raises(ValueError, match=r"^change: expected finite"):
        updater.accumulate_signed("weight", buffer)
    assert updater.count("weight") == (0, 0)
    assert updater.weight_potentiation.abs().sum().item() == 0.0
    assert updater.weight_depression.abs().sum().item() == 0.0
    with pytest.raises(ValueError, match=r"^name"):
        updater.change_buffer("bias")


def test_a_lent_buffer_is_checked_against_the_parameter_as_it_is_now() -> None:
    """The buffer change_buffer lent, passed back after the parameter changed dtype or shape: refused as
    any change of another dtype or shape is, nothing accumulated."""
    layer = make_linear([0.5, 0.5])
    updater = Updater(layer)
    buffer = updater.change_buffer("weight")
    assert buffer is not None
    buffer.copy_(row([1.0, -1.0]))
    layer.to(torch.float64)
    with pytest.raises(TypeError, match=r"^change: expected dtype torch.float64"):
        updater.accumulate_signed("weight", buffer)
    assert updater.count("weight") == (0, 0)
    layer.to(torch.float32)
    buffer = updater.change_buffer("weight")
    assert buffer is not None
    layer.weight = torch.nn.Parameter(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"^change"):
        updater.accumulate_signed("weight", buffer)
    assert updater.count("weight") == (0, 0)


def test_an_owned_change_becomes_the_empty_accumulator() -> None:
    """owned=True: a change laid out like the empty accumulator is kept as it is (no copy), with the
    values a copied one has; a change in another layout, a view of a larger storage, or one given to
    accumulators that hold something is copied or reduced as without owned."""
    layer = make_linear([0.5, 0.5, 0.5])
    updater = Updater(layer)
    change = row([2.0, -3.0, 0.0])
    updater.accumulate_signed("weight", change, owned=True)
    assert updater._stored("weight", "potentiation").data_ptr() == change.data_ptr()
    assert updater.count("weight") == (1, 1)
    positive, negative = updater.pending("weight")
    assert positive[0].tolist() == [2.0, 0.0, 0.0] and negative[0].tolist() == [0.0, 3.0, 0.0]
    updater.apply()
    assert layer.weight[0].tolist() == [2.5, -2.5, 0.5]
    # not empty any more: a second owned change is reduced into the accumulators (sum)
    updater.accumulate_signed("weight", row([1.0, 1.0, 1.0]))
    second = row([-4.0, 0.5, 1.0])
    updater.accumulate_signed("weight", second, owned=True)
    assert updater._stored("weight", "potentiation").data_ptr() != second.data_ptr()
    positive, negative = updater.pending("weight")
    assert positive[0].tolist() == [1.0, 1.5, 2.0] and negative[0].tolist() == [4.0, 0.0, 0.0]
    updater.clear()
    # a view of a larger storage, and a transposed layout, are copied
    larger = torch.tensor([[7.0, -1.0, 2.0, 9.0]])[:, :3]
    updater.accumulate_signed("weight", larger, owned=True)
    assert updater._stored("weight", "potentiation").data_ptr() != larger.data_ptr()
    assert updater.pending("weight")[0][0].tolist() == [7.0, 0.0, 2.0]
    updater.clear()
    transposed = torch.tensor([[1.0], [-2.0], [3.0]]).T  # strides (1, 1): another layout than (3, 1)
    updater.accumulate_signed("weight", transposed, owned=True)
    assert updater._stored("weight", "potentiation").data_ptr() != transposed.data_ptr()
    assert updater.pending("weight")[1][0].tolist() == [0.0, 2.0, 0.0]


@given(
    st.lists(finite32, min_size=1, max_size=9),
    st.sampled_from(["apply", "clear"]),
    st.sampled_from(["pending", "state_dict", "attribute", "accumulate", "signed", "in_buffer", "delta", "apply"]),
)
def test_an_applied_net_change_reads_as_zeros_everywhere(values: list[float], how: str, read: str) -> None:
    """After apply() or clear() the whole change stays in its buffer until read: every read sees zeros."""
    weights = [0.25] * len(values)
    layer = make_linear(weights)
    updater = Updater(layer)
    updater.accumulate_signed("weight", row(values))
    if how == "apply":
        updater.apply()
        weights = [float(np.float32(w) + np.float32(v)) for w, v in zip(weights, values, strict=True)]
    else:
        updater.clear()
    assert updater.count("weight") == (0, 0) and not updater.has_pending()
    zeros = [0.0] * len(values)
    positive, negative = zeros, zeros
    if read in PLAIN_READS:
        got_positive, got_negative = read_parts(updater, read)
    elif read == "accumulate":
        updater.accumulate("weight", potentiation=row([1.0] * len(values)), depression=row([2.0] * len(values)))
        positive, negative = [1.0] * len(values), [2.0] * len(values)
        got_positive, got_negative = updater.pending("weight")
    elif read == "signed":
        updater.accumulate_signed("weight", row([-1.0] * len(values)))
        positive, negative = zeros, [1.0] * len(values)
        got_positive, got_negative = updater.pending("weight")
    elif read == "in_buffer":
        buffer = updater.change_buffer("weight")
        assert buffer is not None
        buffer.copy_(row([3.0] * len(values)))
        updater.accumulate_signed("weight", buffer)
        positive = [3.0] * len(values)
        got_positive, got_negative = updater.pending("weight")
    elif read == "delta":
        assert updater.delta("weight")[0].tolist() == zeros
        return
    else:
        updater.apply()  # nothing pending: the weight stays
        assert layer.weight[0].tolist() == weights
        got_positive, got_negative = updater.pending("weight")
    assert layer.weight[0].tolist() == weights
    assert got_positive[0].tolist() == positive
    assert got_negative[0].tolist() == negative
