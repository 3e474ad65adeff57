"""Argument checks shared by every public function and module.

Every check names the argument it rejects and says what was expected, so a
user sees ``spikes: expected values in {0, 1}, got 0.5`` rather than a shape
error three calls deeper. Checks never modify their input; callers run them
before touching any state, which is how "state is unchanged when a call fails"
is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import torch
from torch import Tensor

__all__ = [
    "all_finite",
    "check_choice",
    "check_count",
    "check_greater",
    "check_in_range",
    "check_int_at_least",
    "check_non_negative",
    "check_positive",
    "check_same_device",
    "check_shape",
    "check_spikes",
    "check_state_tensor",
    "check_tensor",
    "spikes_as",
]


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device})"
    return repr(value)


def check_tensor(
    value: object,
    name: str,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    shape: Sequence[int] | None = None,
    floating: bool = False,
    finite: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """Check that ``value`` is a tensor with the given properties and return it.

    Raises ``TypeError`` for a non-tensor or a wrong dtype class, ``ValueError``
    for a wrong shape, non-finite values or a wrong device.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(value.shape)}")
    if min_ndim is not None and value.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {tuple(value.shape)}")
    if shape is not None:
        check_shape(value, name, shape)
    if device is not None and value.device != torch.device(device):
        raise ValueError(f"{name}: expected a tensor on {torch.device(device)}, got {value.device}")
    if finite and value.is_floating_point() and not all_finite(value):
        raise ValueError(f"{name}: expected finite values, found NaN or inf")
    return value


def all_finite(value: Tensor) -> bool:
    """Whether every element of the floating tensor ``value`` is finite (no NaN, no inf).

    Fast path: one sum. A NaN or inf term makes the sum NaN or inf (it cannot
    cancel back to a finite number), so a finite sum proves every element
    finite; a non-finite sum may also be an overflow of finite terms, and only
    then is the exact element-wise check run. The answer is the same as
    ``bool(torch.isfinite(value).all())`` (about 30x cheaper on large CPU
    tensors, where ``isfinite`` takes several passes).
    """
    if math.isfinite((value.detach() if value.requires_grad else value).sum().item()):
        return True
    return bool(torch.isfinite(value).all())


def check_shape(value: Tensor, name: str, shape: Sequence[int]) -> Tensor:
    """Check an exact shape; ``-1`` in ``shape`` matches any size."""
    expected = tuple(shape)
    if value.ndim != len(expected) or any(e != -1 and e != s for e, s in zip(expected, value.shape, strict=True)):
        shown = tuple("*" if e == -1 else e for e in expected)
        raise ValueError(f"{name}: expected shape {shown}, got {tuple(value.shape)}")
    return value


def check_spikes(
    value: object,
    name: str,
    *,
    shape: Sequence[int] | None = None,
    ndim: int | None = None,
    min_ndim: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Check that ``value`` holds spikes: bool, or numbers that are all 0 or 1.

    Returns the input converted to ``torch.bool`` (a view-free copy only where a
    conversion is needed). NaN, 0.5, 2, negative values all raise ``ValueError``.
    """
    tensor = check_tensor(value, name, ndim=ndim, min_ndim=min_ndim, shape=shape, device=device)
    if tensor.dtype == torch.bool:
        return tensor
    if tensor.is_complex():
        raise TypeError(f"{name}: expected bool or real {{0, 1}} spikes, got dtype {tensor.dtype}")
    fired = tensor != 0
    # three passes: the values are {0, 1} exactly when they equal their own nonzero mask
    # (NaN is nonzero but not 1; -0.0 equals 0)
    if tensor.numel() and not torch.equal(tensor, fired.to(tensor.dtype)):
        bad = tensor[(tensor != 0) & (tensor != 1)].flatten()[0].item()
        raise ValueError(f"{name}: expected spikes with values in {{0, 1}} (or bool), found {bad}")
    return fired


def check_state_tensor(value: object, name: str, shape: Sequence[int], like: Tensor | None) -> Tensor:
    """A carried state tensor: floating, finite, of ``shape``, with the dtype and device of ``like``."""
    tensor = check_tensor(value, name, shape=shape, floating=True, finite=True)
    if like is not None and (tensor.dtype != like.dtype or tensor.device != like.device):
        raise ValueError(f"{name}: expected dtype {like.dtype} on {like.device}, got {tensor.dtype} on {tensor.device}")
    return tensor


def spikes_as(spikes: Tensor, like: Tensor) -> Tensor:
    """Bool (or {0,1}) spikes as a tensor of ``like``'s dtype and device."""
    return spikes.to(device=like.device, dtype=like.dtype)


def _as_real(value: object, name: str) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name}: expected a real number, got {_describe(value)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a real number, got {_describe(value)}")
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"{name}: expected a number, got NaN")
    return result


def check_count(value: object, name: str) -> int:
    """A count: an int (not a bool) >= 1 (sizes, capacities, channels). ``ValueError`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def check_int_at_least(value: object, name: str, minimum: int) -> int:
    """An int (not a bool) ``>= minimum`` (steps, radii, sizes): ``TypeError`` for anything but
    an int, ``ValueError`` below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name}: expected a value >= {minimum}, got {value}")
    return value


def check_positive(value: object, name: str, *, allow_inf: bool = False) -> float:
    """A real number > 0 (``dt``, time constants). Returns it as float."""
    result = _as_real(value, name)
    if not result > 0 or (math.isinf(result) and not allow_inf):
        raise ValueError(f"{name}: expected a finite value > 0, got {value!r}")
    return result


def check_non_negative(value: object, name: str) -> float:
    result = _as_real(value, name)
    if not (result >= 0 and math.isfinite(result)):
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")
    return result


def check_greater(value: object, name: str, bound: float) -> float:
    result = _as_real(value, name)
    if not (result > bound and math.isfinite(result)):
        raise ValueError(f"{name}: expected a finite value > {bound}, got {value!r}")
    return result


def check_in_range(
    value: object, name: str, low: float, high: float, *, inclusive: bool | tuple[bool, bool] = True
) -> float:
    """``value`` as a float in the interval from ``low`` to ``high``; ``ValueError`` naming ``name`` otherwise.

    ``inclusive``: whether both ends belong to the interval, or ``(low end, high end)``
    separately (``(False, True)`` is ``(low, high]``); the message writes the interval so.
    """
    result = _as_real(value, name)
    low_inclusive, high_inclusive = (inclusive, inclusive) if isinstance(inclusive, bool) else inclusive
    above_low = low <= result if low_inclusive else low < result
    below_high = result <= high if high_inclusive else result < high
    if not (above_low and below_high):
        opening, closing = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        raise ValueError(f"{name}: expected a value in {opening}{low}, {high}{closing}, got {value!r}")
    return result


def check_same_device(**tensors: Tensor) -> torch.device:
    """All named tensors on one device; the error lists each argument's device."""
    devices = {name: t.device for name, t in tensors.items() if isinstance(t, Tensor)}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"expected tensors on one device, got {listed}")
    return next(iter(devices.values())) if devices else torch.device("cpu")


def check_choice(value: object, name: str, choices: Sequence[object]) -> object:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value
