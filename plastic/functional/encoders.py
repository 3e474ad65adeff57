"""Spike encoders: turn analogue inputs into spike trains, one draw per step.

Poisson (rate) coding. An input is a firing rate ``r`` in Hz and a step lasts
``dt`` ms. A homogeneous Poisson process of rate ``r`` is approximated, per
step and per element, by an independent Bernoulli draw::

    S_t ~ Bernoulli(p),        p = r * dt / 1000

which is the first-order expansion of the exact probability that a step holds
at least one event, ``1 - exp(-r * dt / 1000)``. The Bernoulli draw keeps the
mean count exact (``r * dt / 1000`` spikes per step, as for the Poisson
process) but its variance ``p (1 - p)`` is lower than the Poisson ``p`` and its
inter-spike intervals are geometric (at least one step) instead of
exponential; the difference is of order ``p`` (6 % at 63.75 Hz and ``dt = 1``
ms). It needs ``p <= 1``: rates above ``1000 / dt`` Hz are rejected.

With ``exact=True`` the encoder uses ``p = 1 - exp(-r * dt / 1000)``: a step
spikes exactly when a continuous-time Poisson process (exponential inter-spike
intervals of mean ``1000 / r`` ms) has one or more events inside it. A bool
spike train cannot say "two events in one step", so this is the exact law of
what a step-based network can see of that process; the mean count per step is
then ``1 - exp(-r dt / 1000)``, slightly below ``r dt / 1000``. Any finite rate
is accepted.

Bernoulli coding. An input is directly the per-step spike probability
``p`` in ``[0, 1]``: ``S_t ~ Bernoulli(p)``.

Latency (intensity-to-latency) coding. An input is an intensity ``x`` in
``[0, 1]``; it fires exactly once, the stronger the earlier, and ``x = 0``
never fires::

    t(x) = min(floor((1 - x) * T), T - 1)     for x > 0

so ``x = 1`` fires at step 0 and the intensities in ``((T - 1 - k)/T, (T - k)/T]``
fire at step ``k`` (``T`` equal bins of intensity, the weakest bin at the last
step). No randomness: the spike time carries the information.

On/off-centre filtering (the retina's ganglion cells, before latency coding
in Kheradpisheh et al. 2018). A difference of Gaussians ``DoG = G(sigma_centre)
- G(sigma_surround)`` (each normalised to sum 1 over the window, the
difference then shifted to sum exactly 0, so a uniform patch gives 0) is
convolved with the image (zero padding, same size); the on-centre channel is
``max(DoG * image, 0)``, the off-centre channel ``max(-DoG * image, 0)``.

The encoders take ``[B, *shape]`` and return a bool window ``[T, B, *shape]`` on the
input's device. Draws use ``generator`` when one is given (same seed, same
device, same spikes), the global generator otherwise.

References: Dayan & Abbott (2001), *Theoretical Neuroscience*, ch. 1.4
(Poisson spike generator); Diehl & Cook (2015), Front. Comput. Neurosci. 9:99
(pixel intensities as Poisson rates, at most 63.75 Hz); latency coding:
Thorpe, Delorme & Van Rullen (2001), Neural Netw. 14:715 (the first spike of
each input, the strongest first), Kheradpisheh, Ganjtabesh, Thorpe &
Masquelier (2018), Neural Netw. 99:56 (intensity-to-latency coding of DoG
filtered images for convolutional STDP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from plastic.functional.validation import check_int_at_least, check_positive, check_tensor

__all__ = [
    "bernoulli_encode",
    "difference_of_gaussians",
    "latency_encode",
    "latency_steps",
    "on_off_centre",
    "poisson_encode",
    "poisson_probability",
]


def _check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    generator_device = torch.device(generator.device)
    same = generator_device.type == device.type and (
        generator_device.index is None or device.index is None or generator_device.index == device.index
    )
    if not same:
        raise ValueError(f"generator: expected a generator on {device} (the input's device), got {generator_device}")


def _as_real(values: Tensor, name: str) -> Tensor:
    """Floating values as they are; bool and integer values as the default float dtype."""
    if values.is_complex():
        raise TypeError(f"{name}: expected real values, got dtype {values.dtype}")
    return values if values.is_floating_point() else values.to(torch.get_default_dtype())


def _check_unit_interval(values: object, name: str) -> Tensor:
    """Finite real values in ``[0, 1]`` with at least one dimension (bool and integers as floats)."""
    checked = _as_real(check_tensor(values, name, min_ndim=1, finite=True), name)
    if checked.numel() and bool(((checked < 0) | (checked > 1)).any()):
        bad = checked[(checked < 0) | (checked > 1)].flatten()[0].item()
        raise ValueError(f"{name}: expected values in [0, 1], found {bad}")
    return checked


def _draw(probabilities: Tensor, steps: int, generator: torch.Generator | None) -> Tensor:
    # U < p with U uniform in [0, 1): P(spike) = p exactly, p = 0 never and p = 1 always fires.
    uniform = torch.rand(
        (steps, *probabilities.shape),
        generator=generator,
        dtype=probabilities.dtype,
        device=probabilities.device,
    )
    return uniform < probabilities


def poisson_probability(rates: Tensor, dt: float, *, exact: bool = False) -> Tensor:
    """Per-step spike probability of Poisson rates (Hz) with steps of ``dt`` ms.

    ``p = rates * dt / 1000`` (``exact=False``, must be ``<= 1``) or
    ``p = 1 - exp(-rates * dt / 1000)`` (``exact=True``).

    Raises ``ValueError`` naming ``rates`` for NaN/inf, negative rates, or (not
    exact) rates above ``1000 / dt`` Hz; naming ``dt`` for ``dt <= 0``.
    """
    dt = check_positive(dt, "dt")
    rates = _as_real(check_tensor(rates, "rates", finite=True), "rates")
    if rates.numel() and bool((rates < 0).any()):
        raise ValueError(f"rates: expected rates >= 0 Hz, found {rates.min().item()}")
    expected_events = rates * (dt / 1000.0)
    if exact:
        return -torch.expm1(-expected_events)
    if expected_events.numel() and bool((expected_events > 1).any()):
        raise ValueError(
            f"rates: rate * dt / 1000 must be <= 1 (at most one spike per step), "
            f"found rate {rates.max().item()} Hz with dt = {dt} ms (limit {1000.0 / dt} Hz); "
            "lower the rates, shorten dt or use exact=True"
        )
    return expected_events


def poisson_encode(
    rates: Tensor,
    steps: int,
    dt: float,
    generator: torch.Generator | None = None,
    *,
    exact: bool = False,
) -> Tensor:
    """Poisson spike trains of ``rates`` (Hz, ``[B, *shape]``) for ``steps`` steps of ``dt`` ms.

    ``S[t, ...] ~ Bernoulli(p)`` independently per step and element, with
    ``p = rates * dt / 1000`` (``exact=False``) or ``1 - exp(-rates * dt / 1000)``
    (``exact=True``, see the module docstring). Returns bool ``[steps, B, *shape]``
    on the input's device; the expected spike count per element is ``steps * p``.

    Args:
        rates: non-negative firing rates in Hz, at least one dimension (batch).
        steps: number of time steps ``T >= 1``.
        dt: step length in ms, ``> 0``.
        generator: optional ``torch.Generator`` on the input's device, for
            reproducible draws.
        exact: use the exact per-step probability instead of ``rate * dt``.
    """
    steps = check_int_at_least(steps, "steps", 1)
    check_tensor(rates, "rates", min_ndim=1)
    probabilities = poisson_probability(rates, dt, exact=exact)
    _check_generator(generator, probabilities.device)
    return _draw(probabilities, steps, generator)


def bernoulli_encode(probabilities: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli spike trains: ``S[t, ...] ~ Bernoulli(probabilities)`` for ``steps`` steps.

    Args:
        probabilities: per-step spike probabilities in ``[0, 1]``, ``[B, *shape]``.
        steps: number of time steps ``T >= 1``.
        generator: optional ``torch.Generator`` on the input's device.

    Returns bool ``[steps, B, *shape]`` on the input's device.
    """
    steps = check_int_at_least(steps, "steps", 1)
    probabilities = _check_unit_interval(probabilities, "probabilities")
    _check_generator(generator, probabilities.device)
    return _draw(probabilities, steps, generator)


def latency_steps(intensities: Tensor, steps: int) -> Tensor:
    """The step at which each intensity fires under latency coding, ``-1`` for none.

    ``t(x) = min(floor((1 - x) * steps), steps - 1)`` for ``x > 0`` (see the
    module docstring), ``-1`` for ``x = 0``. Returns int64 of the input's shape.

    Args:
        intensities: values in ``[0, 1]``, ``[B, *shape]``.
        steps: window length ``T >= 1``.
    """
    steps = check_int_at_least(steps, "steps", 1)
    values = _check_unit_interval(intensities, "intensities")
    times = torch.floor((1.0 - values) * steps).clamp(max=steps - 1).to(torch.int64)
    return torch.where(values > 0, times, torch.full_like(times, -1))


def latency_encode(intensities: Tensor, steps: int) -> Tensor:
    """Latency coding: one spike per input with ``x > 0``, at step ``t(x)`` (:func:`latency_steps`).

    Args:
        intensities: values in ``[0, 1]``, ``[B, *shape]`` (bool and integer
            inputs count as 0/1 floats).
        steps: window length ``T >= 1``.

    Returns bool ``[steps, B, *shape]`` on the input's device; each element
    has one spike if its intensity is positive, none otherwise.
    """
    times = latency_steps(intensities, steps)
    index = torch.arange(steps, device=times.device).reshape((steps,) + (1,) * times.ndim)
    return index == times.unsqueeze(0)


def difference_of_gaussians(
    size: int, sigma_centre: float, sigma_surround: float, *, dtype: torch.dtype | None = None
) -> Tensor:
    """A ``[size, size]`` difference-of-Gaussians kernel that sums to 0 (see the module docstring).

    Args:
        size: odd window width in pixels (>= 3).
        sigma_centre, sigma_surround: standard deviations in pixels, ``0 < sigma_centre < sigma_surround``.
        dtype: floating dtype (default: torch's default).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"size: expected an odd int >= 3, got {size!r}")
    sigma_centre = check_positive(sigma_centre, "sigma_centre")
    sigma_surround = check_positive(sigma_surround, "sigma_surround")
    if not sigma_centre < sigma_surround:
        raise ValueError(f"sigma_surround: expected a value > sigma_centre ({sigma_centre}), got {sigma_surround}")
    offsets = torch.arange(size, dtype=dtype or torch.get_default_dtype()) - (size - 1) / 2
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2

    def gaussian(sigma: float) -> Tensor:
        values = torch.exp(-squared / (2 * sigma * sigma))
        return values / values.sum()

    kernel = gaussian(sigma_centre) - gaussian(sigma_surround)
    return kernel - kernel.mean()


def on_off_centre(images: Tensor, kernel: Tensor) -> Tensor:
    """On- and off-centre responses ``[B, 2, H, W]`` of images ``[B, H, W]`` to a centre-surround ``kernel``.

    Channel 0 is ``max(kernel * image, 0)``, channel 1 ``max(-(kernel * image), 0)``
    (``*``: 2-d correlation with zero padding, output of the input's size).
    ``kernel`` is ``[k, k]`` with ``k`` odd (e.g. :func:`difference_of_gaussians`).
    """
    check_tensor(images, "images", floating=True, ndim=3, finite=True)
    check_tensor(kernel, "kernel", floating=True, ndim=2, device=images.device)
    if kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"kernel: expected a square kernel of odd width, got shape {tuple(kernel.shape)}")
    if kernel.dtype != images.dtype:
        raise TypeError(f"kernel: expected the images' dtype {images.dtype}, got {kernel.dtype}")
    response = F.conv2d(images.unsqueeze(1), kernel[None, None], padding=kernel.shape[0] // 2)
    return torch.cat([response.clamp_min(0), (-response).clamp_min(0)], dim=1)
