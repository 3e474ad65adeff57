"""Encoder modules: analogue inputs ``[B, *shape]`` to bool spike windows ``[T, B, *shape]``.

Thin ``nn.Module`` wrappers over :mod:`plastic.functional.encoders` so that an
encoder can sit at the head of an ``nn.Sequential``. Encoders hold no state
(no buffers; ``reset()`` does nothing): every call draws a fresh window.
A ``torch.Generator`` given to the constructor makes the draws reproducible;
it must live on the device of the inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plastic.functional.encoders import bernoulli_encode, latency_encode, poisson_encode
from plastic.functional.validation import check_int_at_least, check_positive, check_tensor

__all__ = ["BernoulliEncoder", "LatencyEncoder", "PoissonEncoder"]


class PoissonEncoder(nn.Module):
    """Poisson rate coding: ``S_t ~ Bernoulli(rate * dt / 1000)`` per step.

    Args:
        steps: number of steps ``T`` of each output window.
        dt: step length in ms.
        max_rate: ``None``: inputs are rates in Hz. A number (Hz): inputs are
            intensities in ``[0, 1]`` and the rate is ``intensity * max_rate``
            (Diehl & Cook 2015 use pixel / 255 with ``max_rate = 63.75`` Hz).
        generator: optional ``torch.Generator`` for reproducible draws.
        exact: use the exact bin probability ``1 - exp(-rate * dt / 1000)``
            (see :mod:`plastic.functional.encoders`).

    ``forward(inputs [B, *shape]) -> bool [steps, B, *shape]``.
    """

    def __init__(
        self,
        steps: int,
        dt: float,
        max_rate: float | None = None,
        *,
        generator: torch.Generator | None = None,
        exact: bool = False,
    ) -> None:
        super().__init__()
        self.steps = check_int_at_least(steps, "steps", 1)
        self.dt = check_positive(dt, "dt")
        self.max_rate = None if max_rate is None else check_positive(max_rate, "max_rate")
        if self.max_rate is not None and not exact and self.max_rate * self.dt / 1000.0 > 1.0:
            raise ValueError(
                f"max_rate: max_rate * dt / 1000 must be <= 1, got {self.max_rate} Hz with dt = {self.dt} ms"
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator
        self.exact = bool(exact)

    def forward(self, inputs: Tensor) -> Tensor:
        if self.max_rate is None:
            rates = inputs
        else:
            check_tensor(inputs, "inputs", min_ndim=1, finite=True)
            if inputs.numel() and bool(((inputs < 0) | (inputs > 1)).any()):
                raise ValueError("inputs: expected intensities in [0, 1] when max_rate is set")
            rates = inputs * self.max_rate
        return poisson_encode(rates, self.steps, self.dt, self.generator, exact=self.exact)

    def reset(self) -> None:
        """Nothing to reset: an encoder keeps no state between calls."""

    def extra_repr(self) -> str:
        return f"steps={self.steps}, dt={self.dt}, max_rate={self.max_rate}, exact={self.exact}"


class BernoulliEncoder(nn.Module):
    """Bernoulli coding: ``S_t ~ Bernoulli(p)`` per step, inputs ``p`` in ``[0, 1]``.

    Args:
        steps: number of steps ``T`` of each output window.
        generator: optional ``torch.Generator`` for reproducible draws.

    ``forward(probabilities [B, *shape]) -> bool [steps, B, *shape]``.
    """

    def __init__(self, steps: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.steps = check_int_at_least(steps, "steps", 1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator

    def forward(self, probabilities: Tensor) -> Tensor:
        return bernoulli_encode(probabilities, self.steps, self.generator)

    def reset(self) -> None:
        """Nothing to reset: an encoder keeps no state between calls."""

    def extra_repr(self) -> str:
        return f"steps={self.steps}"


class LatencyEncoder(nn.Module):
    """Latency (intensity-to-latency) coding: one spike per input, the stronger the earlier.

    An intensity ``x`` in ``(0, 1]`` fires once, at step ``min(floor((1 - x) * T), T - 1)``;
    ``x = 0`` never fires (:func:`~plastic.functional.encoders.latency_encode`).

    Args:
        steps: number of steps ``T`` of each output window.

    ``forward(intensities [B, *shape]) -> bool [steps, B, *shape]``.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = check_int_at_least(steps, "steps", 1)

    def forward(self, intensities: Tensor) -> Tensor:
        return latency_encode(intensities, self.steps)

    def reset(self) -> None:
        """Nothing to reset: an encoder keeps no state between calls."""

    def extra_repr(self) -> str:
        return f"steps={self.steps}"
