"""Competition between feature maps: who fires when several neurons cross the threshold.

A neuron group ``[C, *spatial]`` is ``C`` feature maps over the positions of
``spatial`` (a convolution's output; ``spatial = ()`` for a plain group of
``C`` neurons). In a step, the ``candidates`` are the neurons whose potential
crossed the threshold; ``score`` ranks them (the potential above threshold:
among neurons that cross in the same step, the most strongly driven would have
crossed first in continuous time). Ties go to the lowest flat index.

Two kinds of lateral inhibition (Kheradpisheh, Ganjtabesh, Thorpe & Masquelier
2018, Neural Netw. 99:56, section 2.3-2.4; Masquelier & Thorpe 2007, PLoS
Comput. Biol. 3:e31):

* per position (:func:`position_winners`): at each position only one map
  fires, the best-scored candidate; the others at that position are inhibited
  for the rest of the presentation (the paper's inference-time inhibition).
* k winners (:func:`k_winners`): during learning at most ``k`` neurons win per
  sample over a presentation, at most one per map; each winner inhibits its
  own map everywhere and every map within ``radius`` positions of its own
  (Chebyshev distance, a ``(2 radius + 1)``-wide square), so that different
  maps learn different features at different places. Winners are picked
  greedily, best score first, each pick removing what it inhibits.

Both are pure: they take the ``blocked`` neurons (inhibited earlier in the
presentation) and return the winners with the new ``blocked``.
:class:`plastic.neural.competition.WinnerTakeAll` keeps that state across the
steps of a presentation around any neuron module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from plastic.functional.validation import check_int_at_least, check_tensor

__all__ = ["dilate_positions", "k_winners", "position_winners"]


def _check_group(score: Tensor, candidates: Tensor, blocked: Tensor) -> int:
    """Common checks; returns the number of spatial dimensions."""
    check_tensor(score, "score", floating=True, min_ndim=2)
    for name, value in (("candidates", candidates), ("blocked", blocked)):
        check_tensor(value, name, shape=tuple(score.shape), device=score.device)
        _check_bool(value, name)
    spatial = score.ndim - 2
    if spatial > 2:
        raise ValueError(f"score: expected [B, C], [B, C, L] or [B, C, H, W], got {score.ndim} dimensions")
    return spatial


def _check_bool(value: Tensor, name: str) -> None:
    if value.dtype != torch.bool:
        raise TypeError(f"{name}: expected a bool tensor, got dtype {value.dtype}")


def dilate_positions(mask: Tensor, radius: int) -> Tensor:
    """Every position within Chebyshev distance ``radius`` of a True one: bool ``[B, *spatial]``.

    ``mask`` is ``[B, *spatial]`` with one or two spatial dimensions (none:
    returned as it is). A max pool of width ``2 radius + 1``, stride 1.
    """
    check_tensor(mask, "mask", min_ndim=1)
    _check_bool(mask, "mask")
    radius = check_int_at_least(radius, "radius", 0)
    spatial = mask.ndim - 1
    if spatial == 0 or radius == 0:
        return mask.clone()
    if spatial > 2:
        raise ValueError(f"mask: expected [B], [B, L] or [B, H, W], got {mask.ndim} dimensions")
    pool = F.max_pool1d if spatial == 1 else F.max_pool2d
    width = 2 * radius + 1
    dtype = torch.float32 if mask.device.type == "cpu" else torch.float16
    return pool(mask.unsqueeze(1).to(dtype), width, stride=1, padding=radius).squeeze(1) > 0


def position_winners(score: Tensor, candidates: Tensor, blocked: Tensor) -> tuple[Tensor, Tensor]:
    """One winner per sample and position among the candidate maps; the position is then closed.

    Args:
        score: ranking of the neurons ``[B, C, *spatial]`` (floating).
        candidates: bool, the neurons that crossed the threshold this step.
        blocked: bool, the neurons inhibited earlier in the presentation (they cannot win).

    Returns:
        ``(winners, blocked)``: the winners (bool, at most one per ``(b,
        position)``: the best-scored unblocked candidate) and ``blocked`` with
        every map at each winner's position added (the winner included).
        With ``spatial = ()`` there is one position: one winner per sample.
    """
    _check_group(score, candidates, blocked)
    eligible = candidates & ~blocked
    masked = score.masked_fill(~eligible, -math.inf)
    best = masked.argmax(dim=1, keepdim=True)  # [B, 1, *spatial]; the lowest map on ties
    has_winner = eligible.any(dim=1, keepdim=True)
    winners = torch.zeros_like(eligible).scatter_(1, best, True) & has_winner
    return winners, blocked | has_winner.expand_as(blocked)


def k_winners(
    score: Tensor, candidates: Tensor, blocked: Tensor, winners_left: Tensor, radius: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Up to ``winners_left[b]`` winners per sample, at most one per map, with local inhibition.

    Greedy, best score first: each winner blocks its own map at every position
    and every map within Chebyshev distance ``radius`` of its position (see the
    module docstring); without spatial dimensions a winner blocks only itself
    (a plain k-winners-take-all over ``C`` neurons). The loop runs once per pick (at most ``C`` times), each
    pick vectorised over the batch.

    Args:
        score, candidates, blocked: as :func:`position_winners`.
        winners_left: int ``[B]``, how many more winners each sample may have (>= 0).
        radius: inhibition radius in positions (>= 0; ignored without spatial dimensions).

    Returns:
        ``(winners, blocked, winners_left)`` after this step.
    """
    spatial = _check_group(score, candidates, blocked)
    radius = check_int_at_least(radius, "radius", 0)
    batch, maps = score.shape[:2]
    check_tensor(winners_left, "winners_left", shape=(batch,), device=score.device)
    if winners_left.is_floating_point() or winners_left.dtype == torch.bool:
        raise TypeError(f"winners_left: expected an integer tensor, got {winners_left.dtype}")
    if winners_left.numel() and bool((winners_left < 0).any()):
        raise ValueError("winners_left: expected values >= 0")
    eligible = candidates & ~blocked
    winners = torch.zeros_like(eligible)
    blocked = blocked.clone()
    left = winners_left.clone()
    map_dims = tuple(range(2, 2 + spatial))
    for _ in range(maps):  # one pick per pass; a map wins at most once
        open_samples = eligible.flatten(1).any(dim=1) & (left > 0)
        if not bool(open_samples.any()):
            break
        flat = score.masked_fill(~eligible, -math.inf).flatten(1)
        pick = torch.zeros_like(flat, dtype=torch.bool)
        pick.scatter_(1, flat.argmax(dim=1, keepdim=True), True)
        pick = pick.view_as(eligible) & open_samples.view((batch,) + (1,) * (eligible.ndim - 1))
        winners |= pick
        left -= open_samples.to(left.dtype)
        if spatial:
            own_map = pick.any(dim=map_dims, keepdim=True)
            inhibited = own_map | dilate_positions(pick.any(dim=1), radius).unsqueeze(1)
        else:
            inhibited = pick
        eligible &= ~inhibited
        blocked |= inhibited
    return winners, blocked, left
