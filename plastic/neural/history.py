"""A preallocated ring buffer of per-step samples.

Synapses keep their presynaptic history in one (per-synapse delays), and the
observation reducers keep theirs (delayed reads, window recorders). Storage is
allocated once at ``capacity`` samples; a push writes one slot and moves a
pointer (O(1), nothing rebuilt), so memory never grows with the run length.

Lags are counted in steps back from the newest sample (lag 0). Reads at
continuous lags go through :mod:`plastic.functional.interpolation`. Samples
never written read as ``fill`` (0 for spikes and currents: nothing arrived
before the run began).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from plastic.functional.interpolation import check_method, chosen_lag, interpolate, snap_lags
from plastic.functional.validation import check_count, check_tensor
from plastic.neural.buffers import set_plain

__all__ = ["RingBuffer"]


class RingBuffer(nn.Module):
    """Fixed-capacity history ``[capacity, *shape]``.

    Args:
        capacity: number of samples kept (>= 1).
        shape: shape of one sample (without the time dimension).
        dtype: sample dtype (bool for spikes; default: torch.get_default_dtype() at construction).
        device: where the storage lives.
        fill: value returned for samples older than anything written.
    """

    data: Tensor  # a buffer, rebound by reshape_storage and .to()

    def __init__(
        self,
        capacity: int,
        shape: Sequence[int],
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        fill: float | bool = 0,
    ) -> None:
        super().__init__()
        self.capacity = check_count(capacity, "capacity")
        self.fill = fill
        # the default dtype is read when the buffer is made, not when this module was imported
        dtype = torch.get_default_dtype() if dtype is None else dtype
        self.register_buffer("data", torch.full((capacity, *shape), fill, dtype=dtype, device=device))
        self._pointer = 0  # slot of the next write
        self._count = 0  # samples written, saturating at capacity

    # state_dict carries the pointer and count with the data
    def get_extra_state(self) -> Any:
        return {"pointer": self._pointer, "count": self._count, "capacity": self.capacity}

    def set_extra_state(self, state: Any) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"state_dict: ring buffer capacity {state['capacity']} does not match {self.capacity}")
        self._pointer = int(state["pointer"])
        self._count = int(state["count"])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    @property
    def count(self) -> int:
        """Samples held (at most ``capacity``)."""
        return self._count

    def clear(self) -> None:
        """Forget every sample (storage kept)."""
        self.data.fill_(self.fill)
        set_plain(self, "_pointer", 0)
        set_plain(self, "_count", 0)

    def reshape_storage(self, shape: Sequence[int]) -> None:
        """Reallocate for a new sample shape (clears)."""
        self.data = torch.full((self.capacity, *shape), self.fill, dtype=self.data.dtype, device=self.data.device)
        self._pointer = 0
        self._count = 0

    def check_sample(self, value: Tensor, name: str = "value", *, window: bool = False) -> Tensor:
        # the common case first (a tensor of the sample's shape): one comparison per step
        if (
            isinstance(value, Tensor)
            and value.shape[1 if window else 0 :] == self.data.shape[1:]
            and (not window or value.ndim == self.data.ndim)
        ):
            return value
        expected = ((-1,) if window else ()) + self.shape
        return check_tensor(value, name, shape=expected)

    def _slot(self, data: Tensor, index: int) -> Tensor:
        """The view ``data[index]``, made once per storage tensor (a push copies into it)."""
        cached: tuple[Tensor, list[Tensor | None]] | None = self.__dict__.get("_slot_views")
        if cached is None or cached[0] is not data:
            # first push, or ``data`` was rebound (``.to()``, ``reshape_storage``): new views
            cached = (data, [None] * data.shape[0])
            self.__dict__["_slot_views"] = cached
        views = cached[1]
        view = views[index]
        if view is None:
            view = views[index] = data[index]
        return view

    def __getstate__(self) -> dict[str, Any]:
        # the slot views are a cache of ``data``: not part of a copy or a pickle
        return {key: value for key, value in self.__dict__.items() if key != "_slot_views"}

    def push(self, value: Tensor) -> None:
        """Append one sample ``[*shape]``."""
        # the registered buffer, without nn.Module.__getattr__ (always a tensor: registered in __init__)
        data = cast(Tensor, self._buffers["data"])
        if not (isinstance(value, Tensor) and value.shape == data.shape[1:]):
            self.check_sample(value)  # the same test, then the full check with its message
        self._push_checked(data, value)

    def _push_checked(self, data: Tensor, value: Tensor) -> None:
        """Append ``value`` (a tensor of the sample's shape) to the storage ``data``."""
        state = self.__dict__  # the plain ints and the slot views (no nn.Module attribute dispatch)
        pointer = state["_pointer"]
        cached = state.get("_slot_views")
        view = cached[1][pointer] if cached is not None and cached[0] is data else None
        if view is None:
            view = self._slot(data, pointer)
        # ``data[pointer] = value`` through a kept view of the slot (the same copy, less dispatch)
        view.copy_(value)
        self._advance()

    def _advance(self) -> None:
        """Count the sample written into slot ``_pointer`` (by :meth:`_push_checked`, or in place by a
        fused step: :mod:`plastic.neural.fused_step`) and move to the next slot."""
        state = self.__dict__
        # plain ints: what object.__setattr__ writes (nn.Module's table checks skipped, same result)
        pointer, capacity = state["_pointer"], state["capacity"]
        state["_pointer"] = pointer + 1 if pointer + 1 < capacity else 0
        count = state["_count"]
        if count < capacity:
            state["_count"] = count + 1

    def push_window(self, values: Tensor) -> None:
        """Append ``[T, *shape]`` samples (oldest first) in at most two copies."""
        self.check_sample(values, "values", window=True)
        steps = values.shape[0]
        if steps == 0:
            return
        if steps >= self.capacity:
            values = values[steps - self.capacity :]
            self.data.copy_(values)
            set_plain(self, "_pointer", 0)
            set_plain(self, "_count", self.capacity)
            return
        first = min(steps, self.capacity - self._pointer)
        self.data[self._pointer : self._pointer + first] = values[:first]
        if first < steps:
            self.data[: steps - first] = values[first:]
        set_plain(self, "_pointer", (self._pointer + steps) % self.capacity)
        set_plain(self, "_count", min(self._count + steps, self.capacity))

    def newest(self) -> Tensor:
        """The latest sample (``fill`` if none)."""
        return self.back(0)

    def back(self, lag: int) -> Tensor:
        """The sample ``lag`` steps before the newest (``fill`` beyond the history)."""
        if not isinstance(lag, int) or lag < 0:
            raise ValueError(f"lag: expected an int >= 0, got {lag!r}")
        if lag >= self._count:
            return torch.full(self.shape, self.fill, dtype=self.data.dtype, device=self.data.device)
        return self.data[(self._pointer - 1 - lag) % self.capacity]

    def window(self, steps: int | None = None) -> Tensor:
        """The last ``steps`` samples in time order, ``[steps, *shape]``.

        Positions older than the history hold ``fill``; ``steps`` defaults to
        the samples held.
        """
        steps = self._count if steps is None else steps
        if not isinstance(steps, int) or steps < 0 or steps > self.capacity:
            raise ValueError(f"steps: expected an int in [0, {self.capacity}], got {steps!r}")
        index = (self._pointer - steps + torch.arange(steps, device=self.data.device)) % self.capacity
        out = self.data[index]
        missing = steps - self._count
        if missing > 0:
            out[:missing] = self.fill
        return out

    def recent(self, steps: int) -> Tensor:
        """The last ``steps`` samples in time order, as :meth:`window`, but a view of the
        storage (no copy) when they are held and lie contiguously in it.

        A view changes with the next push: read it before writing again.
        """
        if not isinstance(steps, int) or steps < 0 or steps > self.capacity:
            raise ValueError(f"steps: expected an int in [0, {self.capacity}], got {steps!r}")
        start = (self._pointer - steps) % self.capacity
        if steps <= self._count and start + steps <= self.capacity:
            # the buffer without nn.Module.__getattr__ (a trainer's read at every call)
            data: Tensor = self._buffers["data"]  # type: ignore[assignment]
            return data[start : start + steps]
        return self.window(steps)

    def read(
        self,
        lags: Tensor,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
        *,
        dt: float = 1.0,
        tau: float | None = None,
    ) -> Tensor:
        """Samples at continuous per-element lags (in steps).

        ``lags`` must broadcast with a sample (aligned on the right) and may
        add leading dimensions; the result has the broadcast shape (a
        ``[B, 1, N_in]`` spike history read at ``[N_out, N_in]`` delays gives
        ``[B, N_out, N_in]``; a ``[B, N_in]`` history read at
        ``[N_out, 1, N_in]`` gives ``[N_out, B, N_in]``).
        """
        return self._gather(self.data, self._pointer, self._count, lags, interpolation, tolerance, dt, tau)

    def read_window(
        self,
        values: Tensor,
        lags: Tensor,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
        *,
        dt: float = 1.0,
        tau: float | None = None,
    ) -> Tensor:
        """Delayed reads for every step of a new window, then push the window.

        ``values`` ``[T, *shape]`` are the window's samples. Step ``t`` of the
        result is what :meth:`read` would return right after pushing
        ``values[t]``; storage never grows past ``capacity`` (the history and
        the window are joined in a temporary).
        """
        self.check_sample(values, "values", window=True)
        check_method(interpolation)
        steps = values.shape[0]
        joined = torch.cat([self.window(self.capacity), values.to(self.data.dtype)])
        total = joined.shape[0]
        out = []
        for t in range(steps):
            # pointer just past step t of the window inside ``joined``
            pointer = self.capacity + t + 1
            out.append(
                self._gather(
                    joined,
                    pointer % total,
                    min(self._count + t + 1, self.capacity),
                    lags,
                    interpolation,
                    tolerance,
                    dt,
                    tau,
                    total,
                )
            )
        self.push_window(values)
        return torch.stack(out) if out else values.new_zeros((0,))

    def _gather(
        self,
        data: Tensor,
        pointer: int,
        count: int,
        lags: Tensor,
        interpolation: str,
        tolerance: float,
        dt: float,
        tau: float | None,
        capacity: int | None = None,
    ) -> Tensor:
        check_method(interpolation)
        lags = check_tensor(lags, "lags")
        try:
            shape = torch.broadcast_shapes(self.shape, lags.shape)
        except RuntimeError:
            raise ValueError(f"lags: shape {tuple(lags.shape)} does not broadcast with samples {self.shape}") from None
        # lags may add leading dimensions (e.g. [N_out, 1, N_in] against [B, N_in])
        data = data.reshape(data.shape[0], *((1,) * (len(shape) - len(self.shape))), *self.shape)
        lags = lags.reshape((1,) * (len(shape) - lags.ndim) + tuple(lags.shape))
        if lags.numel() and (not bool(torch.isfinite(lags).all()) or bool((lags < 0).any())):
            raise ValueError("lags: expected finite values >= 0")
        capacity = capacity or self.capacity
        lags = snap_lags(lags.to(torch.float64 if lags.dtype == torch.float64 else torch.float32), tolerance)
        earlier_lag, later_lag = chosen_lag(lags, interpolation)
        expanded = data.expand(data.shape[0], *shape)

        def take(lag: Tensor) -> Tensor:
            index = ((pointer - 1 - lag) % capacity).expand(shape).unsqueeze(0)
            sample = expanded.gather(0, index).squeeze(0)
            beyond = (lag >= count).expand(shape)
            return sample.masked_fill(beyond, self.fill)

        earlier = take(earlier_lag)
        later = earlier if later_lag is earlier_lag else take(later_lag)
        return interpolate(earlier, later, (lags - torch.floor(lags)).expand(shape), interpolation, dt=dt, tau=tau)
