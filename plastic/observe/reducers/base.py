"""The reducer base class: shape, dtype and device fixed by the first observation, state in buffers,
history and delayed reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor, nn

from plastic.functional.interpolation import snap_lags
from plastic.functional.validation import (
    check_in_range,
    check_non_negative,
    check_positive,
    check_tensor,
)
from plastic.neural.buffers import set_plain
from plastic.neural.history import RingBuffer

Criterion = Callable[[Tensor], Tensor]


def check_finite_real(value: object, name: str) -> float:
    result = check_in_range(value, name, -math.inf, math.inf)
    if not math.isfinite(result):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    return result


def _history_capacity(duration: float, dt: float) -> int:
    # lags 0 .. ceil(duration/dt) are readable; the rounding guards against
    # 0.3 / 0.1 = 2.9999999999999996 style quotients
    return math.ceil(round(duration / dt, 9)) + 1


def float_dtype(value: Tensor) -> torch.dtype:
    return value.dtype if value.is_floating_point() else torch.get_default_dtype()


class Reducer(nn.Module):
    """Base class: shape fixing, validation before mutation, lazy state, ``view``.

    Subclasses implement ``_prepare`` (validate and convert an observation,
    no state change), ``_allocate`` (create the state for a sample shape, on
    the device of the raw observation given to it),
    ``_update_step``/``_update_window``, ``_reset_state``, ``_peek`` and
    ``_config``.

    Args:
        dt: time step (> 0, the unit of every time constant and delay).
    """

    def __init__(self, dt: float = 1.0) -> None:
        super().__init__()
        self._dt = check_positive(dt, "dt")
        self._shape: tuple[int, ...] | None = None
        self._shape_fixed = False
        self.history: RingBuffer | None = None

    # ---------------------------------------------------------------- public
    @property
    def dt(self) -> float:
        """Time step (read-only: the history capacity depends on it)."""
        return self._dt

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Sample shape fixed by the first observation (``None`` before)."""
        return self._shape

    def config_key(self) -> tuple[Hashable, ...]:
        """``(class name, parameters...)``: equal keys mean interchangeable reducers."""
        return (type(self).__name__, self._dt, *self._config().values())

    def forward(self, value: Tensor, window: bool = False) -> None:
        """Observe one step ``[*shape]`` or, with ``window=True``, ``[T, *shape]``.

        Returns nothing (so that a monitored run does not build a copy per
        step); read the result with :meth:`peek` or :meth:`view`.
        """
        value = check_tensor(value, "value")
        if (
            window is False
            and self._shape_fixed
            and value.shape == self._shape
            and value.device == self._state_device()
        ):
            # a step of the fixed shape on the state's device (a monitor's every step): every check
            # below passes and nothing is allocated; a value without a graph needs no detach
            self._update_step(self._prepare(value.detach() if value.requires_grad else value, False))
            return
        if not isinstance(window, bool):
            raise TypeError(f"window: expected a bool, got {window!r}")
        if window and value.ndim == 0:
            raise ValueError("value: a window needs a leading time dimension, got a 0-d tensor")
        shape = tuple(value.shape[1:] if window else value.shape)
        state_device = self._state_device()
        if self._shape is not None and self._shape_fixed:
            if shape != self._shape:
                expected = ("T", *self._shape) if window else self._shape
                raise ValueError(
                    f"value: expected shape {tuple(expected)} (fixed by the first call; "
                    f"clear() to change it), got {tuple(value.shape)}"
                )
            if value.device != state_device:
                raise ValueError(f"value: expected a tensor on {state_device}, got {value.device}")
        prepared = self._prepare(value.detach(), window)  # validates; touches no state
        if self._shape is None or shape != self._shape or value.device != state_device:
            self._allocate(shape, value)
            self._shape = shape
        set_plain(self, "_shape_fixed", True)  # a plain bool: skips nn.Module.__setattr__
        if window:
            if prepared.shape[0]:
                self._update_window(prepared)
        else:
            self._update_step(prepared)

    def peek(self) -> Tensor:
        """The reduced value now (a new tensor, safe to keep)."""
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.peek: nothing observed yet")
        return self._peek()

    def clear(self) -> None:
        """Restore the initial state; the next call may fix another shape."""
        set_plain(self, "_shape_fixed", False)
        if self._shape is not None:
            self._reset_state()
        if self.history is not None:
            self.history.clear()

    def reset(self) -> None:
        """Same as :meth:`clear`."""
        self.clear()

    def view(self, delay: float | Tensor, tolerance: float | None = None) -> Tensor:
        """The reduced value as it was ``delay`` ago (time units), per element.

        The sample is ``[B, *rest]``; ``delay`` broadcasts against ``rest``
        (aligned on the right, never against the batch) and the result is
        ``[B, *broadcast(delay.shape, rest)]``: a ``[N_out, N_in]`` delay per
        synapse against a ``[B, N_in]`` presynaptic sample gives ``[B, N_out,
        N_in]``; a scalar delay gives ``[B, *rest]``. Needs ``0 <= delay <=
        duration``. ``tolerance`` (in steps, as in
        :mod:`plastic.functional.interpolation`; default: the constructor's)
        snaps a delay within ``tolerance * dt`` of a multiple of ``dt`` onto
        that multiple.
        """
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.view: nothing observed yet")
        tolerance = self._tolerance if tolerance is None else check_non_negative(tolerance, "tolerance")
        lags = self._delay_lags(delay, tolerance)
        if self.history is None:
            return self._expand_sample(self._peek(), lags.shape).clone()
        return self._view(lags, tolerance)

    # ----------------------------------------------------------- subclasses
    _tolerance: float = 1e-7
    _duration: float = 0.0

    def _config(self) -> dict[str, Hashable]:
        """Named parameters, in the order of :meth:`config_key`."""
        return {}

    def _state_device(self) -> torch.device:
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        raise NotImplementedError

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        raise NotImplementedError

    def _update_step(self, value: Tensor) -> None:
        raise NotImplementedError

    def _update_window(self, values: Tensor) -> None:
        raise NotImplementedError

    def _reset_state(self) -> None:
        raise NotImplementedError

    def _peek(self) -> Tensor:
        raise NotImplementedError

    def _view(self, lags: Tensor, tolerance_steps: float) -> Tensor:
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def _make_history(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, fill: float) -> None:
        if self._duration > 0:
            self.history = RingBuffer(
                _history_capacity(self._duration, self._dt), shape, dtype=dtype, device=device, fill=fill
            )

    def _delay_lags(self, delay: float | Tensor, tolerance: float) -> Tensor:
        """Delays (time) as snapped lags (steps, float64), validated against the history."""
        device = self._state_device()
        if isinstance(delay, Tensor):
            check_tensor(delay, "delay")
            if delay.device != device:
                raise ValueError(f"delay: expected a tensor on {device}, got {delay.device}")
            if delay.dtype == torch.bool or delay.is_complex():
                raise TypeError(f"delay: expected real delays, got dtype {delay.dtype}")
            delay_tensor = delay.detach().to(torch.float64)
        else:
            delay_tensor = torch.tensor(check_finite_real(delay, "delay"), dtype=torch.float64, device=device)
        rest = (self._shape or ())[1:]
        try:
            torch.broadcast_shapes(rest, delay_tensor.shape)
        except RuntimeError:
            raise ValueError(
                f"delay: shape {tuple(delay_tensor.shape)} does not broadcast with the sample "
                f"without its batch dimension, {tuple(rest)}"
            ) from None
        lags = snap_lags(delay_tensor / self._dt, tolerance)
        longest = self.history.capacity - 1 if self.history is not None else 0
        if isinstance(delay, Tensor) and delay.dtype != torch.float64 and delay.is_floating_point():
            # the duration itself in a coarser dtype rounds up past it (float32 0.3 is 0.30000001):
            # within that dtype's resolution it is the duration
            resolution = torch.finfo(delay.dtype).eps * longest
            lags = torch.where((lags > longest) & (lags <= longest + resolution), float(longest), lags)
        if delay_tensor.numel() and (
            not bool(torch.isfinite(lags).all()) or bool((lags < 0).any()) or bool((torch.ceil(lags) > longest).any())
        ):
            raise ValueError(
                f"delay: expected finite values in [0, duration={self._duration}] "
                f"(history of {longest} steps of dt={self._dt})"
            )
        return lags

    def _per_sample_shape(self, delay_shape: torch.Size) -> tuple[int, ...]:
        """The sample shape with singleton dimensions after the batch, one per extra delay dimension."""
        shape = self._shape or ()
        rest = shape[1:]
        extra = len(torch.broadcast_shapes(rest, delay_shape)) - len(rest)
        return (*shape[:1], *(1,) * extra, *rest)

    def _expand_sample(self, sample: Tensor, delay_shape: torch.Size) -> Tensor:
        shape = self._per_sample_shape(delay_shape)
        out_shape = (*shape[:1], *torch.broadcast_shapes(shape[1:], delay_shape))
        return sample.reshape(shape).expand(out_shape)

    def _read_history(self, lags: Tensor, interpolation: str, tolerance_steps: float, **kwargs: Any) -> Tensor:
        """``history.read`` with the delay dimensions placed after the batch."""
        assert self.history is not None
        shape = self._per_sample_shape(lags.shape)
        history = self.history
        if shape != self._shape:
            # delays add dimensions: read from a copy of the history shaped
            # [B, 1, ..., *rest] (same samples, same count; a per-call temporary)
            history = RingBuffer(
                self.history.capacity,
                shape,
                dtype=self.history.data.dtype,
                device=self.history.data.device,
                fill=self.history.fill,
            )
            held = self.history.window(self.history.count)
            history.push_window(held.reshape(held.shape[0], *shape))
        return history.read(lags, interpolation, tolerance_steps, **kwargs)

    # ------------------------------------------------------ state_dict
    def get_extra_state(self) -> Any:
        return {"shape": self._shape, "shape_fixed": self._shape_fixed}

    def set_extra_state(self, state: Any) -> None:
        self._shape = None if state["shape"] is None else tuple(state["shape"])
        self._shape_fixed = bool(state["shape_fixed"])

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # State is allocated lazily at the first observation: a fresh reducer
        # first takes the saved shapes (and dtypes) so that loading fills it.
        device = self._state_device()
        for name, buffer in list(self._buffers.items()):
            saved = state_dict.get(prefix + name)
            if isinstance(saved, Tensor) and buffer is not None and saved.shape != buffer.shape:
                self._buffers[name] = torch.empty(saved.shape, dtype=saved.dtype, device=device)
        saved = state_dict.get(prefix + "history.data")
        if (
            isinstance(saved, Tensor)
            and self._duration > 0
            and (self.history is None or self.history.data.shape != saved.shape)
        ):
            self._make_history(tuple(saved.shape[1:]), saved.dtype, device, self._history_fill())
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _history_fill(self) -> float:
        return 0.0

    def _float_state_dtype(self, value: Tensor, buffer: Tensor) -> torch.dtype:
        """dtype of float state: kept once allocated; else a floating value's
        dtype; else the placeholder's (the default dtype, or what ``.to()`` set)."""
        if self._shape is not None:
            return buffer.dtype
        if value.is_floating_point():
            return value.dtype
        return buffer.dtype if buffer.is_floating_point() else torch.get_default_dtype()

    def extra_repr(self) -> str:
        settings = {"dt": self._dt, **self._config()}
        return ", ".join(f"{name}={value!r}" for name, value in settings.items())


def apply_criterion(criterion: Criterion, value: Tensor) -> Tensor:
    events = criterion(value)
    if not isinstance(events, Tensor) or events.dtype != torch.bool:
        raise TypeError(
            f"criterion: expected a function returning a bool tensor, got {type(events).__name__}"
            + (f" of dtype {events.dtype}" if isinstance(events, Tensor) else "")
        )
    if events.shape != value.shape:
        raise ValueError(f"criterion: expected a result of shape {tuple(value.shape)}, got {tuple(events.shape)}")
    return events
