"""Winner-take-all across feature maps: the functional competition against a
brute-force reference written with plain Python loops, and the WinnerTakeAll
neuron wrapper (first spikes, per-position and k-winners inhibition, window =
steps, state, bad input, a cell learning from its winners only)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic import Bounding, Cell, Conv2d, KernelSTDP, LinearDense
from plastic.functional.competition import dilate_positions, k_winners, position_winners
from plastic.functional.kernels import rectangular
from plastic.neural.competition import Competition, WinnerTakeAll
from plastic.neural.neurons import IF, LIF, AdaptiveLIF

# ----------------------------------------------------------------- references


def reference_k_winners(score, candidates, blocked, left, radius):
    """Greedy picks over every (sample, map, position), one element at a time."""
    batch, maps = score.shape[:2]
    spatial = score.shape[2:]
    positions = list(itertools.product(*(range(n) for n in spatial)))
    winners = torch.zeros_like(candidates)
    blocked = blocked.clone()
    left = left.clone()
    for b in range(batch):
        while left[b] > 0:
            best, best_key = None, None
            for c in range(maps):
                for p in positions:
                    if candidates[(b, c, *p)] and not blocked[(b, c, *p)]:
                        # the highest score, then the lowest flat index
                        key = (-float(score[(b, c, *p)]), c, p)
                        if best_key is None or key < best_key:
                            best, best_key = (c, p), key
            if best is None:
                break
            c, p = best
            winners[(b, c, *p)] = True
            left[b] -= 1
            for q in positions:
                blocked[(b, c, *q)] = True  # its own map everywhere
            if spatial:
                for q in positions:
                    if max(abs(i - j) for i, j in zip(p, q, strict=True)) <= radius:
                        for other in range(maps):
                            blocked[(b, other, *q)] = True
    return winners, blocked, left


def reference_position_winners(score, candidates, blocked):
    batch, maps = score.shape[:2]
    spatial = score.shape[2:]
    winners = torch.zeros_like(candidates)
    blocked = blocked.clone()
    for b in range(batch):
        for p in itertools.product(*(range(n) for n in spatial)):
            eligible = [c for c in range(maps) if candidates[(b, c, *p)] and not blocked[(b, c, *p)]]
            if eligible:
                best = max(eligible, key=lambda c: (float(score[(b, c, *p)]), -c))
                winners[(b, best, *p)] = True
                for c in range(maps):
                    blocked[(b, c, *p)] = True
    return winners, blocked


@st.composite
def groups(draw):
    batch = draw(st.integers(1, 3))
    maps = draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    shape = (batch, maps, *spatial)
    size = math.prod(shape)
    # few distinct score values, so that ties happen
    score = torch.tensor(draw(st.lists(st.integers(-2, 2), min_size=size, max_size=size)), dtype=torch.float64)
    candidates = torch.tensor(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    blocked = torch.tensor(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    left = torch.tensor(draw(st.lists(st.integers(0, 5), min_size=batch, max_size=batch)), dtype=torch.int64)
    radius = draw(st.integers(0, 2))
    return score.reshape(shape), candidates.reshape(shape), (blocked & draw(st.booleans())).reshape(shape), left, radius


@settings(max_examples=60, deadline=None)
@given(group=groups())
def test_k_winners_matches_the_greedy_reference(group):
    score, candidates, blocked, left, radius = group
    got = k_winners(score, candidates, blocked, left, radius)
    expected = reference_k_winners(score, candidates, blocked, left, radius)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)
    winners = got[0]
    assert bool((winners <= candidates & ~blocked).all())  # only unblocked candidates win
    assert bool((winners.reshape(*winners.shape[:2], -1).sum(2) <= 1).all())  # one winner per map
    assert bool((winners.flatten(1).sum(1) <= left).all())


@settings(max_examples=60, deadline=None)
@given(group=groups())
def test_position_winners_matches_the_reference(group):
    score, candidates, blocked, _left, _radius = group
    got = position_winners(score, candidates, blocked)
    expected = reference_position_winners(score, candidates, blocked)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)


def test_k_winners_by_hand():
    # two maps on a 1x4 row; the best candidate (map 1, x=1) blocks map 1 and x in 0..2 of every map
    score = torch.tensor([[[[5.0, 1.0, 2.0, 3.0]], [[0.0, 9.0, 0.0, 4.0]]]])
    candidates = torch.tensor([[[[True, False, True, True]], [[False, True, False, True]]]])
    blocked = torch.zeros_like(candidates)
    winners, blocked, left = k_winners(score, candidates, blocked, torch.tensor([5]), radius=1)
    assert winners.nonzero().tolist() == [[0, 0, 0, 3], [0, 1, 0, 1]]
    assert left.tolist() == [3]
    assert bool(blocked.all())


def test_dilate_positions_is_a_chebyshev_square():
    mask = torch.zeros(1, 5, 5, dtype=torch.bool)
    mask[0, 2, 2] = True
    assert dilate_positions(mask, 1)[0].nonzero().tolist() == [[i, j] for i in (1, 2, 3) for j in (1, 2, 3)]
    assert int(dilate_positions(mask, 2).sum()) == 25
    line = torch.tensor([[False, True, False, False, False]])
    assert dilate_positions(line, 1).tolist() == [[True, True, True, False, False]]
    assert torch.equal(dilate_positions(line, 0), line)


def test_functional_bad_input():
    score = torch.zeros(1, 2, 3)
    good = torch.zeros(1, 2, 3, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"^candidates"):
        position_winners(score, good.float(), good)
    with pytest.raises(ValueError, match=r"^blocked"):
        position_winners(score, good, good[:, :1])
    with pytest.raises(TypeError, match=r"^score"):
        position_winners(good, good, good)
    with pytest.raises(ValueError, match=r"^radius"):
        k_winners(score, good, good, torch.tensor([1]), -1)
    with pytest.raises(TypeError, match=r"^winners_left"):
        k_winners(score, good, good, torch.tensor([1.0]), 0)
    with pytest.raises(ValueError, match=r"^winners_left"):
        k_winners(score, good, good, torch.tensor([-1]), 0)


# ------------------------------------------------------------------ the module


def test_each_neuron_fires_once_and_losers_at_a_position_are_silenced():
    group = WinnerTakeAll(IF((2, 3), v_threshold=1.0), per_position=True)
    drive = torch.zeros(1, 2, 3)
    drive[0, 0] = torch.tensor([2.0, 1.0, 0.0])
    drive[0, 1] = torch.tensor([1.5, 3.0, 0.0])
    first = group(drive)
    # position 0: map 0 (potential 2 > 1.5); position 1: map 1 (3 > 1)
    assert first[0].tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    second = group(drive)
    assert not bool(second.any())  # winners fired once, losers were inhibited at their position
    group.reset()
    assert torch.equal(group(drive), first)


def test_without_competition_the_first_spikes_pass():
    group = WinnerTakeAll(IF(3, v_threshold=1.0), once=True)
    drive = torch.tensor([[1.0, 0.5, 2.0]])
    assert group(drive).tolist() == [[1.0, 0.0, 1.0]]
    assert group(drive).tolist() == [[0.0, 1.0, 0.0]]  # the second input crosses now; the others fired
    repeat = WinnerTakeAll(IF(3, v_threshold=1.0), once=False)
    assert repeat(drive).tolist() == [[1.0, 0.0, 1.0]]
    assert repeat(drive).tolist() == [[1.0, 1.0, 1.0]]


def test_the_score_is_the_charge_above_threshold():
    # LIF (tau 2 steps): H = V + (X - V)/2; the first input crosses with a smaller drive but a higher charge
    neuron = LIF(2, tau=2.0, v_threshold=1.0)
    group = WinnerTakeAll(neuron, k=1)
    group(torch.tensor([[1.8, 0.0]]))  # V = 0.9, 0: neither fires
    out = group(torch.tensor([[1.2, 2.2]]))  # H = 0.9 + 0.15 = 1.05 vs 1.1: the second wins
    assert out.tolist() == [[0.0, 1.0]]
    adaptive = AdaptiveLIF(2, tau=2.0, v_threshold=1.0, theta_plus=0.5)
    adaptive.theta.copy_(torch.tensor([0.0, 0.2]))
    group = WinnerTakeAll(adaptive, k=1)
    out = group(torch.tensor([[2.6, 2.8]]))  # H = 1.3, 1.4; above threshold + theta: 0.3 vs 0.2
    assert out.tolist() == [[1.0, 0.0]]


def test_window_equals_steps_and_state_round_trips():
    torch.manual_seed(0)
    drive = torch.rand(6, 2, 3, 4, 4) * 0.8
    single = WinnerTakeAll(IF((3, 4, 4), v_threshold=1.0, batch_size=2), k=3, radius=1)
    steps = torch.stack([single(x) for x in drive])
    window = WinnerTakeAll(IF((3, 4, 4), v_threshold=1.0, batch_size=2), k=3, radius=1, step_mode="window")
    assert torch.equal(window(drive), steps)
    assert torch.equal(window.spike, steps != 0)
    assert bool((steps.sum(dim=(0, 2, 3, 4)) <= 3).all())
    copy = WinnerTakeAll(IF((3, 4, 4), v_threshold=1.0, batch_size=2), k=3, radius=1)
    copy.load_state_dict(single.state_dict())
    assert torch.equal(copy.blocked, single.blocked) and torch.equal(copy.winners_left, single.winners_left)
    assert torch.equal(copy.voltage, single.voltage)
    assert torch.equal(copy(drive[0]), single(drive[0]))
    moved = single.to(torch.float64)
    assert moved.voltage.dtype == torch.float64 and moved.blocked.dtype == torch.bool


def test_batch_size_and_competition_changes_reset_the_competition():
    group = WinnerTakeAll(IF((2, 2), v_threshold=1.0), k=1)
    group(torch.ones(1, 2, 2) * 2)
    assert group.winners_left.tolist() == [0]
    group.batch_size = 3
    assert group.blocked.shape == (3, 2, 2) and group.winners_left.tolist() == [1, 1, 1]
    group.competition = Competition(k=2)
    assert group.winners_left.tolist() == [2, 2, 2]
    assert group.competition.k == 2


def test_bad_arguments_and_inputs():
    with pytest.raises(TypeError, match=r"^neuron"):
        WinnerTakeAll(torch.nn.Identity())
    with pytest.raises(ValueError, match=r"^k"):
        Competition(k=0)
    with pytest.raises(ValueError, match=r"^radius"):
        Competition(radius=-1)
    with pytest.raises(ValueError, match=r"^competition"):
        WinnerTakeAll(IF(2), Competition(), k=1)
    with pytest.raises(TypeError, match=r"^competition"):
        WinnerTakeAll(IF(2)).competition = {"k": 1}
    group = WinnerTakeAll(IF((2, 3)), k=1)
    group(torch.ones(1, 2, 3) * 0.5)
    before = {name: value.clone() for name, value in group.state_dict().items()}
    with pytest.raises(ValueError, match=r"^inputs"):
        group(torch.ones(1, 3, 2))
    with pytest.raises(ValueError, match=r"^inputs"):
        group(torch.full((1, 2, 3), math.nan))
    for name, value in group.state_dict().items():
        assert torch.equal(value, before[name]), name
    group.step_mode = "window"
    with pytest.raises(ValueError, match=r"^inputs"):
        group(torch.ones(1, 2, 3))


def test_a_cell_learns_from_the_winners_only():
    """Dense layer of 3 neurons, k = 1: only the winner's row changes, by the first-spike rule."""
    connection = LinearDense(4, 3, weight_init=(0.5, 0.5), step_mode="window")
    with torch.no_grad():
        connection.weight[1] = 0.6  # neuron 1 charges fastest
    cell = Cell(connection, WinnerTakeAll(IF(3, v_threshold=1.0), k=1, step_mode="window"))
    cell.make_updater(bounding=Bounding("logistic", w_min=0.0, w_max=1.0))
    trainer = KernelSTDP(
        kernel_post=rectangular, kernel_post_kwargs={"amplitude": 0.1, "start": 0.0, "stop": math.inf},
        kernel_pre=rectangular, kernel_pre_kwargs={"amplitude": -0.05, "start": -math.inf, "stop": 0.0},
        unfired_pre="late", batch_reduction="sum",
    )  # fmt: skip
    trainer.register_cell("layer", cell)
    spikes = torch.zeros(4, 1, 4, dtype=torch.bool)
    spikes[0, 0, 0] = spikes[1, 0, 1] = True  # inputs 0, 1 at steps 0, 1 (neuron 1 fires at step 1)
    spikes[3, 0, 2] = True  # input 2 after the winner; input 3 never
    with torch.no_grad():
        out = cell(spikes)
        trainer()
        trainer.update()
    assert out[:, 0].nonzero().tolist() == [[1, 1]]
    weight = connection.weight.detach()
    assert torch.allclose(weight[[0, 2]], torch.full((2, 4), 0.5))
    up = 0.6 + 0.1 * 0.6 * 0.4
    down = 0.6 - 0.05 * 0.6 * 0.4
    assert torch.allclose(weight[1], torch.tensor([up, up, down, down]))


def test_conv_cell_with_competition_runs_in_a_cell():
    connection = Conv2d(1, 4, 3, in_size=(6, 6), batch_size=2, step_mode="window")
    cell = Cell(connection, WinnerTakeAll(IF((4, 4, 4), v_threshold=0.5, batch_size=2), k=2, step_mode="window"))
    out = cell(torch.rand(5, 2, 1, 6, 6) < 0.5)
    assert out.shape == (5, 2, 4, 4, 4)
    assert bool((out.sum(dim=(0, 2, 3, 4)) <= 2).all())
    assert bool((out.sum(dim=(0, 3, 4)) <= 1).all())  # one winner per map and sample
