"""Checkpoint and resume (plastic.checkpoint).

The acceptance test trains N batches, saves, resumes in a NEW Python process
(this file run as a script), trains M more and compares the weights bit for bit
with N+M batches run without interruption, in float32 and float64. The
experiment has three cells (dense with an exponential synapse, conv1d, dense
with learned-delay histories), KernelSTDP (event-time, delayed reads) and trace
STDP (window), inputs drawn from a seeded generator (Bernoulli and Poisson
encoders) with rates drawn from torch's global RNG, neuron state carried
across batches (never reset), and bounded updaters (soft bounds, clamp).

Usage as a script (the resumed half)::

    python tests/test_checkpoint.py <checkpoint> <output> <float32|float64> <batches>
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from plastic.checkpoint import CheckpointMismatchError, collect_updaters, load_checkpoint, save_checkpoint
from plastic.functional.bounding import Bounding
from plastic.learn.kernel_stdp import KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, LinearDense
from plastic.neural.encoders import BernoulliEncoder, PoissonEncoder
from plastic.neural.neurons import LIF

STEPS = 12  # steps per batch
BATCH = 3
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Experiment:
    modules: dict[str, nn.Module]
    trainers: dict[str, nn.Module]
    generators: dict[str, torch.Generator]
    dtype: torch.dtype
    encoders: dict[str, nn.Module] = field(default_factory=dict)

    def weights(self) -> dict[str, Tensor]:
        result = {}
        for name, cell in self.modules.items():
            result[f"{name}.weight"] = cell.connection.weight.detach().clone()
            if cell.connection.delay is not None:
                result[f"{name}.delay"] = cell.connection.delay.detach().clone()
        return result


def build(dtype: torch.dtype = torch.float64, *, n_out: int = 4, eta_post: float = 2e-3) -> Experiment:
    """The experiment: the same construction in every process gives the same initial state."""
    torch.manual_seed(0)
    window = {"batch_size": BATCH, "step_mode": "window", "dtype": dtype}
    dense = Cell(
        LinearDense(6, n_out, synapse="exponential", synapse_kwargs={"tau": 5.0}, weight_init=(0.0, 1.0), **window),
        LIF(n_out, tau=5.0, v_threshold=2.0, **window),
    )
    dense.make_updater(bounding=Bounding("soft", w_min=0.0, w_max=1.0), clamp=(0.0, 1.0))
    conv = Cell(
        Conv1d(2, 3, 3, in_size=8, weight_init=(0.0, 1.0), **window),
        LIF((3, 6), tau=5.0, v_threshold=0.3, **window),
    )
    conv.make_updater(clamp=(0.0, 1.0))
    delayed = Cell(
        LinearDense(6, 4, delay=3.0, learn_delay_init="uniform", weight_init=(0.0, 1.0), **window),
        LIF(4, tau=5.0, v_threshold=0.3, **window),
    )
    delayed.make_updater(params=["weight"], clamp=(0.0, 1.0))
    kernel = KernelSTDP(
        kernel_post_kwargs={"eta_post": 0.05, "tau_post": 5.0},
        kernel_pre_kwargs={"eta_pre": -0.04, "tau_pre": 5.0},
    )
    kernel.register_cell("dense", dense)
    kernel.register_cell("delayed", delayed, delayed=True, batch_reduction="sum")
    stdp = STDP(eta_post=eta_post, eta_pre=2e-3, tau_pre=10.0, tau_post=10.0, window=4 * STEPS)
    stdp.register_cell("dense", dense)
    stdp.register_cell("conv", conv, batch_reduction="mean")
    generator = torch.Generator().manual_seed(1)
    return Experiment(
        modules={"dense": dense, "conv": conv, "delayed": delayed},
        trainers={"kernel": kernel, "stdp": stdp},
        generators={"input": generator},
        dtype=dtype,
        encoders={
            "bernoulli": BernoulliEncoder(STEPS, generator=generator),
            "poisson": PoissonEncoder(STEPS, dt=1.0, max_rate=300.0, generator=generator),
        },
    )


def train(experiment: Experiment, batches: int, *, update: bool = True) -> None:
    """Run ``batches`` batches: rates from the global RNG, spikes from the seeded generator."""
    dtype = experiment.dtype
    for _ in range(batches):
        probabilities = torch.rand(BATCH, 6, dtype=dtype) * 0.5  # global RNG
        spikes = experiment.encoders["bernoulli"](probabilities).to(dtype)
        intensities = torch.rand(BATCH, 2, 8, dtype=dtype)
        conv_spikes = experiment.encoders["poisson"](intensities).to(dtype)
        with torch.no_grad():  # plasticity only: no autograd graph through the neuron states
            experiment.modules["dense"](spikes)
            experiment.modules["delayed"](spikes)
            experiment.modules["conv"](conv_spikes)
        for trainer in experiment.trainers.values():
            trainer()
        if update:
            for trainer in experiment.trainers.values():
                trainer.update()


def save(experiment: Experiment, path: Path, **extra: object) -> None:
    save_checkpoint(
        path, modules=experiment.modules, trainers=experiment.trainers,
        generators=experiment.generators, extra=extra,
    )  # fmt: skip


def load(experiment: Experiment, path: Path) -> dict:
    return load_checkpoint(
        path, modules=experiment.modules, trainers=experiment.trainers, generators=experiment.generators
    )


def snapshot(experiment: Experiment, *, outputs: bool = True) -> dict[str, object]:
    """Every piece of state: module/trainer/updater state dicts and RNGs.

    ``outputs`` adds the non-persistent buffers (the last forward's outputs,
    e.g. ``neuron.spike``), which a failed call must not change either but a
    checkpoint does not hold.
    """
    state: dict[str, object] = {}
    for kind, group in (("modules", experiment.modules), ("trainers", experiment.trainers)):
        for name, module in group.items():
            for key, value in module.state_dict().items():
                state[f"{kind}.{name}.{key}"] = value.clone() if isinstance(value, Tensor) else value
            for key, value in module.named_buffers() if outputs else ():
                state[f"{kind}.{name}.buffer.{key}"] = value.clone()
    for name, updater in collect_updaters(experiment.modules, experiment.trainers).items():
        for key, value in updater.state_dict().items():
            state[f"updaters.{name}.{key}"] = value.clone()
    state["rng.torch"] = torch.get_rng_state()
    for name, generator in experiment.generators.items():
        state[f"rng.{name}"] = generator.get_state()
    return state


def assert_same_state(before: dict[str, object], after: dict[str, object]) -> None:
    assert before.keys() == after.keys()
    for key in before:
        a, b = before[key], after[key]
        if isinstance(a, Tensor):
            assert isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype, key
            if a.is_floating_point():
                assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()), key
            else:
                assert torch.equal(a, b), key
        else:
            assert a == b, key


# ------------------------------------------------------------------ acceptance


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_resume_in_new_process_is_bit_identical(tmp_path: Path, dtype: torch.dtype) -> None:
    first, more = 4, 3
    uninterrupted = build(dtype)
    train(uninterrupted, first + more)
    expected = uninterrupted.weights()

    interrupted = build(dtype)
    train(interrupted, first)
    checkpoint = tmp_path / "experiment.pt"
    save(interrupted, checkpoint, batch=first)
    output = tmp_path / "weights.pt"
    completed = subprocess.run(
        [sys.executable, __file__, str(checkpoint), str(output), str(dtype).split(".")[-1], str(more)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    resumed = torch.load(output, weights_only=True)
    assert resumed.keys() == expected.keys()
    for key, value in expected.items():
        assert resumed[key].dtype == dtype
        assert torch.equal(resumed[key], value), key
    # the run was not trivial: weights moved, and not all to a bound
    initial = build(dtype).weights()
    assert not torch.equal(expected["dense.weight"], initial["dense.weight"])
    assert not torch.equal(expected["conv.weight"], initial["conv.weight"])
    assert not torch.equal(expected["delayed.weight"], initial["delayed.weight"])
    inner = (expected["dense.weight"] > 0) & (expected["dense.weight"] < 1)
    assert bool(inner.any())


def _resume_main(argv: list[str]) -> None:
    torch.set_num_threads(1)  # as tests/conftest.py: the same arithmetic as the parent process
    checkpoint, output, dtype_name, more = argv
    experiment = build(getattr(torch, dtype_name))
    extra = load(experiment, Path(checkpoint))
    assert extra == {"batch": 4}, extra
    train(experiment, int(more))
    torch.save(experiment.weights(), output)


# ------------------------------------------------------------------ in-process behaviour


def test_round_trip_restores_every_state_including_lazy_reducers(tmp_path: Path) -> None:
    source = build()
    train(source, 2)
    path = tmp_path / "c.pt"
    save(source, path, note="x", values=[1, 2.5])
    fresh = build()
    # reducers of the fresh experiment have observed nothing yet; carried traces do not exist
    monitor = fresh.trainers["kernel"].monitors["dense"]["post"]
    assert monitor.reducer.shape is None
    assert "trace_pre" not in fresh.trainers["stdp"].states["dense"]._buffers
    extra = load(fresh, path)
    assert extra == {"note": "x", "values": [1, 2.5]}
    assert_same_state(snapshot(source, outputs=False), snapshot(fresh, outputs=False))
    assert fresh.trainers["stdp"].monitors["conv"]["pre"].reducer.total == 2 * STEPS


def test_pending_accumulators_are_restored(tmp_path: Path) -> None:
    source = build()
    train(source, 2)
    train(source, 1, update=False)  # accumulated, not applied
    assert source.modules["dense"].updater.has_pending()
    path = tmp_path / "c.pt"
    save(source, path)
    fresh = build()
    load(fresh, path)
    for name in ("dense", "conv", "delayed"):
        saved_pos, saved_neg = source.modules[name].updater.pending("weight")
        pos, neg = fresh.modules[name].updater.pending("weight")
        assert torch.equal(pos, saved_pos) and torch.equal(neg, saved_neg)
        assert fresh.modules[name].updater.count("weight") == source.modules[name].updater.count("weight")
    for experiment in (source, fresh):
        for trainer in experiment.trainers.values():
            trainer.update()
    for key, value in source.weights().items():
        assert torch.equal(fresh.weights()[key], value), key


def test_rng_states_are_restored(tmp_path: Path) -> None:
    source = build()
    path = tmp_path / "c.pt"
    save(source, path)
    expected_global = torch.rand(5)
    expected_input = torch.rand(5, generator=source.generators["input"])
    fresh = build()
    torch.rand(17)  # move the global RNG away
    torch.rand(3, generator=fresh.generators["input"])
    load(fresh, path)
    assert torch.equal(torch.rand(5), expected_global)
    assert torch.equal(torch.rand(5, generator=fresh.generators["input"]), expected_input)


def test_updaters_are_collected_once_with_stable_keys() -> None:
    experiment = build()
    updaters = collect_updaters(experiment.modules, experiment.trainers)
    assert list(updaters) == ["dense", "conv", "delayed"]
    # from trainers alone, keys name the trainer and the cell; a shared updater appears once
    only_trainers = collect_updaters({}, experiment.trainers)
    assert list(only_trainers) == ["kernel.dense", "kernel.delayed", "stdp.conv"]
    nested = collect_updaters({"net": nn.ModuleDict(experiment.modules)})
    assert list(nested) == ["net.dense", "net.conv", "net.delayed"]


# ------------------------------------------------------------------ refusing what does not fit


def _trained(dtype: torch.dtype = torch.float64, **kwargs: object) -> Experiment:
    experiment = build(dtype, **kwargs)  # type: ignore[arg-type]
    train(experiment, 1)
    return experiment


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    source = build()
    train(source, 2)
    path = tmp_path / "c.pt"
    save(source, path)
    return path


def _expect_refusal(target: Experiment, pattern: str, **arguments: object) -> None:
    before = snapshot(target)
    call = {"modules": target.modules, "trainers": target.trainers, "generators": target.generators}
    call.update(arguments)
    with pytest.raises(CheckpointMismatchError, match=pattern):
        load_checkpoint(call.pop("path"), **call)  # type: ignore[arg-type]
    assert_same_state(before, snapshot(target))


def test_refuses_a_missing_module(saved: Path) -> None:
    target = _trained()
    modules = {k: v for k, v in target.modules.items() if k != "conv"}
    _expect_refusal(target, r"modules: 'conv' is in the checkpoint but was not given", path=saved, modules=modules)


def test_refuses_an_unknown_module(saved: Path) -> None:
    target = _trained()
    modules = {**target.modules, "extra": nn.Linear(2, 2)}
    _expect_refusal(target, r"modules: 'extra' was given but is not in the checkpoint", path=saved, modules=modules)


def test_refuses_a_missing_trainer_and_generator(saved: Path) -> None:
    target = _trained()
    _expect_refusal(
        target, r"(?s)trainers: 'stdp' is in the checkpoint.*generators: 'input' is in the checkpoint",
        path=saved, trainers={"kernel": target.trainers["kernel"]}, generators={},
    )  # fmt: skip


def test_refuses_a_shape_mismatch(saved: Path) -> None:
    target = _trained(n_out=5)
    _expect_refusal(
        target, r"modules: 'dense': 'connection.weight' has shape \(4, 6\) in the checkpoint, \(5, 6\)", path=saved
    )


def test_refuses_a_dtype_mismatch(saved: Path) -> None:
    target = _trained(torch.float32)
    _expect_refusal(target, r"'connection.weight' has dtype torch.float64 in the checkpoint, torch.float32", path=saved)


def test_refuses_different_hyperparameters(saved: Path) -> None:
    target = _trained(eta_post=3e-3)
    _expect_refusal(
        target, r"trainers: 'stdp': hyperparameter cells.conv.eta_post: the checkpoint has 0.002", path=saved
    )


def test_refuses_an_unregistered_cell(saved: Path) -> None:
    target = _trained()
    target.trainers["stdp"].del_cell("conv")
    _expect_refusal(target, r"trainers: 'stdp': cell 'conv' is in the checkpoint but not registered", path=saved)


def test_refuses_a_different_updater_configuration(saved: Path) -> None:
    target = _trained()
    target.modules["conv"].make_updater(clamp=(0.0, 2.0))
    _expect_refusal(
        target, r"updaters: 'conv': clamp.weight\[1\]: the checkpoint has 1.0, the experiment 2.0", path=saved
    )


def test_refusal_lists_every_problem_and_loads_nothing_into_fresh_state(saved: Path) -> None:
    target = build(n_out=5, eta_post=3e-3)  # fresh: lazy reducers must stay unallocated too
    with pytest.raises(CheckpointMismatchError) as info:
        load(target, saved)
    message = str(info.value)
    assert message.startswith("checkpoint: ")
    assert "'connection.weight' has shape" in message and "eta_post" in message
    assert target.trainers["kernel"].monitors["dense"]["post"].reducer.shape is None


def test_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    target = _trained()
    _expect_refusal(target, r"path: .* is not a plastic checkpoint", path=path)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    experiment = build()
    with pytest.raises(TypeError, match=r"^modules: 'x' is a int"):
        save_checkpoint(tmp_path / "c.pt", modules={"x": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^generators: 'g' is a Tensor"):
        save_checkpoint(tmp_path / "c.pt", modules=experiment.modules, generators={"g": torch.zeros(1)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^extra: expected a dict"):
        save_checkpoint(tmp_path / "c.pt", modules=experiment.modules, extra=[1])  # type: ignore[arg-type]
    assert not (tmp_path / "c.pt").exists()
    assert not any(tmp_path.iterdir())  # no temporary left behind


def test_nan_hyperparameters_compare_equal(tmp_path: Path) -> None:
    # descriptions treat NaN as equal to itself (tensor kernel arguments may hold NaN markers)
    def experiment() -> tuple[Cell, KernelSTDP]:
        torch.manual_seed(0)
        cell = Cell(LinearDense(2, 2, weight_init=(0.0, 1.0)), LIF(2))
        cell.make_updater()
        trainer = KernelSTDP(kernel_post_kwargs={"eta_post": torch.tensor([math.nan, 1.0])})
        trainer.register_cell("c", cell)
        return cell, trainer

    cell, trainer = experiment()
    save_checkpoint(tmp_path / "c.pt", modules={"c": cell}, trainers={"t": trainer})
    cell, trainer = experiment()
    assert load_checkpoint(tmp_path / "c.pt", modules={"c": cell}, trainers={"t": trainer}) == {}


if __name__ == "__main__":
    _resume_main(sys.argv[1:])
