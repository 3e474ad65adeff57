"""Stochastic SRM0 neurons with exponential escape noise, as a module (math: plastic.functional.escape_noise).

:class:`EscapeNoiseNeuron` holds the state of ``shape`` neurons for a batch
and advances it one step (``[B, *shape]``) or a window (``[T, B, *shape]``)
at a time, drawing its uniform numbers from a ``torch.Generator`` (given, or
its own). After each forward it exposes ``spike`` (bool) and
``spike_probability`` (``p_t``, the probability of the spike each neuron had
at each step), which monitors record (``"neuron.spike_probability"``) for
rules that need it (:class:`~plastic.learn.rmax.Rmax`).

Units: mV, ms, Hz (see :class:`~plastic.functional.escape_noise.EscapeNoiseParams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import attrs
import torch
from torch import Tensor

from plastic.functional.escape_noise import (
    EscapeNoiseParams,
    EscapeNoiseState,
    escape_noise_step,
    escape_noise_window,
)
from plastic.functional.validation import check_positive, check_tensor
from plastic.neural.buffers import rebind_buffer
from plastic.neural.neuron_base import NeuronModule, check_neuron_shape

__all__ = ["EscapeNoiseNeuron"]


class EscapeNoiseNeuron(NeuronModule):
    """SRM0 neurons with escape noise (equations: :mod:`plastic.functional.escape_noise`).

    Args:
        shape: neurons without the batch (int or tuple).
        tau_membrane, epsilon_0, u_rest, theta, delta_u, rho_0, eta_0, tau_after_potential, refractory: the
            :class:`EscapeNoiseParams` (mV, ms, Hz).
        dt: step (ms, > 0).
        generator: the ``torch.Generator`` of the uniform draws (default: a new one
            seeded with ``seed``). The draws are made on the generator's device
            and moved to the state's, so a seed gives the same spikes on every
            device. Not part of the state dict: checkpoint it beside the module
            (``plastic.checkpoint.save_checkpoint(generators=...)``).
        seed: seed of the module's own generator (when ``generator`` is None).
        batch_size, step_mode, device, dtype, store_voltage_sequence: as for every neuron module
            (the voltage sequence: ``u_t`` of each step of the last forward).

    Buffers (state dict): ``psp``, ``after_potential``, ``voltage`` (``u`` of
    the last step) ``[B, *shape]`` and ``refractory_remaining`` (int32).
    After a forward: ``spike`` (bool) and ``spike_probability`` of its steps
    (not saved).
    """

    psp: Tensor
    after_potential: Tensor
    refractory_remaining: Tensor
    voltage: Tensor
    spike: Tensor
    spike_probability: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        tau_membrane: float = 10.0,
        epsilon_0: float = 1.0,
        u_rest: float = -70.0,
        theta: float = -50.0,
        delta_u: float = 5.0,
        rho_0: float = 1000.0,
        eta_0: float = 0.0,
        tau_after_potential: float = 10.0,
        refractory: float = 5.0,
        dt: float = 1.0,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        store_voltage_sequence: bool = False,
    ) -> None:
        super().__init__()
        self.shape = check_neuron_shape(shape)
        self.params = EscapeNoiseParams(
            tau_membrane=tau_membrane, epsilon_0=epsilon_0, u_rest=u_rest, theta=theta, delta_u=delta_u,
            rho_0=rho_0, eta_0=eta_0, tau_after_potential=tau_after_potential, refractory=refractory,
        )  # fmt: skip
        self.dt = check_positive(dt, "dt")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {seed!r}")
        if generator is None:
            generator = torch.Generator()
            if seed is not None:
                generator.manual_seed(seed)
            else:
                generator.seed()
        self.generator = generator
        dtype = self._configure(step_mode, batch_size, dtype)
        state_shape = self._state_shape
        self.register_buffer("psp", torch.zeros(state_shape, dtype=dtype, device=device))
        self.register_buffer("after_potential", torch.zeros(state_shape, dtype=dtype, device=device))
        self.register_buffer("refractory_remaining", torch.zeros(state_shape, dtype=torch.int32, device=device))
        self.register_buffer("voltage", torch.full(state_shape, self.params.u_rest, dtype=dtype, device=device))
        self.register_buffer(
            "spike_probability", torch.zeros(state_shape, dtype=dtype, device=device), persistent=False
        )
        self._register_outputs(device, store_voltage_sequence)

    # -- state -------------------------------------------------------------------

    def reset(self) -> None:
        """The resting state: no PSP, no after-potential, not refractory, ``voltage = u_rest``, no spike."""
        like = self.psp
        shape = self._state_shape
        for name in ("psp", "after_potential", "spike_probability"):
            rebind_buffer(self, name, torch.zeros(shape, dtype=like.dtype, device=like.device))
        rebind_buffer(self, "voltage", torch.full(shape, self.params.u_rest, dtype=like.dtype, device=like.device))
        rebind_buffer(self, "refractory_remaining", torch.zeros(shape, dtype=torch.int32, device=like.device))
        self._reset_outputs()

    def _state(self) -> EscapeNoiseState:
        buffers = self._buffers
        return EscapeNoiseState(
            cast(Tensor, buffers["psp"]),
            cast(Tensor, buffers["after_potential"]),
            cast(Tensor, buffers["refractory_remaining"]),
        )

    def _uniform(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        draws = torch.rand(shape, generator=self.generator, dtype=like.dtype, device=self.generator.device)
        return draws.to(like.device)

    # -- dynamics --------------------------------------------------------------------

    def forward(self, inputs: Tensor) -> Tensor:
        """Advance one step (``[B, *shape]``) or a window (``[T, B, *shape]``); return the spikes as floats.

        ``inputs`` must have the state's dtype and device; errors name ``inputs``
        before any state changes (the uniform numbers are drawn after the checks).
        """
        self._check_inputs(inputs)
        check_tensor(inputs, "inputs", finite=True)
        uniform = self._uniform(tuple(inputs.shape), inputs)
        with torch.no_grad():
            if self._step_mode == "single":
                step = escape_noise_step(inputs, self._state(), self.params, dt=self.dt, uniform=uniform)
                spikes, probability, voltage, state = step.spike, step.probability, step.voltage, step.state
                last_voltage = voltage
            else:
                window = escape_noise_window(inputs, self._state(), self.params, dt=self.dt, uniform=uniform)
                spikes, probability, voltage, state = window.spikes, window.probability, window.voltage, window.state
                last_voltage = voltage[-1] if voltage.shape[0] else cast(Tensor, self._buffers["voltage"])
        for name, value in zip(EscapeNoiseState._fields, state, strict=True):
            rebind_buffer(self, name, value)
        rebind_buffer(self, "voltage", last_voltage)
        rebind_buffer(self, "spike", spikes)
        rebind_buffer(self, "spike_probability", probability)
        if self._store_voltage_sequence:
            self._voltage_sequence = voltage
        return spikes.to(inputs.dtype)

    def extra_repr(self) -> str:
        fields = ", ".join(
            f"{field.name}={getattr(self.params, field.name)}" for field in attrs.fields(EscapeNoiseParams)
        )
        return (
            f"shape={self.shape}, {fields}, dt={self.dt}, batch_size={self._batch_size}, step_mode={self._step_mode!r}"
        )
