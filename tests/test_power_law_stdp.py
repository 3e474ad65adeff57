"""Power-law weight dependence of Morrison, Aertsen & Diesmann (2007), NEST's
stdp_pl_synapse_hom: dw+ = lambda w0^(1-mu) w^mu x_pre, dw- = lambda alpha w x_post.

Expected values are hand-computed from those equations in plain Python floats
or come from the rule's closed-form fixed point, never from the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import F64, run
from helpers import make_cell as make_scripted_cell
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plastic import STDP
from plastic.functional.bounding import Bounding, power_law_lower, power_law_upper
from plastic.neural.updater import Updater


def test_factors_by_hand() -> None:
    w = torch.tensor([-1.0, 0.0, 0.25, 1.0, 4.0], dtype=F64)
    # w0 = 2, mu = 0.5: sqrt(2) * sqrt(max(w, 0)); alpha = 0.5: 0.5 * max(w, 0)
    root_two = math.sqrt(2.0)
    expected_upper = torch.tensor([0.0, 0.0, 0.5 * root_two, root_two, 2.0 * root_two], dtype=F64)
    expected_lower = torch.tensor([0.0, 0.0, 0.125, 0.5, 2.0], dtype=F64)
    torch.testing.assert_close(power_law_upper(w, w_reference=2.0, mu=0.5), expected_upper, rtol=1e-15, atol=0)
    torch.testing.assert_close(power_law_lower(w, alpha=0.5), expected_lower, rtol=1e-15, atol=0)
    bounding = Bounding("power_law", w_reference=2.0, mu=0.5, alpha=0.5)
    torch.testing.assert_close(bounding.upper_factor(w), expected_upper, rtol=1e-15, atol=0)
    torch.testing.assert_close(bounding.lower_factor(w), expected_lower, rtol=1e-15, atol=0)


def _cell_with_weight(value: float):
    cell = make_scripted_cell(None, 1, 0.5)
    with torch.no_grad():
        cell.connection.weight.fill_(value)
    return cell


@pytest.mark.parametrize("order", ["pre_then_post", "post_then_pre"])
def test_one_pair_through_the_trainer_and_updater(order: str) -> None:
    # mu = 0.4 (the paper's fit), w0 = 1.5, alpha = 0.8, w = 0.6, dt = 0.5, lag 2 steps = 1 time unit
    w, w0, mu, alpha = 0.6, 1.5, 0.4, 0.8
    eta_post, eta_pre, tau_pre, tau_post = 0.3, 0.2, 4.0, 8.0
    cell = _cell_with_weight(w)
    cell.make_updater(bounding=Bounding("power_law", w_reference=w0, mu=mu, alpha=alpha))
    trainer = STDP(eta_post=eta_post, eta_pre=eta_pre, tau_pre=tau_pre, tau_post=tau_post)
    trainer.register_cell("c", cell)
    pre = torch.zeros(3, 1, 3, dtype=torch.bool)
    post = torch.zeros(3, 1, 2, dtype=torch.bool)
    first, second = (0, 2)
    if order == "pre_then_post":
        pre[first, 0, 1], post[second, 0, 0] = True, True
        expected = w + w0 ** (1 - mu) * w**mu * eta_post * math.exp(-1.0 / tau_pre)
    else:
        post[first, 0, 0], pre[second, 0, 1] = True, True
        expected = w - alpha * w * eta_pre * math.exp(-1.0 / tau_post)
    run(cell, pre, post)
    trainer()
    cell.updater.apply()
    weight = cell.connection.weight.detach()
    assert weight[0, 1].item() == pytest.approx(expected, rel=1e-12)
    untouched = torch.ones_like(weight, dtype=torch.bool)
    untouched[0, 1] = False
    assert torch.all(weight[untouched] == w)


@settings(deadline=None, max_examples=25)
@given(
    mu=st.floats(0.1, 0.8),
    alpha=st.floats(0.2, 3.0),
    w_reference=st.floats(0.5, 2.0),
    ratio=st.floats(0.3, 3.0),
    start=st.floats(0.05, 5.0),
)
def test_weights_settle_at_the_closed_form_fixed_point(mu, alpha, w_reference, ratio, start) -> None:
    # constant potentiation P and depression N per batch: the fixed point of
    # w0^(1-mu) w^mu P = alpha w N is w* = w0 (P / (alpha N))^(1 / (1 - mu)), whatever the start
    fixed_point = w_reference * (ratio / alpha) ** (1.0 / (1.0 - mu))
    layer = nn.Linear(1, 1, bias=False).to(F64)
    with torch.no_grad():
        layer.weight.fill_(start * fixed_point)
    updater = Updater(layer, bounding=Bounding("power_law", w_reference=w_reference, mu=mu, alpha=alpha))
    # steps small enough that the iteration contracts: slope at w* is -eps alpha N (1 - mu)
    depression = 0.05 / alpha
    potentiation = ratio * depression
    for _ in range(1500):
        updater.accumulate(
            "weight", torch.full((1, 1), potentiation, dtype=F64), torch.full((1, 1), depression, dtype=F64)
        )
        updater.apply()
    assert layer.weight.item() == pytest.approx(fixed_point, rel=1e-6)


def test_bad_parameters_name_the_argument() -> None:
    with pytest.raises(ValueError, match="w_reference"):
        Bounding("power_law", w_reference=0.0)
    with pytest.raises(ValueError, match="alpha"):
        Bounding("power_law", alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        Bounding("soft", w_min=0.0, w_max=1.0, alpha=2.0)  # only power_law has alpha
    with pytest.raises(ValueError, match="w_reference"):
        Bounding("hard", w_min=0.0, w_max=1.0, w_reference=2.0)
    with pytest.raises(ValueError, match="mu"):
        power_law_upper(torch.ones(2, dtype=F64), mu=-0.5)
    with pytest.raises(TypeError, match="w"):
        power_law_lower([1.0, 2.0])  # type: ignore[arg-type]


def test_figure_script_writes_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from plastic.zoo.figures_power_law import main

    path = main(tmp_path, seconds=2)
    assert path.exists() and path.stat().st_size > 0
