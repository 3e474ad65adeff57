"""Compiled steps: ``torch.compile`` of a pure step function, falling back to eager.

A single step of a spiking module is a dozen small elementwise operations;
eagerly each is one kernel launch (one dispatch of a few microseconds on a
CPU, a launch on a GPU). :class:`CompiledStep` wraps a pure function (tensors
in, new tensors out, nothing written in place) in ``torch.compile``, which
fuses them into one kernel, and falls back to the eager function when
compilation is unavailable (no C++ compiler or Triton, an unsupported
Python, a backend error): the first failure is kept in :attr:`CompiledStep.error`,
warned about once, and every later call runs eagerly. Compiled and eager
steps give the same values (bit for bit in float64 for the neuron step:
``tests/test_compiled_step.py``).

Where it pays: on a GPU, where a step's launches dominate (``mode="reduce-overhead"``
adds CUDA graphs; not measured here, no GPU was available). On this
project's 2-core CPU the compiled call's own overhead (~15-20 us: guards and
the wrapper) is about what the fusion saves: measured for the demo's
``AdaptiveLIF`` step (300 neurons, refractory, adaptive threshold, one
thread), 27 -> 20 us per step at ``B = 1``, 116 -> 237 us at ``B = 64``
(slower: the generated loop is not vectorised over the bool and int
operations); on a slower instance of the same machine type (2026-12-07,
one eager op ~2.5 us) 58 -> 49 us at ``B = 1`` and 192 -> 439 us at
``B = 64``. So it is an opt-in (:meth:`~plastic.neural.neuron_base.SpikingNeuron.compile_step`),
not the default.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["CompiledStep"]


class CompiledStep:
    """``torch.compile(function, **options)``, or ``function`` itself once compilation failed.

    ``function`` must be pure (it writes none of its arguments): a failed
    compiled call is then simply rerun eagerly with the same arguments.
    ``options`` go to ``torch.compile`` (``mode``, ``dynamic``, ``backend``, ...).
    """

    def __init__(self, function: Callable[..., Any], **options: Any) -> None:
        if not callable(function):
            raise TypeError(f"function: expected a callable, got {type(function).__name__}")
        self.function = function
        self.options = dict(options)
        self.error: BaseException | None = None  # why the compiled form was abandoned (None: in use)
        try:
            self._compiled: Callable[..., Any] | None = torch.compile(function, **options)
        except Exception as error:  # torch.compile itself refused (options, platform)
            self._fail(error)

    @property
    def compiled(self) -> bool:
        """Whether calls still go through the compiled function."""
        return self._compiled is not None

    def _fail(self, error: BaseException) -> None:
        self._compiled = None
        self.error = error
        warnings.warn(
            f"torch.compile of {getattr(self.function, '__name__', self.function)!r} failed "
            f"({type(error).__name__}: {error}); running it eagerly from now on",
            RuntimeWarning,
            stacklevel=3,
        )

    def __call__(self, *args: Any) -> Any:
        compiled = self._compiled
        if compiled is not None:
            try:
                return compiled(*args)
            except Exception as error:  # a compile or backend failure at the first call(s)
                self._fail(error)
        return self.function(*args)

    def __getstate__(self) -> dict[str, Any]:
        # compiled code does not pickle: a copy compiles again when it is unpickled
        return {"function": self.function, "options": self.options, "error": self.error}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["function"], **state["options"])  # type: ignore[misc]
        if state["error"] is not None:
            self._compiled, self.error = None, state["error"]
