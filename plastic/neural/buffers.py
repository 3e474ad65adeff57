"""Rebinding registered buffers on the per-step path.

``module.name = tensor`` goes through :meth:`torch.nn.Module.__setattr__`,
which checks the parameter, module and buffer tables and re-registers the
buffer (several microseconds a call). A network step rebinds tens of state
buffers, so on small batches that dispatch is a large share of the step.
:func:`rebind_buffer` gives the same result (the same tensor under the same
name, persistence unchanged) by replacing the entry of ``module._buffers``.
Nothing is copied in place, so autograd graphs held by the state are kept
exactly as with the plain assignment.

Reading goes the other way: ``module.name`` for a registered buffer,
parameter or submodule fails the ordinary attribute lookup and ends in
:meth:`torch.nn.Module.__getattr__`, a Python call per dotted level. A
monitor reads such a path at every step; :func:`attribute_reader` reads it
from the modules' tables, where the plain lookup would find it there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torch.nn.modules import module as _module_implementation

__all__ = ["attribute_reader", "rebind_buffer", "set_plain"]


def rebind_buffer(module: nn.Module, name: str, value: Tensor) -> None:
    """``module.<name> = value`` for an already registered buffer, without the dispatch.

    Falls back to the plain assignment (identical behaviour) when ``value``
    is not a plain :class:`torch.Tensor` (a ``Parameter``, a ``Buffer``, a
    subclass, ``None``), when ``name`` is not a registered buffer, or when
    global buffer registration hooks are installed (they must see the
    assignment).
    """
    buffers = module._buffers
    if type(value) is Tensor and name in buffers and not _module_implementation._global_buffer_registration_hooks:
        buffers[name] = value
    else:
        setattr(module, name, value)


def set_plain(module: nn.Module, name: str, value: Any) -> None:
    """``module.<name> = value`` for a plain (non-tensor, non-module) attribute.

    :meth:`torch.nn.Module.__setattr__` ends in ``object.__setattr__`` for a
    value that is neither a tensor nor a module under a name that is not a
    parameter, buffer or submodule; this goes there directly.
    """
    object.__setattr__(module, name, value)


# (class, name) -> whether ``name`` on an instance of the class is read from the module tables
_TABLE_READ: dict[tuple[type, str], bool] = {}


def _reads_from_tables(kind: type, name: str) -> bool:
    """Whether ``instance.name`` of a ``kind`` is what nn.Module.__getattr__ finds in the tables.

    True for an ``nn.Module`` class without a class attribute ``name`` (a
    property or method would be found first) whose ``__getattr__`` is
    nn.Module's, or that declares the names its own ``__getattr__`` handles
    (``deferred_attributes``, e.g. a synapse's deferred state) without ``name``.
    """
    key = (kind, name)
    known = _TABLE_READ.get(key)
    if known is None:
        own_getattr = getattr(kind, "__getattr__", None) is not nn.Module.__getattr__
        deferred = getattr(kind, "deferred_attributes", None)
        known = (
            issubclass(kind, nn.Module)
            and not hasattr(kind, name)
            and (not own_getattr or (isinstance(deferred, frozenset) and name not in deferred))
        )
        _TABLE_READ[key] = known
    return known


def _read(value: Any, name: str, known: dict[type, bool]) -> Any:
    """``value.<name>``; ``known``: a reader's cache of :func:`_reads_from_tables` for ``name`` by type."""
    kind = type(value)
    tables = known.get(kind)
    if tables is None:
        tables = known[kind] = _reads_from_tables(kind, name)
    if tables:
        state = value.__dict__
        if name not in state:  # an instance attribute would be found first
            # nn.Module.__getattr__'s order
            parameters = state["_parameters"]
            if name in parameters:
                return parameters[name]
            buffers = state["_buffers"]
            if name in buffers:
                return buffers[name]
            modules = state["_modules"]
            if name in modules:
                return modules[name]
    return getattr(value, name)


def attribute_reader(path: str) -> Callable[[Any], Any]:
    """A reader of the dotted attribute ``path``: ``attribute_reader("a.b")(x)`` is ``x.a.b``.

    The same values (and errors) as ``operator.attrgetter(path)``; submodules,
    buffers and parameters of ``nn.Module`` levels are taken from the module's
    tables without :meth:`torch.nn.Module.__getattr__` (see the module notes).
    Each level keeps, by type, whether its name is read from the tables.
    """
    names = tuple(path.split("."))
    caches: tuple[dict[type, bool], ...] = tuple({} for _ in names)
    if len(names) == 1:
        (only,), (known,) = names, caches
        return lambda value: _read(value, only, known)
    if len(names) == 2:
        (first, second), (known_first, known_second) = names, caches
        return lambda value: _read(_read(value, first, known_first), second, known_second)
    levels = tuple(zip(names, caches, strict=True))

    def read(value: Any) -> Any:
        for name, known in levels:
            value = _read(value, name, known)
        return value

    return read
