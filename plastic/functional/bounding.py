"""Weight bounding: weight-dependence factors, bounded updates, clamping, normalisation.

A learning rule produces two non-negative magnitudes per synapse, a
potentiation ``pos`` and a depression ``neg``. Bounding turns them into a
weight change that depends on the current weight ``w``:

    dw = f_upper(w) * pos - f_lower(w) * neg

The same factors are the weight-dependence functions ``f_post(w)`` (scales
potentiation) and ``f_pre(w)`` (scales depression) of trace STDP rules, so
each is written here once as a reusable function of ``w``.

Factors (``w_min``, ``w_max`` in the unit of the weight, ``mu`` dimensionless):

========================  ======================================  ======================================
kind                      upper factor (potentiation)             lower factor (depression)
========================  ======================================  ======================================
hard                      ``[w < w_max]``                         ``[w > w_min]``
soft (multiplicative)     ``max(w_max - w, 0)``                   ``max(w - w_min, 0)``
power law                 ``max(w_max - w, 0)^mu``                ``max(w - w_min, 0)^mu``
scaled                    ``max((w_max - w)/(w_max - w_min), 0)^mu``  ``max((w - w_min)/(w_max - w_min), 0)^mu``
power_law (Morrison)      ``w0^(1 - mu) max(w, 0)^mu``            ``alpha max(w, 0)``
logistic                  ``g(w)``                                ``g(w)``
========================  ======================================  ======================================

with ``g(w) = max(w - w_min, 0) * max(w_max - w, 0) / (w_max - w_min)``, which
is ``w (1 - w)`` for weights in ``[0, 1]``.

References:

* Soft (multiplicative) bounds: Kistler & van Hemmen (2000), Neural Comput.
  12:385; van Rossum, Bi & Turrigiano (2000), J. Neurosci. 20:8812 (additive
  potentiation, multiplicative depression: ``side="lower"``).
* Power law / "nonlinear temporally asymmetric Hebbian" rule: Gütig, Aharonov,
  Rotter & Sompolinsky (2003), J. Neurosci. 23:3697, with ``w`` in ``[0, 1]``:
  ``f_+(w) = (1 - w)^mu``, ``f_-(w) = w^mu``.
* Power-law STDP of Morrison, Aertsen & Diesmann (2007), Neural Comput.
  19:1437 (NEST's ``stdp_pl_synapse_hom``): ``dw+ = lambda w0^(1-mu) w^mu x_pre``
  at a postsynaptic spike, ``dw- = lambda alpha w x_post`` at a presynaptic
  one, with ``lambda`` the trainer's learning rate, ``w0`` a reference weight
  (1 pA in the paper), ``mu = 0.4`` fitted to Bi & Poo (1998). It needs no
  bounds: potentiation grows sublinearly and depression linearly in ``w``, so
  weights settle at a stable, unimodal distribution. NEST writes it with
  ``w0 = 1`` in the weight's unit; ``w0`` makes the rule independent of it.
* Logistic factor ``w (1 - w)`` on both sides: the STDP of Masquelier &
  Thorpe (2007), PLoS Comput. Biol. 3:e31, and of the convolutional STDP
  networks of Kheradpisheh, Ganjtabesh, Thorpe & Masquelier (2018), Neural
  Netw. 99:56 (``dw = a+ w (1 - w)`` or ``a- w (1 - w)``). Weights change
  fastest halfway between the bounds and freeze near either, so they settle
  close to 0 or 1: the learned features become binary.
* Row normalisation: Diehl & Cook (2015), Front. Comput. Neurosci. 9:99
  (each excitatory neuron's incoming weights summed to 78.4 for 784 inputs).

Bases are clamped at 0 before the power, so a weight outside its bounds gets
a zero factor (never NaN for fractional ``mu``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs
import torch
from torch import Tensor

from plastic.functional.validation import (
    check_choice,
    check_positive,
    check_tensor,
)

__all__ = [
    "BOUNDING_KINDS",
    "BOUNDING_SIDES",
    "Bounding",
    "bound",
    "clamp_",
    "hard_lower",
    "hard_upper",
    "logistic_factor",
    "normalize_rows",
    "normalize_rows_",
    "power_law_lower",
    "power_law_upper",
    "scaled_lower",
    "scaled_upper",
    "soft_lower",
    "soft_upper",
]

BOUNDING_KINDS = ("none", "hard", "soft", "power", "scaled", "power_law", "logistic")
BOUNDING_SIDES = ("both", "upper", "lower")

Bound = float | Tensor
Factor = Callable[[Tensor], Tensor]


def _check_bound(value: object, name: str) -> None:
    """A bound is a finite real or a tensor (per-synapse bounds)."""
    if isinstance(value, Tensor):
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a real number or a tensor, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name}: expected a finite value, got {value!r}")


def _check_order(w_min: object, w_max: object) -> None:
    if isinstance(w_min, Tensor) or isinstance(w_max, Tensor):
        return
    if not float(w_min) < float(w_max):  # type: ignore[arg-type]
        raise ValueError(f"w_min: expected w_min < w_max, got w_min={w_min!r}, w_max={w_max!r}")


def _check_mu(mu: object) -> float:
    return check_positive(mu, "mu")


def hard_upper(w: Tensor, w_max: Bound) -> Tensor:
    """Hard upper bound factor ``[w < w_max]`` in ``w``'s dtype.

    Potentiation is allowed only while the weight is below ``w_max``.
    """
    check_tensor(w, "w")
    _check_bound(w_max, "w_max")
    return (w < w_max).to(w.dtype)


def hard_lower(w: Tensor, w_min: Bound) -> Tensor:
    """Hard lower bound factor ``[w > w_min]`` in ``w``'s dtype.

    Depression is allowed only while the weight is above ``w_min``.
    """
    check_tensor(w, "w")
    _check_bound(w_min, "w_min")
    return (w > w_min).to(w.dtype)


def soft_upper(w: Tensor, w_max: Bound, mu: float = 1.0) -> Tensor:
    """Soft (multiplicative, ``mu = 1``) or power-law upper factor ``max(w_max - w, 0)^mu``.

    Parameters: ``w_max`` upper weight bound (weight units), ``mu > 0``
    exponent (Gütig et al. 2003; ``mu = 1`` is the multiplicative rule).
    """
    check_tensor(w, "w", floating=True)
    _check_bound(w_max, "w_max")
    mu = _check_mu(mu)
    base = (w_max - w).clamp_min(0)
    return base if mu == 1.0 else base.pow(mu)


def soft_lower(w: Tensor, w_min: Bound, mu: float = 1.0) -> Tensor:
    """Soft (multiplicative, ``mu = 1``) or power-law lower factor ``max(w - w_min, 0)^mu``.

    Parameters: ``w_min`` lower weight bound (weight units), ``mu > 0`` exponent.
    """
    check_tensor(w, "w", floating=True)
    _check_bound(w_min, "w_min")
    mu = _check_mu(mu)
    base = (w - w_min).clamp_min(0)
    return base if mu == 1.0 else base.pow(mu)


def scaled_upper(w: Tensor, w_min: Bound, w_max: Bound, mu: float = 1.0) -> Tensor:
    """Range-normalised upper factor ``max((w_max - w) / (w_max - w_min), 0)^mu``.

    The multiplicative rule with the distance to the bound measured in units
    of the weight range, so the factor is 1 at ``w_min`` and 0 at ``w_max``
    whatever the range.
    """
    check_tensor(w, "w", floating=True)
    _check_bound(w_min, "w_min")
    _check_bound(w_max, "w_max")
    _check_order(w_min, w_max)
    mu = _check_mu(mu)
    base = ((w_max - w) / (w_max - w_min)).clamp_min(0)
    return base if mu == 1.0 else base.pow(mu)


def scaled_lower(w: Tensor, w_min: Bound, w_max: Bound, mu: float = 1.0) -> Tensor:
    """Range-normalised lower factor ``max((w - w_min) / (w_max - w_min), 0)^mu``.

    1 at ``w_max``, 0 at ``w_min``.
    """
    check_tensor(w, "w", floating=True)
    _check_bound(w_min, "w_min")
    _check_bound(w_max, "w_max")
    _check_order(w_min, w_max)
    mu = _check_mu(mu)
    base = ((w - w_min) / (w_max - w_min)).clamp_min(0)
    return base if mu == 1.0 else base.pow(mu)


def power_law_upper(w: Tensor, w_reference: float = 1.0, mu: float = 0.4) -> Tensor:
    """Potentiation factor of Morrison et al. (2007): ``w0^(1 - mu) * max(w, 0)^mu``.

    Parameters: ``w_reference`` the reference weight ``w0`` (> 0, weight
    units), ``mu > 0`` the exponent (0.4 in the paper; ``mu = 1`` makes
    potentiation multiplicative). Negative weights get a zero factor.
    """
    check_tensor(w, "w", floating=True)
    w_reference = check_positive(w_reference, "w_reference")
    mu = _check_mu(mu)
    base = w.clamp_min(0)
    scale: float = w_reference ** (1.0 - mu)  # a positive base: a float (typeshed's float ** float is Any)
    return base.pow(mu) * scale


def power_law_lower(w: Tensor, alpha: float = 1.0) -> Tensor:
    """Depression factor of Morrison et al. (2007): ``alpha * max(w, 0)``.

    ``alpha > 0`` (dimensionless) scales depression against potentiation.
    """
    check_tensor(w, "w", floating=True)
    alpha = check_positive(alpha, "alpha")
    return w.clamp_min(0) * alpha


def logistic_factor(w: Tensor, w_min: Bound = 0.0, w_max: Bound = 1.0) -> Tensor:
    """Logistic factor ``max(w - w_min, 0) * max(w_max - w, 0) / (w_max - w_min)`` for both signs.

    ``w (1 - w)`` for the default bounds ``[0, 1]`` (Masquelier & Thorpe 2007;
    Kheradpisheh et al. 2018): largest, ``(w_max - w_min) / 4``, halfway
    between the bounds, 0 at and beyond them. Weight units.
    """
    check_tensor(w, "w", floating=True)
    _check_bound(w_min, "w_min")
    _check_bound(w_max, "w_max")
    _check_order(w_min, w_max)
    return (w - w_min).clamp_min(0) * (w_max - w).clamp_min(0) / (w_max - w_min)


def bound(
    param: Tensor,
    potentiation: Tensor | None,
    depression: Tensor | None,
    *,
    upper: Factor | None = None,
    lower: Factor | None = None,
) -> Tensor:
    """Bounded weight change ``dw = upper(w) * potentiation - lower(w) * depression``.

    Parameters:
        param: the current weight ``w`` (any shape).
        potentiation, depression: non-negative magnitudes of ``param``'s shape
            (``None`` contributes nothing). Not checked for sign here; the
            Updater checks them when they are accumulated.
        upper, lower: weight-dependence factors ``w -> tensor`` (e.g.
            ``functools.partial(soft_upper, w_max=1.0)``); ``None`` is the
            constant 1 (additive rule).

    Returns ``dw`` in ``param``'s dtype (floating) on ``param``'s device.
    """
    check_tensor(param, "param")
    dw = torch.zeros_like(param)
    for name, magnitude, factor, sign in (
        ("potentiation", potentiation, upper, 1.0),
        ("depression", depression, lower, -1.0),
    ):
        if magnitude is None:
            continue
        check_tensor(magnitude, name, shape=param.shape, device=param.device)
        term = magnitude if factor is None else factor(param) * magnitude
        dw = dw + sign * term
    return dw


def _optional_bound(name: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def validate(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name}: expected a real number or None, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{name}: expected a finite value, got {value!r}")

    return validate


@attrs.frozen
class Bounding:
    """How accumulated potentiation and depression become a weight change.

    ``dw = upper_factor(w) * pos - lower_factor(w) * neg`` with the factors of
    ``kind`` (see the module docstring):

    * ``"none"``: additive, both factors 1.
    * ``"hard"``: ``[w < w_max]``, ``[w > w_min]``.
    * ``"soft"``: multiplicative, ``w_max - w``, ``w - w_min`` (``mu`` must be 1).
    * ``"power"``: ``(w_max - w)^mu``, ``(w - w_min)^mu`` (Gütig et al. 2003).
    * ``"scaled"``: ``((w_max - w)/(w_max - w_min))^mu`` and the lower analogue;
      needs both bounds whatever ``side``.
    * ``"power_law"``: ``w_reference^(1 - mu) w^mu`` and ``alpha w`` (Morrison
      et al. 2007, NEST's ``stdp_pl_synapse_hom``); needs no bound (a given
      bound is left to the updater's clamp).
    * ``"logistic"``: ``(w - w_min)(w_max - w)/(w_max - w_min)`` on both sides,
      ``w (1 - w)`` in ``[0, 1]`` (Masquelier & Thorpe 2007, Kheradpisheh et
      al. 2018); needs both bounds whatever ``side``.

    Parameters:
        kind: one of ``BOUNDING_KINDS``.
        w_min, w_max: weight bounds (weight units); ``w_min < w_max`` when both
            are given; the side(s) in use need their bound.
        mu: exponent > 0 (``"power"``, ``"scaled"`` and ``"power_law"``; 1 otherwise).
        w_reference: the reference weight ``w0`` of ``"power_law"`` (> 0,
            weight units; 1 otherwise).
        alpha: the depression scale of ``"power_law"`` (> 0, dimensionless;
            1 otherwise).
        side: ``"both"``, ``"upper"`` (only potentiation is weight dependent,
            depression additive) or ``"lower"`` (only depression weight
            dependent: van Rossum et al. 2000 with ``kind="soft"``, ``w_min=0``).
    """

    kind: Literal["none", "hard", "soft", "power", "scaled", "power_law", "logistic"] = attrs.field(
        default="none",
        validator=lambda _i, _a, v: check_choice(v, "kind", BOUNDING_KINDS),
    )
    w_min: float | None = attrs.field(default=None, validator=_optional_bound("w_min"))
    w_max: float | None = attrs.field(default=None, validator=_optional_bound("w_max"))
    mu: float = attrs.field(default=1.0, validator=lambda _i, _a, v: _check_mu(v))
    side: Literal["both", "upper", "lower"] = attrs.field(
        default="both",
        validator=lambda _i, _a, v: check_choice(v, "side", BOUNDING_SIDES),
    )
    w_reference: float = attrs.field(default=1.0, validator=lambda _i, _a, v: check_positive(v, "w_reference"))
    alpha: float = attrs.field(default=1.0, validator=lambda _i, _a, v: check_positive(v, "alpha"))

    def __attrs_post_init__(self) -> None:
        if self.w_min is not None and self.w_max is not None:
            _check_order(self.w_min, self.w_max)
        if self.kind in ("none", "hard", "soft", "logistic") and self.mu != 1.0:
            raise ValueError(
                f"mu: kind {self.kind!r} has no exponent (mu must be 1, got {self.mu!r}); use kind 'power' or 'scaled'"
            )
        if self.kind != "power_law":
            for name in ("w_reference", "alpha"):
                if getattr(self, name) != 1.0:
                    raise ValueError(
                        f"{name}: only kind 'power_law' has it (got {getattr(self, name)!r} with {self.kind!r})"
                    )
        if self.kind in ("none", "power_law"):
            return
        needs_max = self.kind in ("scaled", "logistic") or self.side in ("both", "upper")
        needs_min = self.kind in ("scaled", "logistic") or self.side in ("both", "lower")
        if needs_max and self.w_max is None:
            raise ValueError(f"w_max: kind {self.kind!r} with side {self.side!r} needs w_max")
        if needs_min and self.w_min is None:
            raise ValueError(f"w_min: kind {self.kind!r} with side {self.side!r} needs w_min")

    @property
    def bounds_upper(self) -> bool:
        """Whether potentiation depends on the weight."""
        return self.kind != "none" and self.side in ("both", "upper")

    @property
    def bounds_lower(self) -> bool:
        """Whether depression depends on the weight."""
        return self.kind != "none" and self.side in ("both", "lower")

    def upper_factor(self, w: Tensor) -> Tensor:
        """The factor multiplying potentiation (``f_post(w)`` in trace STDP)."""
        if not self.bounds_upper:
            return torch.ones_like(w)
        if self.kind == "power_law":
            return power_law_upper(w, self.w_reference, self.mu)
        assert self.w_max is not None  # guaranteed by __attrs_post_init__
        if self.kind == "hard":
            return hard_upper(w, self.w_max)
        if self.kind in ("soft", "power"):
            return soft_upper(w, self.w_max, self.mu)
        assert self.w_min is not None
        if self.kind == "logistic":
            return logistic_factor(w, self.w_min, self.w_max)
        return scaled_upper(w, self.w_min, self.w_max, self.mu)

    def lower_factor(self, w: Tensor) -> Tensor:
        """The factor multiplying depression (``f_pre(w)`` in trace STDP)."""
        if not self.bounds_lower:
            return torch.ones_like(w)
        if self.kind == "power_law":
            return power_law_lower(w, self.alpha)
        assert self.w_min is not None  # guaranteed by __attrs_post_init__
        if self.kind == "hard":
            return hard_lower(w, self.w_min)
        if self.kind in ("soft", "power"):
            return soft_lower(w, self.w_min, self.mu)
        assert self.w_max is not None
        if self.kind == "logistic":
            return logistic_factor(w, self.w_min, self.w_max)
        return scaled_lower(w, self.w_min, self.w_max, self.mu)

    def __call__(self, w: Tensor, potentiation: Tensor | None, depression: Tensor | None) -> Tensor:
        """``dw = upper_factor(w) * potentiation - lower_factor(w) * depression``."""
        return bound(
            w,
            potentiation,
            depression,
            upper=self.upper_factor if self.bounds_upper else None,
            lower=self.lower_factor if self.bounds_lower else None,
        )


def clamp_(param: Tensor, w_min: float | None = None, w_max: float | None = None) -> Tensor:
    """Clamp ``param`` in place to ``[w_min, w_max]`` (``None``: unbounded side).

    Runs under ``torch.no_grad`` so it works on leaf parameters. Returns ``param``.
    """
    check_tensor(param, "param")
    if w_min is not None:
        _check_bound(w_min, "w_min")
    if w_max is not None:
        _check_bound(w_max, "w_max")
    if (
        w_min is not None
        and w_max is not None
        and not isinstance(w_min, Tensor)
        and not isinstance(w_max, Tensor)
        and not w_min <= w_max
    ):
        raise ValueError(f"w_min: expected w_min <= w_max, got w_min={w_min!r}, w_max={w_max!r}")
    if w_min is None and w_max is None:
        return param
    with torch.no_grad():
        param.clamp_(min=w_min, max=w_max)
    return param


def normalize_rows(
    weight: Tensor,
    target_sum: float,
    dim: int | Sequence[int] | None = None,
) -> Tensor:
    """Rescale each postsynaptic neuron's incoming weights to ``sum_j |w_ij| = target_sum``.

    ``w_ij <- w_ij * target_sum / sum_j |w_ij|`` (Diehl & Cook 2015 use
    ``target_sum = 78.4`` for 784 inputs). Rows whose weights are all zero stay
    zero. Returns a new tensor.

    Parameters:
        weight: ``[O, ...]``, the first dimension indexing postsynaptic neurons
            (dense ``[out, in]``, conv ``[out, in/groups, *kernel]``).
        target_sum: the L1 norm every row gets (> 0, weight units).
        dim: dimensions summed over; ``None`` is every dimension but the first.
            For a 1-d weight (one synapse per neuron) each entry becomes
            ``sign(w) * target_sum``.
    """
    check_tensor(weight, "weight", floating=True, min_ndim=1)
    target = check_positive(target_sum, "target_sum")
    return weight * _row_scale(weight, target, _normalized_dims(weight, dim))


def _normalized_dims(weight: Tensor, dim: int | Sequence[int] | None) -> tuple[int, ...]:
    if dim is None:
        dims: tuple[int, ...] = tuple(range(1, weight.ndim))
    elif isinstance(dim, int):
        dims = (dim,)
    else:
        dims = tuple(dim)
    if any(not -weight.ndim <= d < weight.ndim for d in dims):
        raise ValueError(f"dim: expected dimensions of a {weight.ndim}-d weight, got {dim!r}")
    return dims


def normalize_rows_(weight: Tensor, target_sum: float, dim: int | Sequence[int] | None = None) -> Tensor:
    """:func:`normalize_rows` in place (the same products, without the new tensor); returns ``weight``.

    Runs under ``torch.no_grad`` so it works on leaf parameters.
    """
    check_tensor(weight, "weight", floating=True, min_ndim=1)
    target = check_positive(target_sum, "target_sum")
    with torch.no_grad():
        return weight.mul_(_row_scale(weight, target, _normalized_dims(weight, dim)))


def _row_scale(weight: Tensor, target: float, dims: tuple[int, ...]) -> Tensor:
    magnitude = weight.abs()
    # torch sums over *all* dimensions for dim=(), so the 1-d case is explicit.
    row_norm = magnitude.sum(dim=dims, keepdim=True) if dims else magnitude
    return torch.where(row_norm > 0, target / row_norm.clamp_min(torch.finfo(weight.dtype).tiny), 0.0)
