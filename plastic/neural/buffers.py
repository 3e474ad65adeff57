"""Rebinding registered buffers on the per-step path.

``module.name = tensor`` goes through :meth:`torch.nn.Module.__setattr__`,
which checks the parameter, module and buffer tables and re-registers the
buffer (several microseconds a call). A network step rebinds tens of state
buffers, so on small batches that dispatch is a large share of the step.
:func:`rebind_buffer` gives the same result (the same tensor under the same
name, persistence unchanged) by replacing the entry of ``module._buffers``.
Nothing is copied in place, so autograd graphs held by the state are kept
exactly as with the plain assignment.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.nn.modules import module as _module_implementation

__all__ = ["rebind_buffer", "set_plain"]


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
