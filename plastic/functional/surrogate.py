"""Heaviside step with surrogate gradients.

A spiking neuron fires with ``S = Heaviside(x)``, ``x = H - V_th``. The step
function has zero derivative almost everywhere, so gradient-based training
replaces its derivative in the backward pass by a smooth bump ``g(x)`` (the
*surrogate gradient*) while the forward pass stays the exact step.

Convention: ``Heaviside(0) = 1`` (a membrane potential exactly at threshold
fires, i.e. ``S = [x >= 0]``).

Surrogates (``alpha`` is dimensionless; ``x`` is in the unit of the voltage):

* ``ATan(alpha=2)``:  ``g(x) = (alpha/2) / (1 + (pi/2 * alpha * x)^2)``, the
  derivative of ``arctan(pi/2 * alpha * x)/pi + 1/2``.
* ``Sigmoid(alpha=4)``: ``g(x) = alpha * sig(alpha*x) * (1 - sig(alpha*x))``,
  the derivative of ``sig(alpha * x)``.

Both integrate to 1 over the real line, like the Dirac delta they stand in for.

References: Neftci, Mostafa & Zenke (2019), "Surrogate gradient learning in
spiking neural networks", IEEE Signal Processing Magazine 36(6); Fang et al.
(2021), "Incorporating learnable membrane time constant to enhance learning of
spiking neural networks", ICCV (the arctan surrogate).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import positive
from plastic.functional.validation import check_tensor

__all__ = ["DEFAULT_SURROGATE", "ATan", "Sigmoid", "SurrogateGradient", "heaviside"]


def heaviside(x: Tensor) -> Tensor:
    """``[x >= 0]`` in ``x``'s dtype (``Heaviside(0) = 1``); no gradient."""
    return (x >= 0).to(x.dtype)


class _HeavisideWithSurrogate(torch.autograd.Function):
    """Forward: exact Heaviside. Backward: ``grad * surrogate.derivative(x)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, surrogate: SurrogateGradient) -> Tensor:
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


@attrs.frozen
class SurrogateGradient:
    """Base class: ``surrogate(x)`` is ``Heaviside(x)`` forward and
    ``derivative(x)`` backward. Subclasses define ``derivative``.

    Parameters
    ----------
    alpha:
        Sharpness (dimensionless, > 0). Larger means a narrower, taller bump.
    """

    alpha: float = attrs.field(validator=positive)

    def derivative(self, x: Tensor) -> Tensor:
        """Surrogate derivative ``g(x)`` of the Heaviside step (elementwise)."""
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        """``Heaviside(x)`` with gradient ``grad * g(x)``."""
        check_tensor(x, "x", floating=True)
        # torch's Function.apply is unannotated (the subclass's call is not covered by untyped_calls_exclude)
        spikes: Tensor = _HeavisideWithSurrogate.apply(x, self)  # type: ignore[no-untyped-call]
        return spikes


@attrs.frozen
class ATan(SurrogateGradient):
    """Arctan surrogate: ``g(x) = (alpha/2) / (1 + (pi/2 * alpha * x)^2)``.

    Peak ``alpha/2`` at ``x = 0``. Default ``alpha = 2`` (peak 1).
    Reference: Fang et al. (2021), ICCV.
    """

    alpha: float = attrs.field(default=2.0, validator=positive)

    def derivative(self, x: Tensor) -> Tensor:
        scaled = (math.pi / 2 * self.alpha) * x
        return (self.alpha / 2) / (1 + scaled * scaled)


#: the surrogate neurons use unless told otherwise (frozen, so one instance serves every default)
DEFAULT_SURROGATE = ATan()


@attrs.frozen
class Sigmoid(SurrogateGradient):
    """Sigmoid surrogate: ``g(x) = alpha * sig(alpha*x) * (1 - sig(alpha*x))``.

    Peak ``alpha/4`` at ``x = 0``. Default ``alpha = 4`` (peak 1).
    Reference: Neftci, Mostafa & Zenke (2019).
    """

    alpha: float = attrs.field(default=4.0, validator=positive)

    def derivative(self, x: Tensor) -> Tensor:
        sig = torch.sigmoid(self.alpha * x)
        return self.alpha * sig * (1 - sig)
