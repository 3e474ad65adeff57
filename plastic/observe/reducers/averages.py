"""Running averages: exponential moving average (a rate estimate for spikes) and cumulative mean."""

from __future__ import annotations

from collections.abc import Hashable

import torch
from torch import Tensor

from plastic.functional.traces import (
    trace_cumulative_step,
    trace_cumulative_window,
)
from plastic.functional.validation import (
    check_greater,
    check_in_range,
    check_tensor,
)
from plastic.observe.reducers.base import Reducer


class EMAReducer(Reducer):
    """Exponential moving average (a rate estimate for spikes)::

        m_0 = v_0,     m_t = (1 - alpha) * m_{t-1} + alpha * v_t

    It is the cumulative-trace recurrence with decay ``1 - alpha`` and
    amplitude ``alpha`` (:func:`plastic.functional.traces.trace_cumulative_step`).
    Bool values count as 0/1; non-finite values are rejected.

    Args:
        alpha: smoothing factor in ``(0, 1]`` (1 keeps only the latest value).
        dt: time step (> 0; kept for a uniform interface).
    """

    average: Tensor  # a buffer, reassigned at the first observation

    def __init__(self, alpha: float = 0.1, *, dt: float = 1.0) -> None:
        super().__init__(dt)
        self.alpha = check_in_range(check_greater(alpha, "alpha", 0.0), "alpha", 0.0, 1.0)
        self.register_buffer("average", torch.empty(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def _config(self) -> dict[str, Hashable]:
        return {"alpha": self.alpha}

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if value.is_complex():
            raise TypeError(f"value: expected real values, got dtype {value.dtype}")
        check_tensor(value, "value", finite=True)
        return value.to(self._float_state_dtype(value, self.average))

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        self.average = torch.zeros(shape, dtype=self._float_state_dtype(value, self.average), device=value.device)
        self.count = torch.zeros((), dtype=torch.int64, device=value.device)

    def _update_step(self, value: Tensor) -> None:
        moved = trace_cumulative_step(self.average, value, 1.0 - self.alpha, self.alpha)
        self.average.copy_(torch.where(self.count == 0, value, moved))  # no host sync
        self.count.add_(1)

    def _update_window(self, values: Tensor) -> None:
        if int(self.count) == 0:
            self.average.copy_(values[0])
            self.count.add_(1)
            values = values[1:]
        if values.shape[0]:
            _, last = trace_cumulative_window(values, 1.0 - self.alpha, self.alpha, initial=self.average)
            self.average.copy_(last)
            self.count.add_(values.shape[0])

    def _reset_state(self) -> None:
        self.average.zero_()
        self.count.zero_()

    def _peek(self) -> Tensor:
        return self.average.clone()


class CumulativeAverageReducer(Reducer):
    """Running mean over every observation since the last clear::

        mean_n = mean_{n-1} + (v_n - mean_{n-1}) / n

    O(1) memory: the mean and the count ``n``. Bool values count as 0/1;
    non-finite values are rejected.

    Args:
        dt: time step (> 0; kept for a uniform interface).
    """

    mean: Tensor  # a buffer, reassigned at the first observation

    def __init__(self, *, dt: float = 1.0) -> None:
        super().__init__(dt)
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def _prepare(self, value: Tensor, window: bool) -> Tensor:
        if value.is_complex():
            raise TypeError(f"value: expected real values, got dtype {value.dtype}")
        check_tensor(value, "value", finite=True)
        return value.to(self._float_state_dtype(value, self.mean))

    def _allocate(self, shape: tuple[int, ...], value: Tensor) -> None:
        self.mean = torch.zeros(shape, dtype=self._float_state_dtype(value, self.mean), device=value.device)
        self.count = torch.zeros((), dtype=torch.int64, device=value.device)

    def _update_step(self, value: Tensor) -> None:
        self.count.add_(1)
        self.mean.add_((value - self.mean) / self.count)

    def _update_window(self, values: Tensor) -> None:
        # a loop over time, so that the result is bit-identical to single calls
        for step in values:
            self._update_step(step)

    def _reset_state(self) -> None:
        self.mean.zero_()
        self.count.zero_()

    def _peek(self) -> Tensor:
        return self.mean.clone()
