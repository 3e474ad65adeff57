"""Step observers: what a monitor calls around a module's forward, without torch's forward hooks.

A forward hook on an ``nn.Module`` sends every call through the general
dispatch of :meth:`torch.nn.Module._call_impl` (hook tables, keyword
handling, the global hooks), several microseconds per call before the hook
itself runs. A network that steps a cell thousands of times with two or
three monitors on it pays that at every step. :class:`Observable` modules
(:class:`~plastic.neural.cell.Cell`) keep their own observer tables instead:
``register_step_observer(hook)`` runs ``hook(module, args, output)`` right
after each call (``pre=True``: ``hook(module, args)`` right before it), and
the call itself takes the plain path of ``nn.Module.__call__``. Torch's own
hooks registered on the module still run, inside the observers (a pre
observer sees the call before any forward pre hook, a post observer after
every forward hook). :class:`~plastic.observe.monitors.Monitor` uses these
tables on observable modules and forward hooks on every other module.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module_implementation
from torch.utils.hooks import RemovableHandle

__all__ = [
    "Observable",
    "PostObserver",
    "PreObserver",
    "any_call_hooks",
    "has_call_hooks",
    "own_call_hooks",
]

PreObserver = Callable[[nn.Module, tuple[Any, ...]], None]
PostObserver = Callable[[nn.Module, tuple[Any, ...], Any], None]


class Observable(nn.Module):
    """An ``nn.Module`` with step observers (see the module docstring)."""

    def register_step_observer(self, hook: PreObserver | PostObserver, *, pre: bool = False) -> RemovableHandle:
        """Call ``hook`` around every call of this module; ``handle.remove()`` detaches it.

        Post observers (default) get ``(module, args, output)`` after the
        call, pre observers (``pre=True``) ``(module, args)`` before it, in
        the order they were registered. Keyword arguments of the call are
        not passed to observers.
        """
        if not callable(hook):
            raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")
        name = "_pre_step_observers" if pre else "_post_step_observers"
        table = self.__dict__.get(name)
        if table is None:
            table = OrderedDict()
            object.__setattr__(self, name, table)  # a plain attribute (not state, not a submodule)
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def step_observer_count(self) -> int:
        """How many step observers (pre and post) are attached."""
        return len(self.__dict__.get("_pre_step_observers") or ()) + len(
            self.__dict__.get("_post_step_observers") or ()
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = self.__dict__
        pre, post = state.get("_pre_step_observers"), state.get("_post_step_observers")
        if pre:
            for hook in tuple(pre.values()):  # a copy: an observer may remove itself
                hook(self, args)
        # nn.Module.__call__ calls forward directly where nothing else is to run; so does this, without
        # the two calls of its dispatch (a microsecond per step)
        result = nn.Module.__call__(self, *args, **kwargs) if has_call_hooks(self) else self.forward(*args, **kwargs)
        if post:
            for hook in tuple(post.values()):
                hook(self, args, result)
        return result


def has_call_hooks(module: nn.Module) -> bool:
    """Whether a call of ``module`` does more than ``module.forward(...)``.

    Its own forward or backward hooks, torch's global ones, a compiled call
    (``module.compile()``) or a JIT trace in progress: without any of them,
    ``module.forward(...)`` does what ``module(...)`` does (the fast path of
    :meth:`torch.nn.Module._call_impl`), minus the dispatch; the per-step
    callers use it to skip that dispatch.
    """
    return own_call_hooks(module.__dict__) or _global_call_hooks()


def any_call_hooks(*modules: nn.Module) -> bool:
    """Whether :func:`has_call_hooks` holds for any of ``modules`` (torch's global tables read once)."""
    if _global_call_hooks():
        return True
    for module in modules:  # noqa: SIM110  # a loop, not any(): no generator at every step
        if own_call_hooks(module.__dict__):
            return True
    return False


def own_call_hooks(state: dict[str, Any]) -> bool:
    """:func:`has_call_hooks` without torch's global tables (for a caller that read them for this call), of
    the module whose attributes (``module.__dict__``) are ``state``."""
    # the module's hook tables are plain attributes
    return bool(
        state["_forward_hooks"]
        or state["_forward_pre_hooks"]
        or state["_backward_hooks"]
        or state["_backward_pre_hooks"]
        or state.get("_compiled_call_impl") is not None
    )


def _global_call_hooks() -> bool:
    return bool(
        _GLOBAL_FORWARD_HOOKS
        or _GLOBAL_FORWARD_PRE_HOOKS
        or _GLOBAL_BACKWARD_HOOKS
        or _GLOBAL_BACKWARD_PRE_HOOKS
        or _tracing_state()
    )


# torch's global hook tables (filled and emptied in place by the register functions, never rebound)
_GLOBAL_FORWARD_HOOKS = _module_implementation._global_forward_hooks
_GLOBAL_FORWARD_PRE_HOOKS = _module_implementation._global_forward_pre_hooks
_GLOBAL_BACKWARD_HOOKS = _module_implementation._global_backward_hooks
_GLOBAL_BACKWARD_PRE_HOOKS = _module_implementation._global_backward_pre_hooks
_tracing_state = torch._C._get_tracing_state
