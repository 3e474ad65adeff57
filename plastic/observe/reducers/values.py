"""Reducers that keep the observed values themselves: the current one with its history, or the last window."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

import torch
from torch import Tensor

from plastic.functional.interpolation import INTERPOLATIONS
from plastic.functional.validation import (
    check_choice,
    check_non_negative,
    check_positive,
)
from plastic.neural.buffers import set_plain
from plastic.neural.history import RingBuffer
from plastic.observe.reducers.base import Reducer, float_dtype


class PassthroughReducer(Reducer):
    """The latest observation, unchanged: ``peek() = v_t``.

    With ``duration > 0`` the last ``ceil(duration/dt) + 1`` observations are
    kept and ``view(d)`` reads the value ``d`` ago (time units) with the ring
    buffer's interpolation (:mod:`plastic.functional.interpolation`):
    ``previous`` (the sample at or before ``t - d``), ``nearest``, ``linear``
    or ``exp_decay`` (needs ``tau``). Values before the run read as 0.

    Any values are accepted (NaN included: this is a recorder). State keeps
    the observation's dtype, except that ``linear``/``exp_decay`` store
    non-floating values in the default float dtype.

    Args:
        dt: time step (> 0).
        duration: longest readable delay (time units, >= 0).
        interpolation: one of ``previous``, ``nearest``, ``linear``, ``exp_decay``.
        tolerance: snapping tolerance for delays (in steps, >= 0).
        tau: time constant of ``exp_decay`` reads (time units, > 0).
    """

    def __init__(
        self,
        dt: float = 1.0,
        duration: float = 0.0,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
        tau: float | None = None,
    ) -> None:
        super().__init__(dt)
        self._duration = check_non_negative(duration, "duration")
        self.interpolation = str(check_choice(interpolation, "interpolation", INTERPOLATIONS))
        self._tolerance = check_non_negative(tolerance, "tolerance")
        if interpolation == "exp_decay" and tau is None:
            raise ValueError("tau: exp_decay interpolation needs a time constant > 0")
        self.tau = None if tau is None else check_positive(tau, "tau")
        self.register_buffer("latest", torch.empty(0))

    def _config(self) -> dict[str, Hashable]:
        return {
            "duration": self._duration,
            "interpolation": self.interpolation,
            "tolerance": self._tolerance,
            "tau": self.tau,
        }

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        return value

    def _state_dtype(self, value: Tensor) -> torch.dtype:
        if self._shape is not None:
            return self.latest.dtype
        if self.interpolation in ("linear", "exp_decay"):
            return float_dtype(value)
        return value.dtype

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        dtype = self._state_dtype(value)
        self.latest = torch.zeros(shape, dtype=dtype, device=value.device)
        self._make_history(shape, dtype, value.device, 0.0)

    def _update_step(self, value: Tensor) -> None:
        self.latest.copy_(value)
        if self.history is not None:
            self.history.push(value.to(self.latest.dtype))

    def _update_window(self, values: Tensor) -> None:
        self.latest.copy_(values[-1])
        if self.history is not None:
            self.history.push_window(values.to(self.latest.dtype))

    def _reset_state(self) -> None:
        self.latest.zero_()

    def _peek(self) -> Tensor:
        return self.latest.clone()

    def _view(self, lags: Tensor, tolerance_steps: float) -> Tensor:
        assert self.history is not None
        return self._read_history(lags, self.interpolation, tolerance_steps, dt=self._dt, tau=self.tau)


class WindowReducer(Reducer):
    """The last ``steps`` observations, for the vectorized (window) trainers.

    ``peek()`` is ``[steps, *shape]`` in time order, the newest last; rows
    before the first observation are zeros (``False`` for bool). Values are
    kept as observed (dtype included, NaN allowed). ``count`` is the number
    of rows holding observations (at most ``steps``), ``total`` the number of
    steps observed since the last clear.

    Args:
        steps: rows kept (int >= 1).
        dt: time step (> 0; kept for a uniform interface).
    """

    def __init__(self, steps: int, *, dt: float = 1.0) -> None:
        super().__init__(dt)
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps: expected an int >= 1, got {steps!r}")
        if steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        self.steps = steps
        self._total = 0
        self.history = RingBuffer(steps, (0,))
        self._duration = 0.0  # no delayed reads: the window itself is the record

    def _config(self) -> dict[str, Hashable]:
        return {"steps": self.steps}

    @property
    def count(self) -> int:
        """Rows holding observations (``min(total, steps)``)."""
        assert self.history is not None
        return self.history.count if self._shape is not None else 0

    @property
    def total(self) -> int:
        """Steps observed since the last clear (not capped: trainers count what is new)."""
        return self._total

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if self._shape is None:
            return value
        dtype = self._history_data().dtype
        return value if value.dtype == dtype else value.to(dtype)

    def _history_data(self) -> Tensor:
        # read without nn.Module.__getattr__ (at every step); allocated with the first observation
        return cast(Tensor, cast(RingBuffer, self._modules["history"])._buffers["data"])

    def _state_device(self) -> torch.device:
        # the history holds the only buffer: no walk over the module tree at every step
        return self._history_data().device

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        self.history = RingBuffer(self.steps, shape, dtype=value.dtype, device=value.device, fill=0)

    def forward(self, value: Tensor, window: bool = False) -> None:
        # a monitor's every step first: straight into the ring where it fits (record_step)
        if window is False and self.record_step(value):
            return
        super().forward(value, window)

    def record_step(self, value: Tensor) -> bool:
        """Observe ``value`` as one step where it fits the recording as it is; False: nothing done.

        It fits when it is a plain tensor of the fixed sample shape, dtype and
        device that records no graph: every check of :meth:`forward` passes
        and nothing is converted or allocated, so the step goes straight into
        the ring (what ``forward(value)`` then does). Otherwise nothing
        changes and :meth:`forward` takes it (checks, conversion, the first
        observation's allocation). A monitor calls this at every step.
        """
        if not self.fits_step(value):
            return False
        history: RingBuffer = self.__dict__["_modules"]["history"]
        history._push_checked(history._buffers["data"], value)  # type: ignore[arg-type]  # registered
        self.__dict__["_total"] += 1  # a plain int (what set_plain writes)
        return True

    def fits_step(self, value: Tensor) -> bool:
        """Whether one step of ``value`` fits the recording as it is (:meth:`record_step`'s test)."""
        state = self.__dict__  # plain attributes and the tables, without nn.Module.__getattr__
        data: Tensor = state["_modules"]["history"]._buffers["data"]
        return bool(
            type(value) is Tensor
            and state["_shape_fixed"]
            and value.dtype == data.dtype
            and value.shape == state["_shape"]
            and not value.requires_grad
            and value.device == data.device
        )

    def _update_step(self, value: Tensor) -> None:
        cast(RingBuffer, self._modules["history"]).push(value)  # without nn.Module.__getattr__
        set_plain(self, "_total", self._total + 1)  # a plain int: skips nn.Module.__setattr__

    def _update_window(self, values: Tensor) -> None:
        assert self.history is not None
        self.history.push_window(values)
        set_plain(self, "_total", self._total + values.shape[0])

    def _reset_state(self) -> None:
        set_plain(self, "_total", 0)  # the base class clears the history

    def get_extra_state(self) -> Any:
        return {**super().get_extra_state(), "total": self._total}

    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self._total = int(state.get("total", 0))

    def _peek(self) -> Tensor:
        assert self.history is not None
        return self.history.window(self.steps)

    def recent(self, steps: int) -> Tensor:
        """The last ``steps`` observations ``[steps, *shape]``, time order, newest last.

        Unlike :meth:`peek` it may be a view of the storage (no copy: the
        window trainers' read); it changes with the next observation.
        """
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.recent: nothing observed yet")
        # the submodule without nn.Module.__getattr__ (the trainers' read at every call)
        history = cast(RingBuffer | None, self._modules["history"])
        assert history is not None
        return history.recent(steps)

    def view(self, delay: float | Tensor, tolerance: float | None = None) -> Tensor:
        raise NotImplementedError("WindowReducer keeps whole windows: read them with peek()")

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        saved = state_dict.get(prefix + "history.data")
        assert self.history is not None
        if isinstance(saved, Tensor) and saved.shape != self.history.data.shape:
            self.history = RingBuffer(
                self.steps, tuple(saved.shape[1:]), dtype=saved.dtype, device=self._state_device(), fill=0
            )
        super()._load_from_state_dict(state_dict, prefix, *args)
