"""Data-parallel plasticity: 2 gloo ranks on localhost equal one process on the full batch.

Each rank runs a dense and a conv2d cell, each trained by KernelSTDP (event
times) and trace STDP (windows), on its half of every batch; the updaters
all-reduce their accumulators before applying (``sum`` with
``batch_reduction="sum"``, ``mean`` with ``"mean"``). After K batches the
weights of both ranks must equal, within 1e-6 relative, those of a single
process that saw the whole batches. float64, so that the comparison is not at
the mercy of a threshold crossing flipped by a rounding difference.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from plastic.distributed import all_reduce_for, broadcast_state, rank_and_world_size, shard_batch
from plastic.learn.kernel_stdp import KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv2d, LinearDense
from plastic.neural.neurons import LIF

WORLD = 2
BATCH = 4  # full batch; each rank gets BATCH // WORLD
STEPS = 10
BATCHES = 4
DTYPE = torch.float64
REDUCTIONS = ("sum", "mean")
TIMEOUT = 120.0


def build(batch: int, reduction: str, all_reduce: str | None) -> dict[str, Cell]:
    torch.manual_seed(0)
    window = {"batch_size": batch, "step_mode": "window", "dtype": DTYPE}
    dense = Cell(
        LinearDense(8, 5, weight_init=(0.0, 1.0), **window),
        LIF(5, tau=4.0, v_threshold=1.0, **window),
    )
    conv = Cell(
        Conv2d(2, 3, 3, padding=1, in_size=(5, 5), weight_init=(0.0, 0.5), **window),
        LIF((3, 5, 5), tau=4.0, v_threshold=0.6, **window),
    )
    for cell in (dense, conv):
        cell.make_updater(clamp=(0.0, 1.0), all_reduce=all_reduce)
    # per-batch magnitudes: a sum over samples is larger than a mean
    scale = 1.0 / BATCH if reduction == "sum" else 1.0
    kernel = KernelSTDP(
        kernel_post_kwargs={"eta_post": 0.02 * scale, "tau_post": 4.0},
        kernel_pre_kwargs={"eta_pre": -0.015 * scale, "tau_pre": 4.0},
        batch_reduction=reduction,
    )
    stdp = STDP(eta_post=4e-3 * scale, eta_pre=3e-3 * scale, tau_pre=8.0, tau_post=8.0,
                batch_reduction=reduction, window=STEPS)  # fmt: skip
    kernel.register_cell("dense", dense)
    stdp.register_cell("dense", dense)
    # a conv update sums over the 25 output positions: smaller rates
    kernel.register_cell(
        "conv",
        conv,
        kernel_post_kwargs={"eta_post": 0.002 * scale, "tau_post": 4.0},
        kernel_pre_kwargs={"eta_pre": -0.0015 * scale, "tau_pre": 4.0},
    )
    stdp.register_cell("conv", conv, eta_post=4e-4 * scale, eta_pre=3e-4 * scale)
    cells = {"dense": dense, "conv": conv}
    cells["_trainers"] = (kernel, stdp)  # type: ignore[assignment]
    return cells


def batches() -> list[tuple[Tensor, Tensor]]:
    """The full batches, the same on every rank (a seeded generator)."""
    generator = torch.Generator().manual_seed(7)
    result = []
    for _ in range(BATCHES):
        dense_in = (torch.rand(STEPS, BATCH, 8, generator=generator, dtype=DTYPE) < 0.3).to(DTYPE)
        conv_in = (torch.rand(STEPS, BATCH, 2, 5, 5, generator=generator, dtype=DTYPE) < 0.3).to(DTYPE)
        result.append((dense_in, conv_in))
    return result


def run(reduction: str, distributed: bool) -> dict[str, Tensor]:
    rank, world = rank_and_world_size()
    if not distributed:
        rank, world = 0, 1
    all_reduce = all_reduce_for(reduction) if distributed else None
    cells = build(BATCH // world, reduction, all_reduce)
    kernel, stdp = cells.pop("_trainers")  # type: ignore[misc]
    if distributed:
        broadcast_state(cells.values())
    with torch.no_grad():
        for dense_in, conv_in in batches():
            cells["dense"](shard_batch(dense_in, rank, world, dim=1))
            cells["conv"](shard_batch(conv_in, rank, world, dim=1))
            kernel()
            stdp()
            kernel.update()
            stdp.update()
    return {name: cell.connection.weight.detach().clone() for name, cell in cells.items()}


def _worker(rank: int, port: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
        timeout=__import__("datetime").timedelta(seconds=60),
    )  # fmt: skip
    try:
        results = {reduction: run(reduction, distributed=True) for reduction in REDUCTIONS}
        torch.save(results, Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, Tensor]]]:
    folder = tmp_path_factory.mktemp("ranks")
    context = mp.spawn(_worker, args=(_free_port(), str(folder)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not context.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} gloo ranks did not finish within {TIMEOUT} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD)]


@pytest.mark.slow
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ranks_equal_one_process_on_the_full_batch(rank_results: list, reduction: str) -> None:
    expected = run(reduction, distributed=False)
    initial = {
        name: cell.connection.weight.detach()
        for name, cell in build(BATCH, reduction, None).items()
        if name != "_trainers"
    }
    for name, weight in expected.items():
        # the run is not trivial: weights moved, and not all to a bound
        assert not torch.equal(weight, initial[name]), name
        assert bool(((weight > 0) & (weight < 1)).any()), name
        for rank, results in enumerate(rank_results):
            got = results[reduction][name]
            assert got.dtype == DTYPE
            torch.testing.assert_close(got, weight, rtol=1e-6, atol=1e-12, msg=f"rank {rank}, {name}, {reduction}")
    # both ranks applied the identical update: bit-identical to each other
    for name in expected:
        assert torch.equal(rank_results[0][reduction][name], rank_results[1][reduction][name])


def test_shard_batch_takes_equal_contiguous_shares() -> None:
    window = torch.arange(2 * 6 * 3).reshape(2, 6, 3)
    shards = [shard_batch(window, rank, 3, dim=1) for rank in range(3)]
    assert [tuple(s.shape) for s in shards] == [(2, 2, 3)] * 3
    assert torch.equal(torch.cat(shards, dim=1), window)
    assert torch.equal(shards[1], window[:, 2:4])
    assert torch.equal(shard_batch(window, dim=1), window)  # no process group: one rank holds all
    with pytest.raises(ValueError, match=r"^tensor: batch dimension 1 has 6 samples, not divisible into 4"):
        shard_batch(window, 0, 4, dim=1)
    with pytest.raises(ValueError, match=r"^rank: "):
        shard_batch(window, 3, 3, dim=1)
    with pytest.raises(ValueError, match=r"^world_size: "):
        shard_batch(window, 0, 0)
    with pytest.raises(ValueError, match=r"^dim: "):
        shard_batch(window, 0, 2, dim=3)
    with pytest.raises(TypeError, match=r"^tensor: "):
        shard_batch([1, 2], 0, 1)  # type: ignore[arg-type]


def test_all_reduce_matches_the_batch_reduction() -> None:
    assert all_reduce_for("sum") == "sum"
    assert all_reduce_for("mean") == "mean"
    for other in ("amax", "median", lambda values: values.sum(0)):
        with pytest.raises(ValueError, match=r"^batch_reduction: "):
            all_reduce_for(other)


def test_broadcast_and_sync_need_a_process_group() -> None:
    cells = build(2, "sum", "sum")
    cells.pop("_trainers")
    with pytest.raises(ValueError, match=r"^group: "):
        broadcast_state(cells.values())
    with pytest.raises(ValueError, match=r"^all_reduce: requires an initialised"):
        cells["dense"].updater.sync()
