"""Spike-time kernels: the weight change a rule assigns to one pre/post spike pair.

Protocol
--------
A kernel is any callable ``kernel(delta, **kwargs) -> Tensor`` where

* ``delta = t_post - t_pre`` is a tensor of spike-time differences (ms, or the
  unit of ``dt``); ``delta >= 0`` means the presynaptic spike came first
  (causal pair), ``delta < 0`` that the postsynaptic spike came first;
* the result has ``delta``'s shape, dtype and device;
* keyword arguments are the kernel's parameters; tensor values broadcast
  against ``delta`` (e.g. one time constant per synapse);
* ``NaN`` in ``delta`` means "no spike yet": the built-in kernels return NaN
  there (NaN propagates) and the trainer drops it (:func:`split_kernel_values`
  maps NaN to "no change");
* ``+inf``/``-inf`` (a spike infinitely long ago) gives 0 for every built-in
  kernel that decays (all of them except a rectangular window reaching to
  infinity).

Sign convention (DESIGN.md, "Kernel STDP"): a kernel value is the *signed*
weight change of the pair. Positive values go to potentiation, negative values
(negated) to depression, whichever kernel produced them. The default
exponential kernels are::

    K_post(delta) = eta_post * exp(-|delta| / tau_post) * [delta >= 0]
    K_pre(delta)  = eta_pre  * exp(-|delta| / tau_pre)  * [delta <  0]

so classic Hebbian STDP (Bi & Poo 1998) has ``eta_post > 0`` and
``eta_pre < 0``; anti-Hebbian flips both signs; potentiation-only sets
``eta_pre >= 0``, depression-only ``eta_post <= 0``. (The trace form in
:mod:`plastic.functional.stdp` writes depression as ``-eta_pre * ...``, so there
a Hebbian rule has ``eta_pre > 0``; the two forms agree for
``eta_pre(kernel) = -eta_pre(trace)``.)

References: Bi & Poo (1998), J. Neurosci. 18:10464 (the measured window);
Song, Miller & Abbott (2000), Nat. Neurosci. 3:919 (exponential window).
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from plastic.functional.validation import check_tensor

__all__ = [
    "Kernel",
    "exp_post",
    "exp_pre",
    "gaussian",
    "mexican_hat",
    "rectangular",
    "split_kernel_values",
    "symmetric_exp",
]

Parameter = float | Tensor


@runtime_checkable
class Kernel(Protocol):
    """``kernel(delta, **kwargs) -> Tensor`` of ``delta``'s shape and dtype.

    ``delta = t_post - t_pre`` (unit of ``dt``); NaN means "no spike" and must
    give NaN or 0; ``+-inf`` should give 0 for a decaying kernel.
    """

    def __call__(self, delta: Tensor, **kwargs: Any) -> Tensor: ...


def _check_delta(delta: object) -> Tensor:
    return check_tensor(delta, "delta", floating=True)


def _check_positive_parameter(value: Parameter, name: str) -> None:
    """Time constants and widths: > 0 (scalars or every element of a tensor)."""
    if isinstance(value, Tensor):
        if value.numel() and not bool((value > 0).all()):
            raise ValueError(f"{name}: expected values > 0")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a real number or a tensor, got {type(value).__name__}")
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{name}: expected a value > 0, got {value!r}")


def _check_number(value: Parameter, name: str) -> None:
    if isinstance(value, Tensor):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a real number or a tensor, got {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{name}: expected a number, got NaN")


def _keep_nan(delta: Tensor, values: Tensor) -> Tensor:
    """NaN where ``delta`` is NaN (no spike), whatever the formula gave."""
    return torch.where(torch.isnan(delta), delta, values)


def _zero_like(delta: Tensor) -> Tensor:
    return torch.zeros((), dtype=delta.dtype, device=delta.device)


def exp_post(delta: Tensor, eta_post: Parameter = 1.0, tau_post: Parameter = 20.0) -> Tensor:
    """Causal exponential kernel ``eta_post * exp(-|delta|/tau_post) * [delta >= 0]``.

    Args:
        delta: ``t_post - t_pre`` (unit of ``dt``, ms by convention).
        eta_post: amplitude (weight units); > 0 potentiates causal pairs.
        tau_post: decay time constant (unit of ``dt``), > 0.

    A simultaneous pair (``delta == 0``) belongs to this kernel.
    """
    delta = _check_delta(delta)
    _check_number(eta_post, "eta_post")
    _check_positive_parameter(tau_post, "tau_post")
    values = eta_post * torch.exp(-delta.abs() / tau_post)
    return _keep_nan(delta, torch.where(delta >= 0, values, _zero_like(delta)))


def exp_pre(delta: Tensor, eta_pre: Parameter = -1.0, tau_pre: Parameter = 20.0) -> Tensor:
    """Anti-causal exponential kernel ``eta_pre * exp(-|delta|/tau_pre) * [delta < 0]``.

    Args:
        delta: ``t_post - t_pre`` (unit of ``dt``).
        eta_pre: amplitude (weight units); the default ``-1`` depresses
            anti-causal pairs (Hebbian STDP). Negative values go to depression.
        tau_pre: decay time constant (unit of ``dt``), > 0.
    """
    delta = _check_delta(delta)
    _check_number(eta_pre, "eta_pre")
    _check_positive_parameter(tau_pre, "tau_pre")
    values = eta_pre * torch.exp(-delta.abs() / tau_pre)
    return _keep_nan(delta, torch.where(delta < 0, values, _zero_like(delta)))


def mexican_hat(delta: Tensor, amplitude: Parameter = 1.0, sigma: Parameter = 10.0) -> Tensor:
    """Ricker ("Mexican hat") kernel ``A * (1 - (d/s)^2) * exp(-d^2 / (2 s^2))``.

    Symmetric in ``delta``: potentiation for ``|delta| < sigma``, depression
    beyond (for ``A > 0``); 0 at ``+-inf``.

    Args:
        amplitude: ``A``, the value at ``delta = 0`` (weight units).
        sigma: ``s``, the zero crossing (unit of ``dt``), > 0.
    """
    delta = _check_delta(delta)
    _check_number(amplitude, "amplitude")
    _check_positive_parameter(sigma, "sigma")
    scaled = delta / sigma
    squared = scaled * scaled
    values = amplitude * (1.0 - squared) * torch.exp(-0.5 * squared)
    # (1 - inf) * exp(-inf) is NaN: the limit is 0
    return torch.where(torch.isinf(delta), _zero_like(delta), values)


def rectangular(delta: Tensor, amplitude: Parameter = 1.0, start: Parameter = 0.0, stop: Parameter = 20.0) -> Tensor:
    """Rectangular window ``A * [start <= delta < stop]``.

    Args:
        amplitude: ``A`` (weight units), the value inside the window.
        start, stop: window edges (unit of ``dt``); ``start < stop``; may be
            infinite.
    """
    delta = _check_delta(delta)
    _check_number(amplitude, "amplitude")
    _check_number(start, "start")
    _check_number(stop, "stop")
    if not isinstance(start, Tensor) and not isinstance(stop, Tensor) and not start < stop:
        raise ValueError(f"stop: expected a value > start ({start}), got {stop!r}")
    inside = (delta >= start) & (delta < stop)
    values = torch.where(inside, torch.ones_like(delta), torch.zeros_like(delta)) * amplitude
    return _keep_nan(delta, values)


def gaussian(delta: Tensor, amplitude: Parameter = 1.0, center: Parameter = 0.0, sigma: Parameter = 10.0) -> Tensor:
    """Gaussian kernel ``A * exp(-(delta - center)^2 / (2 sigma^2))``.

    Args:
        amplitude: ``A`` (weight units), the peak value.
        center: the lag of the peak (unit of ``dt``).
        sigma: width (unit of ``dt``), > 0.
    """
    delta = _check_delta(delta)
    _check_number(amplitude, "amplitude")
    _check_number(center, "center")
    _check_positive_parameter(sigma, "sigma")
    scaled = (delta - center) / sigma
    return amplitude * torch.exp(-0.5 * scaled * scaled)


def symmetric_exp(delta: Tensor, amplitude: Parameter = 1.0, tau: Parameter = 20.0) -> Tensor:
    """Symmetric exponential kernel ``A * exp(-|delta| / tau)`` (both orders alike).

    Args:
        amplitude: ``A`` (weight units), the value at ``delta = 0``.
        tau: decay time constant (unit of ``dt``), > 0.
    """
    delta = _check_delta(delta)
    _check_number(amplitude, "amplitude")
    _check_positive_parameter(tau, "tau")
    return amplitude * torch.exp(-delta.abs() / tau)


def split_kernel_values(values: Tensor) -> tuple[Tensor, Tensor]:
    """Split signed kernel values into ``(potentiation, depression)`` magnitudes.

    ``potentiation = max(values, 0)``, ``depression = max(-values, 0)``, both
    with NaN (no spike) replaced by 0, so each is finite-or-inf and >= 0.
    """
    values = check_tensor(values, "values", floating=True)
    clean = torch.nan_to_num(values, nan=0.0, posinf=math.inf, neginf=-math.inf)
    return clean.clamp(min=0), (-clean).clamp(min=0)
