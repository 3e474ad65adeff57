"""Monitors: forward hooks that feed what a module does into a reducer.

A :class:`Monitor` watches one *target* of a module at every forward:

* ``"attr:neuron.spike"`` or just ``"neuron.spike"``: a dotted attribute path
  relative to the module (``cell.neuron.spike``, ``cell.connection.synspike``,
  ``cell.connection.synapse.spike``, ``cell.neuron.voltage_sequence``: the
  membrane potential per step of a neuron built with
  ``store_voltage_sequence=True``);
* ``"input"`` / ``"input:k"``: the forward's ``k``-th positional input (0 by default);
* ``"output"`` / ``"output:k"``: the output (the ``k``-th item of a tuple output);
* ``"delta:neuron.voltage"``: the attribute after the forward minus before it
  (one observation per forward, whatever the step mode: it is the change of
  a state across the whole call).

and hands it, detached, to its reducer with ``window = (module.step_mode ==
"window")`` (modules without ``step_mode`` count as single-step). A post hook
(default) reads after the forward, a pre hook before it (the input, or an
attribute as the previous step left it). Monitors can be limited to training
(``train_only="train"``: only while ``module.training``) or evaluation
(``"eval"``), switched off and on (:meth:`Monitor.disable`,
:meth:`Monitor.enable`), cleared (:meth:`Monitor.clear`) and detached
(:meth:`Monitor.remove`); a monitor that is garbage-collected removes its
hooks (the hooks hold it weakly, so keep a reference while it should record).

A :class:`MonitorPool` shares monitors: two trainers asking for the same
target of the same module with equal reducer configurations
(:meth:`~plastic.observe.reducers.Reducer.config_key`) get one monitor, which
records once; the hooks go when the last user releases it.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from plastic.functional.validation import check_choice
from plastic.neural.buffers import attribute_reader, set_plain
from plastic.neural.observable import Observable, has_call_hooks
from plastic.observe.reducers import Reducer, WindowReducer

__all__ = ["AttributeRecorder", "Monitor", "MonitorPool", "Target", "parse_target"]

HOOKS = ("post", "pre")
GATES = (None, "train", "eval")


@dataclass(frozen=True)
class Target:
    """A parsed monitor target: ``kind`` in attr/input/output/delta, plus a path or index."""

    kind: str
    path: str = ""
    index: int | None = None

    def __str__(self) -> str:
        if self.kind in ("attr", "delta"):
            return f"{self.kind}:{self.path}"
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_target(target: str | Target) -> Target:
    """Parse ``"attr:a.b"``, ``"a.b"``, ``"input[:k]"``, ``"output[:k]"``, ``"delta:a.b"``."""
    if isinstance(target, Target):
        return target
    if not isinstance(target, str) or not target:
        raise TypeError(f"target: expected a non-empty str, got {target!r}")
    kind, _, rest = target.partition(":")
    if kind in ("input", "output"):
        if not rest:
            return Target(kind, index=0 if kind == "input" else None)
        if not rest.isdigit():
            raise ValueError(f"target: expected {kind}:<index>, got {target!r}")
        return Target(kind, index=int(rest))
    if kind in ("attr", "delta"):
        path = rest
    elif rest:
        raise ValueError(f"target: unknown kind {kind!r} in {target!r} (expected attr:, delta:, input or output)")
    else:
        path = target
    parts = path.split(".")
    if not path or not all(part.isidentifier() for part in parts):
        raise ValueError(f"target: expected a dotted attribute path, got {target!r}")
    return Target("delta" if kind == "delta" else "attr", path=path)


class AttributeRecorder:
    """The post observer of a monitor with an attribute target: reads the attribute after each call of
    the module and hands it to the monitor's reducer.

    A plain single step (a plain tensor, a :class:`WindowReducer` whose
    recording it fits) goes straight into the reducer's ring, whatever the
    grad mode; anything else goes through the monitor's checks. A fused cell
    step (:mod:`plastic.neural.fused_step`) reads the same monitor, gate and
    reducer (:func:`~plastic.neural.fused_recorders.window_ring`) and writes
    the step into the ring itself, without calling this.
    """

    __slots__ = ("monitor", "path", "read")

    def __init__(self, monitor: weakref.ReferenceType[Monitor], read: Callable[[nn.Module], Any], path: str) -> None:
        self.monitor = monitor  # weakly: the hook must not keep the monitor alive
        self.read = read  # the target is fixed at construction: so is its reader
        self.path = path

    def __call__(self, hooked: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        # at every step: _on_post without the dispatch on the target's kind, _active and _read_attr inlined
        monitor = self.monitor()
        if monitor is None:
            return
        state = monitor.__dict__  # plain attributes
        if not state["enabled"]:
            return
        gate = state["train_only"]
        if gate is not None and hooked.training != (gate == "train"):
            return
        value = self.read(hooked)
        if value is None:
            return
        reducer = state["_modules"]["reducer"]
        if (
            type(value) is Tensor
            and type(reducer) is WindowReducer
            and getattr(hooked, "step_mode", "single") == "single"
            and not has_call_hooks(reducer)
            and reducer.record_step(value)
        ):
            # a window recorder's plain single step, straight into its ring where the value fits it
            # (what _observe's call of the reducer does then, whatever the grad mode)
            return
        if type(value) is not Tensor and not isinstance(value, Tensor):
            monitor._read_attr(hooked)  # raises naming the target
        if torch.is_grad_enabled() or has_call_hooks(reducer) or getattr(hooked, "step_mode", "single") != "single":
            monitor._observe(hooked, value)
            return
        # a plain single step without a graph: the reducer's forward without nn.Module's call
        # dispatch (it detaches a value that requires grad, as _observe would)
        reducer.forward(value)


class Monitor(nn.Module):
    """Records one target of ``module`` into ``reducer`` at every forward.

    Args:
        reducer: where observations go (:mod:`plastic.observe.reducers`).
        module: the hooked module; held weakly (a monitor never keeps a
            network alive, and is not a submodule of it).
        target: what to read (see the module docstring).
        hook: ``"post"`` (after the forward) or ``"pre"`` (before). ``output``
            and ``delta`` targets need ``"post"``.
        train_only: ``None`` (always), ``"train"`` (only while
            ``module.training``) or ``"eval"`` (only while not).
        name: a label (default ``"<ModuleClass>.<target>"``).

    The reducer is a submodule: ``monitor.to(device)`` and ``state_dict``
    cover it. Attribute values that are ``None`` (nothing computed yet) are
    skipped; other non-tensors raise ``TypeError`` naming the target.
    """

    reducer: Reducer

    def __init__(
        self,
        reducer: Reducer,
        module: nn.Module,
        target: str | Target,
        *,
        hook: str = "post",
        train_only: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self._handles: list[RemovableHandle] = []
        if not isinstance(reducer, Reducer):
            raise TypeError(f"reducer: expected a plastic Reducer, got {type(reducer).__name__}")
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        parsed = parse_target(target)
        hook = str(check_choice(hook, "hook", HOOKS))
        train_only = check_choice(train_only, "train_only", GATES)  # type: ignore[assignment]
        if parsed.kind in ("output", "delta") and hook != "post":
            raise ValueError(f"hook: target {str(parsed)!r} is only known after the forward, use hook='post'")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a str or None, got {type(name).__name__}")
        if parsed.kind in ("attr", "delta"):
            _check_path(module, parsed.path)
        self.reducer = reducer
        self.target = parsed
        # the attribute path read at every forward (the module tables read directly: attrgetter's values)
        self._getter = attribute_reader(parsed.path) if parsed.kind in ("attr", "delta") else None
        self.hook = hook
        self.train_only = train_only
        self.name = name or f"{type(module).__name__}.{parsed}"
        self.enabled = True
        self._module = weakref.ref(module)
        self._before: Tensor | None = None  # delta targets: the value before the forward
        self._attach(module)

    # --------------------------------------------------------------- hooks
    def _attach(self, module: nn.Module) -> None:
        reference = weakref.ref(self)

        def pre_hook(hooked: nn.Module, args: tuple[Any, ...]) -> None:
            monitor = reference()
            if monitor is not None:
                monitor._on_pre(hooked, args)

        def post_hook(hooked: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            monitor = reference()
            if monitor is not None:
                monitor._on_post(hooked, args, output)

        post: Callable[[nn.Module, tuple[Any, ...], Any], None] = post_hook
        if self.target.kind == "attr":
            post = AttributeRecorder(reference, cast(Callable[[nn.Module], Any], self._getter), self.target.path)
        # plastic's observable modules (cells) call monitors around the call without torch's
        # forward hooks, which would send every step through nn.Module's general dispatch
        if self.hook == "pre" or self.target.kind == "delta":
            if isinstance(module, Observable):
                self._handles.append(module.register_step_observer(pre_hook, pre=True))
            else:
                self._handles.append(module.register_forward_pre_hook(pre_hook))
        if self.hook == "post":
            if isinstance(module, Observable):
                self._handles.append(module.register_step_observer(post))
            else:
                self._handles.append(module.register_forward_hook(post))

    def _active(self, module: nn.Module) -> bool:
        if not self.enabled:
            return False
        if self.train_only == "train":
            return module.training
        if self.train_only == "eval":
            return not module.training
        return True

    def _on_pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not self._active(module):
            return
        if self.target.kind == "delta":
            before = self._read_attr(module)
            self._before = None if before is None else before.detach().clone()
            return
        self._observe(module, self._read(module, args, None))

    def _on_post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not self._active(module):
            return
        if self.target.kind == "delta":
            before, self._before = self._before, None
            after = self._read_attr(module)
            if before is None or after is None:
                return
            if after.shape != before.shape:
                raise ValueError(
                    f"target: {str(self.target)!r} changed shape across the forward "
                    f"({tuple(before.shape)} -> {tuple(after.shape)})"
                )
            with torch.no_grad():
                self.reducer(after.detach() - before, window=False)
            return
        self._observe(module, self._read(module, args, output))

    def _read_attr(self, module: nn.Module) -> Tensor | None:
        getter = self._getter
        if getter is None:
            raise TypeError(f"target: {str(self.target)!r} is not an attribute target")
        value = getter(module)
        if value is None:
            return None
        if not isinstance(value, Tensor):
            raise TypeError(f"target: {str(self.target)!r} is a {type(value).__name__}, expected a Tensor")
        return value

    def _read(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Tensor | None:
        kind = self.target.kind
        if kind == "attr":
            return self._read_attr(module)
        if kind == "input":
            index = self.target.index or 0
            if index >= len(args):
                raise ValueError(f"target: {str(self.target)!r} but the forward got {len(args)} positional inputs")
            value = args[index]
        else:
            value = output
            if self.target.index is not None:
                if not isinstance(value, tuple | list) or self.target.index >= len(value):
                    raise ValueError(f"target: {str(self.target)!r} but the output has no such item")
                value = value[self.target.index]
        if value is None:
            return None
        if not isinstance(value, Tensor):
            raise TypeError(f"target: {str(self.target)!r} is a {type(value).__name__}, expected a Tensor")
        return value

    def _observe(self, module: nn.Module, value: Tensor | None) -> None:
        if value is None:
            return
        window = getattr(module, "step_mode", "single") == "window"
        # without nn.Module.__getattr__ (this runs at every step)
        reducer = cast(Reducer, self._modules["reducer"])
        # the reducer's forward without nn.Module's call dispatch, unless hooks must see the call
        record = reducer if has_call_hooks(reducer) else reducer.forward
        if torch.is_grad_enabled():
            with torch.no_grad():
                record(value.detach(), window=window)
        else:  # nothing records a graph already: the context would change nothing
            record(value.detach() if value.requires_grad else value, window=window)

    # -------------------------------------------------------------- public
    @property
    def module(self) -> nn.Module | None:
        """The hooked module (``None`` once it was garbage-collected)."""
        return self._module()

    @property
    def attached(self) -> bool:
        """Whether the hooks are still registered."""
        return bool(self._handles)

    def forward(self) -> Tensor:
        """Same as :meth:`peek` (the reducer's current value)."""
        return self.reducer.peek()

    def peek(self) -> Tensor:
        """The reducer's current value."""
        return self.reducer.peek()

    def view(self, delay: float | Tensor, tolerance: float | None = None) -> Tensor:
        """The reducer's delayed read (see :meth:`Reducer.view`)."""
        return self.reducer.view(delay, tolerance)

    def enable(self) -> None:
        """Record again at each forward."""
        self.enabled = True

    def disable(self) -> None:
        """Stop recording (hooks stay; state kept)."""
        self.enabled = False
        self._before = None

    def clear(self) -> None:
        """Clear the reducer's state (hooks and settings stay)."""
        set_plain(self, "_before", None)  # a plain attribute: skips nn.Module.__setattr__
        self.reducer.clear()

    def reset(self) -> None:
        """Same as :meth:`clear`."""
        self.clear()

    def remove(self) -> None:
        """Remove the hooks (idempotent); the reducer keeps what it recorded."""
        handles = self.__dict__.get("_handles", [])
        while handles:
            handles.pop().remove()
        self.__dict__["_before"] = None

    def detach(self) -> None:
        """Same as :meth:`remove`."""
        self.remove()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.remove()

    def extra_repr(self) -> str:
        return f"name={self.name!r}, hook={self.hook!r}, train_only={self.train_only!r}, enabled={self.enabled}"


def _check_path(module: nn.Module, path: str) -> None:
    # the leaf may not exist before the first forward (e.g. ``spike``), its parents must
    *parents, leaf = path.split(".")
    value: object = module
    for part in parents:
        if not hasattr(value, part):
            raise ValueError(f"target: {type(value).__name__} has no attribute {part!r} (path {path!r})")
        value = getattr(value, part)
    # Read the leaf once, so that a module refusing it (a RuntimeError, e.g. a neuron's
    # voltage_sequence while it keeps none) fails here rather than after its first forward.
    try:
        getattr(value, leaf)
    except AttributeError:
        pass
    except RuntimeError as error:
        raise ValueError(f"target: {path!r} cannot be recorded: {error}") from error


class MonitorPool:
    """Shares monitors between the trainers and cells that ask for them.

    A monitor is identified by ``(module identity, target, hook, train_only,
    reducer key)``; the reducer key is ``reducer.config_key()`` (class and
    parameters) unless given. :meth:`get_or_create` returns the existing
    monitor for an identical request and counts one more user;
    :meth:`release` counts one less and removes the hooks when none is left.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Hashable, ...], _PoolEntry] = {}

    def get_or_create(
        self,
        module: nn.Module,
        target: str | Target,
        reducer_factory: Callable[[], Reducer],
        reducer_key: Hashable | None = None,
        *,
        hook: str = "post",
        train_only: str | None = None,
    ) -> Monitor:
        """The monitor for this request, created (with ``reducer_factory()``) if new."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        if not callable(reducer_factory):
            raise TypeError(f"reducer_factory: expected a callable, got {type(reducer_factory).__name__}")
        parsed = parse_target(target)
        check_choice(hook, "hook", HOOKS)
        check_choice(train_only, "train_only", GATES)
        reducer: Reducer | None = None
        if reducer_key is None:
            reducer = reducer_factory()
            if not isinstance(reducer, Reducer):
                raise TypeError(f"reducer_factory: expected it to return a Reducer, got {type(reducer).__name__}")
            reducer_key = reducer.config_key()
        try:
            hash(reducer_key)
        except TypeError:
            raise TypeError(f"reducer_key: expected a hashable value, got {reducer_key!r}") from None
        self._drop_dead()
        key = (id(module), parsed, hook, train_only, reducer_key)
        entry = self._entries.get(key)
        if entry is not None and entry.module() is module and entry.monitor.attached:
            entry.users += 1
            return entry.monitor
        if reducer is None:
            reducer = reducer_factory()
            if not isinstance(reducer, Reducer):
                raise TypeError(f"reducer_factory: expected it to return a Reducer, got {type(reducer).__name__}")
        monitor = Monitor(reducer, module, parsed, hook=hook, train_only=train_only)
        self._entries[key] = _PoolEntry(monitor, weakref.ref(module), 1)
        return monitor

    def release(self, monitor: Monitor) -> None:
        """One user fewer; the last one removes the monitor's hooks and drops it."""
        for key, entry in self._entries.items():
            if entry.monitor is monitor:
                entry.users -= 1
                if entry.users <= 0:
                    del self._entries[key]
                    monitor.remove()
                return
        raise ValueError("monitor: not held by this pool (never created here, or already released)")

    def users(self, monitor: Monitor) -> int:
        """How many users hold ``monitor`` (0 if the pool does not hold it)."""
        return next((entry.users for entry in self._entries.values() if entry.monitor is monitor), 0)

    def clear(self) -> None:
        """Remove every monitor's hooks and forget them all."""
        for entry in self._entries.values():
            entry.monitor.remove()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Monitor]:
        return iter([entry.monitor for entry in self._entries.values()])

    def __contains__(self, monitor: object) -> bool:
        return any(entry.monitor is monitor for entry in self._entries.values())

    def _drop_dead(self) -> None:
        # a module that was garbage-collected frees its id for reuse: forget its monitors
        for key in [key for key, entry in self._entries.items() if entry.module() is None]:
            self._entries.pop(key).monitor.remove()


@dataclass
class _PoolEntry:
    monitor: Monitor
    module: weakref.ReferenceType[nn.Module]
    users: int
