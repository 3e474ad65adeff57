"""attrs validators (and a converter) for the hyperparameter classes of rules and trainers.

Each one runs the argument check of :mod:`plastic.functional.validation` with
the field's name, so a bad hyperparameter fails at construction with a
message that starts with that name (``tau_plus: expected a finite value > 0,
got -1``). Shared by the ``@attrs.frozen`` parameter classes of
:mod:`plastic.functional` and :mod:`plastic.learn`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch
from torch import Tensor

from plastic.functional.validation import check_choice, check_int_at_least, check_non_negative, check_positive

__all__ = [
    "callable_of",
    "finite",
    "finite_values",
    "int_at_least",
    "keyword_dict",
    "keyword_mapping",
    "non_negative",
    "non_negative_or_infinite",
    "one_of",
    "optional_callable",
    "positive",
    "positive_values",
]

# a string: attrs.Attribute is generic to type checkers only (not subscriptable at run time)
Validator = Callable[[Any, "attrs.Attribute[Any]", object], None]


def positive(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite real number > 0."""
    check_positive(value, attribute.name)


def non_negative(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite real number >= 0."""
    check_non_negative(value, attribute.name)


def non_negative_or_infinite(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A real number >= 0, ``inf`` allowed (a time constant that may be infinite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"{attribute.name}: expected a number >= 0 (inf allowed), got {value!r}")


def finite(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite real number (int or float, not bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name}: expected a finite number, got {value!r}")


def positive_values(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite real number > 0, or a tensor of values > 0 (e.g. per-synapse time constants)."""
    if isinstance(value, Tensor):
        if not bool((value > 0).all()):
            raise ValueError(f"{attribute.name}: expected values > 0")
        return
    positive(instance, attribute, value)


def finite_values(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite real number, or a tensor of finite values (e.g. per-synapse learning rates)."""
    if isinstance(value, Tensor):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{attribute.name}: expected finite values")
        return
    finite(instance, attribute, value)


def int_at_least(minimum: int) -> Validator:
    """Validator factory: an int (not a bool) ``>= minimum`` (counts, radii)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int_at_least(value, attribute.name, minimum)

    return validate


def one_of(*choices: object) -> Validator:
    """Validator factory: the value is one of ``choices``."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_choice(value, attribute.name, choices)

    return validate


def callable_of(expected: str) -> Validator:
    """Validator factory: a callable; ``expected`` says which, for the message.

    E.g. ``"a kernel callable(delta, **kwargs)"``.
    """

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not callable(value):
            raise TypeError(f"{attribute.name}: expected {expected}, got {value!r}")

    return validate


def keyword_mapping(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A mapping with string keys (keyword arguments of a callable)."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise TypeError(f"{attribute.name}: expected a mapping of keyword arguments, got {value!r}")


def keyword_dict(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """attrs converter for keyword arguments: a copy of a mapping, ``{}`` for None.

    Anything else is returned as is, for :func:`keyword_mapping` to reject with
    the argument's name.
    """
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else value


def optional_callable(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """None or a callable of the weight (a weight dependence ``f(w)``)."""
    if value is not None and not callable(value):
        raise TypeError(f"{attribute.name}: expected None or a callable of the weight, got {value!r}")
