"""Data-parallel plasticity over ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Each rank runs the same network on its shard of the batch; trainers write
potentiation and depression into the cells' updaters as usual; before the
update is applied the accumulators are all-reduced, so every rank applies the
identical change and the weights stay equal on all ranks::

    cell.make_updater(all_reduce=all_reduce_for("sum"), ...)   # Updater.sync() inside apply()
    trainer.register_cell("hidden", cell, batch_reduction="sum")
    with torch.no_grad():                                       # plasticity only: no autograd graph
        for batch in data:                                      # [T, B, ...]
            cell(shard_batch(batch, dim=1))
            trainer()
            trainer.update()                                    # all-reduce, then apply

The all-reduce must match the trainer's batch reduction so that the result
equals one process seeing the whole batch: a per-rank ``sum`` over samples
summed over ranks is the sum over the batch; a per-rank ``mean`` averaged over
ranks is the mean over the batch when the shards are equal
(:func:`shard_batch` requires it). Reductions that do not decompose this way
(``amax``, ``median``, callables) are refused by :func:`all_reduce_for`.

The transport is ``torch.distributed`` itself; this module only adds the
batch sharding, the choice of reduction and a start-of-run broadcast.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch.distributed as dist
from torch import Tensor, nn

from plastic.functional.validation import check_tensor

__all__ = ["all_reduce_for", "broadcast_state", "rank_and_world_size", "shard_batch"]


def rank_and_world_size(group: object | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group (``(0, 1)`` without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)  # type: ignore[arg-type]
    return 0, 1


def shard_batch(tensor: Tensor, rank: int | None = None, world_size: int | None = None, dim: int = 1) -> Tensor:
    """This rank's equal, contiguous share of the batch dimension ``dim`` of ``tensor``.

    ``dim`` is 1 for windows ``[T, B, ...]`` and 0 for steps ``[B, ...]``.
    ``rank`` and ``world_size`` default to the initialised process group's.
    Rank ``r`` gets samples ``[r*B/W, (r+1)*B/W)``. The batch must divide
    evenly: equal shards keep a ``mean`` all-reduce equal to the batch mean.
    Returns a view (no copy).
    """
    check_tensor(tensor, "tensor", min_ndim=1)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -tensor.ndim <= dim < tensor.ndim:
        raise ValueError(f"dim: expected an int in [{-tensor.ndim}, {tensor.ndim}), got {dim!r}")
    default_rank, default_world = rank_and_world_size()
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size: expected an int >= 1, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank: expected an int in [0, {world_size}), got {rank!r}")
    batch = tensor.shape[dim]
    if batch % world_size:
        raise ValueError(
            f"tensor: batch dimension {dim} has {batch} samples, not divisible into {world_size} equal shards"
        )
    share = batch // world_size
    return tensor.narrow(dim, rank * share, share)


def all_reduce_for(batch_reduction: object) -> Literal["sum", "mean"]:
    """The updater ``all_reduce`` that matches a trainer's ``batch_reduction``.

    ``"sum"`` -> ``"sum"``, ``"mean"`` -> ``"mean"`` (with equal shards);
    anything else raises ``ValueError``: a maximum, a median or an arbitrary
    callable over the local shard cannot be combined across ranks into the
    value over the whole batch by a sum.
    """
    if batch_reduction == "sum":
        return "sum"
    if batch_reduction == "mean":
        return "mean"
    raise ValueError(
        f"batch_reduction: data-parallel updates need 'sum' or 'mean' (which all-reduce exactly), "
        f"got {batch_reduction!r}"
    )


def broadcast_state(modules: Iterable[nn.Module], src: int = 0, group: object | None = None) -> None:
    """Copy every parameter and buffer of ``modules`` from rank ``src`` to all ranks (collective).

    Call once after building the network, so that ranks seeded differently
    still start from identical weights and state. Empty (lazily allocated)
    buffers are skipped.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("group: broadcast_state needs an initialised torch.distributed process group")
    for module in modules:
        if not isinstance(module, nn.Module):
            raise TypeError(f"modules: expected nn.Modules, got {type(module).__name__}")
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.numel():
                dist.broadcast(tensor.data, src=src, group=group)  # type: ignore[arg-type]
