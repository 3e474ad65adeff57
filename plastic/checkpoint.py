"""Checkpoint and resume a whole plasticity experiment.

One call saves, one call restores into a freshly built experiment::

    save_checkpoint(path, modules={"net": net}, trainers={"stdp": stdp},
                    generators={"input": generator}, extra={"batch": 17})
    ...  # new process: build the same network, trainers and generators
    extra = load_checkpoint(path, modules={"net": net}, trainers={"stdp": stdp},
                            generators={"input": generator})

What is saved, per name:

* ``modules``: each network module's ``state_dict`` (weights, delays, neuron
  voltages, synapse states and histories with their ring pointers).
* ``updaters``: the :class:`~plastic.neural.updater.Updater` accumulators and
  counts. Updaters are not submodules of their cells, so they are collected
  from the ``updater`` attribute of every :class:`~plastic.neural.cell.Cell`
  found in ``modules`` (key ``"<module name>.<cell path>"``, or the module
  name itself for a top-level cell), then from the cells registered with the
  trainers (key ``"<trainer name>.<cell name>"``); each updater is saved once.
* ``trainers``: each trainer's ``state_dict`` (per-cell state such as carried
  traces, and the monitors' reducer buffers, allocated lazily at the first
  observation and re-created on load) and a *description* of its
  hyperparameters (trainer class, defaults, per-cell parameters, monitor
  targets and reducer configurations).
* a description of every updater's configuration (parameters, reduction over
  calls, bounding, clamp, normalisation; ``all_reduce`` is left out so that a
  single-process checkpoint resumes on several ranks and back).
* RNG states: torch's global CPU generator, the CUDA generators when CUDA is
  initialised, and every ``torch.Generator`` passed in ``generators``.
* ``extra``: anything ``torch.load(weights_only=True)`` can read back
  (numbers, strings, tensors, lists, dicts).

Loading validates everything before touching any state: names (a missing or
unknown module, trainer, cell, updater or generator), state keys, shapes and
dtypes (reducers not yet observed and carried per-cell buffers are created
from the checkpoint, so they are exempt), ring-buffer capacities, RNG state
sizes, and hyperparameter descriptions. Every problem found is listed in one
:class:`CheckpointMismatchError`; nothing is modified unless the whole
checkpoint fits.

Descriptions compare callables by module and qualified name (two different
lambdas in one module compare equal) and tensors by value.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import Tensor, nn

from plastic.neural.cell import Cell
from plastic.neural.history import RingBuffer
from plastic.neural.updater import Updater
from plastic.observe.reducers import Reducer

if TYPE_CHECKING:  # learn imports neural/observe, never the reverse: imported where used
    from plastic.learn.base import Unit

__all__ = ["CheckpointMismatchError", "collect_updaters", "describe", "load_checkpoint", "save_checkpoint"]

FORMAT = "plastic-checkpoint"
VERSION = 1
EXTRA_STATE = "_extra_state"


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the experiment it is loaded into (nothing was changed)."""


# ---------------------------------------------------------------------- descriptions


def _callable_name(value: Any) -> str:
    module = getattr(value, "__module__", None) or type(value).__module__
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"{module}.{name}"


def describe(value: Any) -> Any:
    """A comparable, ``weights_only``-loadable description of a hyperparameter value.

    attrs instances become ``{"__class__": name, field: description...}``,
    mappings dicts with string keys, sequences lists, tensors detached CPU
    copies, callables ``"callable:<module>.<qualname>"`` (bound methods add
    their object's description), other objects their ``repr`` without memory
    addresses.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, torch.dtype | torch.device):
        return str(value)
    if attrs.has(type(value)):
        fields = {field.name: describe(getattr(value, field.name)) for field in attrs.fields(type(value))}
        return {"__class__": _callable_name(type(value)), **fields}
    if isinstance(value, Mapping):
        return {str(key): describe(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [describe(item) for item in value]
    bound_to = getattr(value, "__self__", None)
    if callable(value) and bound_to is not None and not isinstance(bound_to, type(math)):
        return {"__method__": getattr(value, "__name__", "?"), "__self__": describe(bound_to)}
    func = getattr(value, "func", None)
    if callable(func) and hasattr(value, "keywords"):  # functools.partial
        return {"__partial__": describe(func), "args": describe(value.args), "keywords": describe(value.keywords)}
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"callable:{_callable_name(value)}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _differences(saved: Any, current: Any, path: str) -> list[str]:
    """Where two descriptions differ, as ``path: checkpoint X, experiment Y`` lines."""
    if isinstance(saved, Tensor) or isinstance(current, Tensor):
        if isinstance(saved, Tensor) and isinstance(current, Tensor) and _same_tensor(saved, current):
            return []
        return [f"{path}: the checkpoint has {_short(saved)}, the experiment {_short(current)}"]
    if isinstance(saved, dict) and isinstance(current, dict):
        lines = []
        for key in sorted(set(saved) | set(current)):
            where = f"{path}.{key}" if path else key
            if key not in current:
                lines.append(f"{where}: in the checkpoint, not in the experiment")
            elif key not in saved:
                lines.append(f"{where}: in the experiment, not in the checkpoint")
            else:
                lines += _differences(saved[key], current[key], where)
        return lines
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        pairs = enumerate(zip(saved, current, strict=True))
        return [line for index, (a, b) in pairs for line in _differences(a, b, f"{path}[{index}]")]
    same = saved == current or (
        isinstance(saved, float) and isinstance(current, float) and math.isnan(saved) and math.isnan(current)
    )
    return [] if same else [f"{path}: the checkpoint has {_short(saved)}, the experiment {_short(current)}"]


def _same_tensor(saved: Tensor, current: Tensor) -> bool:
    if saved.shape != current.shape or saved.dtype != current.dtype:
        return False
    current = current.detach().to("cpu")
    if saved.is_floating_point() or saved.is_complex():
        # NaN equals NaN here: a hyperparameter "not set" marker stays equal to itself
        return torch.equal(saved.isnan(), current.isnan()) and torch.equal(saved.nan_to_num(), current.nan_to_num())
    return torch.equal(saved, current)


def _short(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype})" if value.numel() > 8 else repr(value)
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _trainer_units(trainer: nn.Module) -> list[Unit]:
    """The registered cells of a trainer (the trainers that hold them in units); none for other modules."""
    from plastic.learn.base import IndependentCellTrainer  # learn imports neural/observe, never the reverse

    return list(trainer) if isinstance(trainer, IndependentCellTrainer) else []


def _describe_trainer(trainer: nn.Module) -> dict[str, Any]:
    description: dict[str, Any] = {"__class__": _callable_name(type(trainer))}
    if hasattr(trainer, "defaults"):
        description["defaults"] = describe(trainer.defaults)
    units = _trainer_units(trainer)
    description["cells"] = {unit.name: describe(unit.state.params) for unit in units}
    description["monitors"] = {
        unit.name: {
            key: {
                "target": str(monitor.target),
                "hook": monitor.hook,
                "train_only": monitor.train_only,
                "reducer": describe(monitor.reducer.config_key()),
            }
            for key, monitor in unit.monitors.items()
        }
        for unit in units
    }
    return description


def _describe_updater(updater: Updater) -> dict[str, Any]:
    return {
        "params": list(updater.params),
        "reduction": updater.reduction,
        "bounding": describe(updater.bounding),
        "clamp": describe(updater.clamp),
        "normalize": describe(updater.normalize),
        "normalize_first": updater.normalize_first,
    }


# ---------------------------------------------------------------------- collection


def collect_updaters(modules: Mapping[str, nn.Module], trainers: Mapping[str, nn.Module] = {}) -> dict[str, Updater]:
    """Every distinct updater reachable from ``modules`` (cells' ``updater``) and ``trainers`` (their units).

    Keys: ``"<module name>.<cell path>"`` (the module name alone for a
    top-level cell), then ``"<trainer name>.<cell name>"`` for updaters of
    registered cells not found in ``modules``. The order follows the
    mappings, so the same construction gives the same keys.
    """
    found: dict[str, Updater] = {}
    seen: set[int] = set()

    def add(key: str, updater: Updater | None) -> None:
        if updater is not None and id(updater) not in seen:
            seen.add(id(updater))
            found[key] = updater

    for name, module in modules.items():
        for path, submodule in module.named_modules():
            if isinstance(submodule, Cell):
                add(f"{name}.{path}" if path else name, submodule.updater)
    for name, trainer in trainers.items():
        for unit in _trainer_units(trainer):
            add(f"{name}.{unit.name}", unit.cell.updater)
    return found


def _check_names(kind: str, given: Mapping[str, Any], argument: str) -> None:
    if not isinstance(given, Mapping):
        raise TypeError(f"{argument}: expected a dict of names to {kind}, got {type(given).__name__}")
    for name, value in given.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{argument}: expected non-empty str names, got {name!r}")
        if kind == "generators":
            if not isinstance(value, torch.Generator):
                raise TypeError(f"{argument}: {name!r} is a {type(value).__name__}, expected a torch.Generator")
        elif not isinstance(value, nn.Module):
            raise TypeError(f"{argument}: {name!r} is a {type(value).__name__}, expected an nn.Module")


# ---------------------------------------------------------------------- save


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    modules: Mapping[str, nn.Module],
    trainers: Mapping[str, nn.Module] = {},
    generators: Mapping[str, torch.Generator] = {},
    extra: Mapping[str, Any] = {},
) -> None:
    """Save the experiment's whole state to ``path`` (written atomically).

    Args:
        path: file to write (a temporary file in the same folder is renamed
            onto it, so an interrupted save never leaves a truncated file).
        modules: network modules by name (cells, ``Serial``, any ``nn.Module``).
        trainers: trainers by name (their per-cell state and monitors).
        generators: ``torch.Generator`` objects in use (e.g. input encoders).
        extra: user data returned by :func:`load_checkpoint` (epoch, batch,
            metrics); anything ``torch.load(weights_only=True)`` accepts.
    """
    _check_names("modules", modules, "modules")
    _check_names("trainers", trainers, "trainers")
    _check_names("generators", generators, "generators")
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra: expected a dict, got {type(extra).__name__}")
    updaters = collect_updaters(modules, trainers)
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "generators": {name: generator.get_state() for name, generator in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "trainers": {name: trainer.state_dict() for name, trainer in trainers.items()},
        "updaters": {name: updater.state_dict() for name, updater in updaters.items()},
        "hyperparameters": {
            "trainers": {name: _describe_trainer(trainer) for name, trainer in trainers.items()},
            "updaters": {name: _describe_updater(updater) for name, updater in updaters.items()},
        },
        "rng": rng,
        "extra": dict(extra),
    }
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    handle, temporary = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# ---------------------------------------------------------------------- validation


def _owner(module: nn.Module, key: str) -> tuple[nn.Module | None, str]:
    """The submodule holding state key ``key`` (None if the path does not exist) and the local name."""
    *parts, local = key.split(".")
    owner: nn.Module | None = module
    for part in parts:
        owner = owner._modules.get(part) if owner is not None else None
    return owner, local


def _lazy_prefixes(module: nn.Module) -> tuple[list[str], list[str]]:
    """Prefixes of reducers not yet observed (state re-created on load) and of per-cell trainer states."""
    from plastic.learn.base import CellState  # learn imports neural/observe, never the reverse

    lazy, adopting = [], []
    for path, submodule in module.named_modules():
        prefix = f"{path}." if path else ""
        if isinstance(submodule, Reducer) and submodule.shape is None:
            lazy.append(prefix)
        elif isinstance(submodule, CellState):
            adopting.append(prefix)
    return lazy, adopting


def _state_problems(label: str, module: nn.Module, saved: Mapping[str, Any]) -> list[str]:
    """Every way ``saved`` does not fit ``module.state_dict()`` (empty when it loads cleanly)."""
    if not isinstance(saved, Mapping):
        return [f"{label}: the checkpoint holds no state dict"]
    current = module.state_dict(keep_vars=True)
    lazy, adopting = _lazy_prefixes(module)

    def is_lazy(key: str) -> bool:
        return any(key.startswith(prefix) for prefix in lazy)

    def is_adopted(key: str) -> bool:
        return any(key.startswith(prefix) and "." not in key[len(prefix) :] for prefix in adopting)

    problems = []
    for key in current:
        if key not in saved:
            problems.append(f"{label}: {key!r} is missing from the checkpoint")
    for key, value in saved.items():
        if key not in current:
            if is_lazy(key) or (is_adopted(key) and isinstance(value, Tensor)):
                continue
            problems.append(f"{label}: {key!r} in the checkpoint is not part of the experiment")
            continue
        here = current[key]
        if isinstance(here, Tensor) and isinstance(value, Tensor):
            if is_lazy(key):
                continue
            if here.shape != value.shape:
                problems.append(
                    f"{label}: {key!r} has shape {tuple(value.shape)} in the checkpoint, "
                    f"{tuple(here.shape)} in the experiment"
                )
            elif here.dtype != value.dtype:
                problems.append(
                    f"{label}: {key!r} has dtype {value.dtype} in the checkpoint, {here.dtype} in the experiment"
                )
        elif isinstance(here, Tensor) != isinstance(value, Tensor):
            problems.append(
                f"{label}: {key!r} is a {type(value).__name__} in the checkpoint, a {type(here).__name__} here"
            )
        if key.endswith(EXTRA_STATE):
            owner, _ = _owner(module, key)
            if isinstance(owner, RingBuffer) and isinstance(value, Mapping) and value.get("capacity") != owner.capacity:
                problems.append(
                    f"{label}: ring buffer {key[: -len(EXTRA_STATE) - 1]!r} holds {value.get('capacity')} steps "
                    f"in the checkpoint, {owner.capacity} in the experiment"
                )
    return problems


def _name_problems(kind: str, saved: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    problems = [f"{kind}: {name!r} is in the checkpoint but was not given" for name in saved if name not in given]
    problems += [f"{kind}: {name!r} was given but is not in the checkpoint" for name in given if name not in saved]
    return problems


def _trainer_problems(name: str, saved: Mapping[str, Any], trainer: nn.Module) -> list[str]:
    current = _describe_trainer(trainer)
    label = f"trainers: {name!r}"
    saved_cells, current_cells = saved.get("cells", {}), current["cells"]
    problems = [
        f"{label}: cell {cell!r} is in the checkpoint but not registered"
        for cell in saved_cells
        if cell not in current_cells
    ]
    problems += [
        f"{label}: cell {cell!r} is registered but not in the checkpoint"
        for cell in current_cells
        if cell not in saved_cells
    ]
    if problems:
        return problems
    return [f"{label}: hyperparameter {line}" for line in _differences(saved, current, "")]


# ---------------------------------------------------------------------- load


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    modules: Mapping[str, nn.Module],
    trainers: Mapping[str, nn.Module] = {},
    generators: Mapping[str, torch.Generator] = {},
) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint`; return its ``extra``.

    The experiment must be built as when saving (same names, shapes, dtypes,
    trainer hyperparameters, registered cells, monitors and generators).
    Everything is checked first; a :class:`CheckpointMismatchError` listing
    every problem is raised before any state changes. Tensors are copied onto
    the devices the experiment's tensors live on.
    """
    _check_names("modules", modules, "modules")
    _check_names("trainers", trainers, "trainers")
    _check_names("generators", generators, "generators")
    checkpoint = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointMismatchError(f"path: {os.fspath(path)!r} is not a plastic checkpoint")
    if checkpoint.get("version") != VERSION:
        raise CheckpointMismatchError(f"path: checkpoint version {checkpoint.get('version')!r}, expected {VERSION}")
    updaters = collect_updaters(modules, trainers)
    hyperparameters = checkpoint["hyperparameters"]

    problems = _name_problems("modules", checkpoint["modules"], modules)
    problems += _name_problems("trainers", checkpoint["trainers"], trainers)
    problems += _name_problems("updaters", checkpoint["updaters"], updaters)
    problems += _name_problems("generators", checkpoint["rng"]["generators"], generators)
    for name, module in modules.items():
        if name in checkpoint["modules"]:
            problems += _state_problems(f"modules: {name!r}", module, checkpoint["modules"][name])
    for name, trainer in trainers.items():
        if name in checkpoint["trainers"]:
            problems += _trainer_problems(name, hyperparameters["trainers"][name], trainer)
            problems += _state_problems(f"trainers: {name!r}", trainer, checkpoint["trainers"][name])
    for name, updater in updaters.items():
        if name in checkpoint["updaters"]:
            problems += [
                f"updaters: {name!r}: {line}"
                for line in _differences(hyperparameters["updaters"][name], _describe_updater(updater), "")
            ]
            problems += _state_problems(f"updaters: {name!r}", updater, checkpoint["updaters"][name])
    for name, generator in generators.items():
        saved_state = checkpoint["rng"]["generators"].get(name)
        if saved_state is not None and saved_state.shape != generator.get_state().shape:
            problems.append(
                f"generators: {name!r} state has {saved_state.numel()} bytes in the checkpoint, "
                f"{generator.get_state().numel()} here (a generator of another device?)"
            )
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint: {os.fspath(path)!r} does not fit the experiment; nothing was loaded:\n  "
            + "\n  ".join(problems)
        )

    # Everything fits: now mutate.
    for name, module in modules.items():
        module.load_state_dict(_on_devices(module, checkpoint["modules"][name]))
    for name, trainer in trainers.items():
        trainer.load_state_dict(_on_devices(trainer, checkpoint["trainers"][name]))
    for name, updater in updaters.items():
        updater.load_state_dict(_on_devices(updater, checkpoint["updaters"][name]))
    torch.set_rng_state(checkpoint["rng"]["torch"])
    if "cuda" in checkpoint["rng"] and torch.cuda.is_available():
        states = checkpoint["rng"]["cuda"]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    for name, generator in generators.items():
        generator.set_state(checkpoint["rng"]["generators"][name])
    return dict(checkpoint["extra"])


def _on_devices(module: nn.Module, saved: Mapping[str, Any]) -> dict[str, Any]:
    """``saved`` with tensors the experiment does not have yet moved to the module's device.

    Tensors that exist are copied in place by ``load_state_dict`` (onto their
    own device); new ones (lazily created state) would otherwise stay on the CPU.
    """
    current = module.state_dict(keep_vars=True)
    device = next((value.device for value in current.values() if isinstance(value, Tensor)), None)
    if device is None:
        device = next((value.device for value in module.buffers()), torch.device("cpu"))
    result = {}
    for key, value in saved.items():
        if isinstance(value, Tensor) and key not in current and value.device != device:
            value = value.to(device)
        result[key] = value
    return result
