"""A neuron that fires what it is told, and a seeded weight initializer, for tests of rules.

A cell built with :class:`ScriptedNeuron` runs a connection forward normally
while its postsynaptic spikes are chosen by the test: that is how
:mod:`plastic.testing.invariants` drives trainers with drawn pre and post trains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from plastic.functional.traces import spike_values
from plastic.functional.validation import check_positive, check_spikes, check_tensor
from plastic.neural.buffers import rebind_buffer, set_plain
from plastic.neural.neuron_base import check_neuron_shape
from plastic.neural.step_mode import StepModeMixin
from plastic.neural.synapse_base import check_batch_size

__all__ = ["ScriptedNeuron", "seeded_weight_init"]


class ScriptedNeuron(StepModeMixin, nn.Module):
    """A neuron group that fires what it is told, whatever its input.

    ``script(spikes)`` queues a window ``[T, B, *shape]``; each forward emits
    the next step (``step_mode="single"``) or the next ``T'`` steps
    (``"window"``) of it as float spikes of the input's dtype, and keeps them
    in ``spike`` (bool), as the neuron modules of :mod:`plastic.neural.neurons`
    do, so monitors and trainers read it the same way. Used to drive a
    :class:`~plastic.neural.cell.Cell` with chosen postsynaptic spikes.

    Args:
        shape: neuron shape (int or tuple), without the batch.
        dt: step length (> 0), to match the connection's.
        batch_size, step_mode, device, dtype: as the neuron modules.
    """

    spike: Tensor
    voltage: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.shape = check_neuron_shape(shape)
        self.dt = float(check_positive(dt, "dt"))
        self.step_mode = step_mode
        self._batch_size = check_batch_size(batch_size)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        # no dynamics: the voltage buffer only carries the dtype and device, like a neuron's state
        self.register_buffer("voltage", torch.zeros((batch_size, *self.shape), dtype=dtype, device=device))
        silent = torch.zeros((batch_size, *self.shape), dtype=torch.bool, device=device)
        self.register_buffer("spike", silent, persistent=False)
        self._script: Tensor | None = None
        self._position = 0

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = check_batch_size(value)
        self.voltage = self.voltage.new_zeros((value, *self.shape))
        self.reset()

    @property
    def remaining(self) -> int:
        """Scripted steps not yet emitted."""
        return 0 if self._script is None else self._script.shape[0] - self._position

    def script(self, spikes: Tensor) -> None:
        """Queue ``spikes`` ``[T, B, *shape]`` (bool or {0, 1}); replaces what was left."""
        checked = check_spikes(spikes, "spikes")
        if tuple(checked.shape[1:]) != (self._batch_size, *self.shape) or checked.ndim != len(self.shape) + 2:
            raise ValueError(
                f"spikes: expected shape [T, {self._batch_size}, {', '.join(map(str, self.shape))}], "
                f"got {tuple(checked.shape)}"
            )
        # plain attributes and a rebound buffer: skips nn.Module.__setattr__ (the same result)
        set_plain(self, "_script", checked.to(self.voltage.device))
        set_plain(self, "_position", 0)

    def reset(self) -> None:
        """No spike, nothing scripted."""
        silent = torch.zeros((self._batch_size, *self.shape), dtype=torch.bool, device=self.voltage.device)
        rebind_buffer(self, "spike", silent)
        set_plain(self, "_script", None)
        set_plain(self, "_position", 0)

    def forward(self, inputs: Tensor) -> Tensor:
        """Emit the next scripted step(s) as float spikes of ``inputs``' dtype."""
        check_tensor(inputs, "inputs", floating=True)
        lead = 2 if self._step_mode == "window" else 1
        if tuple(inputs.shape[lead - 1 :]) != (self._batch_size, *self.shape) or inputs.ndim != len(self.shape) + lead:
            raise ValueError(
                f"inputs: expected [{'T, ' if lead == 2 else ''}{self._batch_size}, "
                f"{', '.join(map(str, self.shape))}], got {tuple(inputs.shape)}"
            )
        steps = inputs.shape[0] if lead == 2 else 1
        if self.remaining < steps:
            raise ValueError(
                f"spikes: {self.remaining} scripted step(s) left, the forward needs {steps}; call script() first"
            )
        assert self._script is not None
        emitted = self._script[self._position : self._position + steps]
        set_plain(self, "_position", self._position + steps)
        spike = emitted if lead == 2 else emitted[0]
        rebind_buffer(self, "spike", spike)
        return spike_values(spike, inputs.dtype)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, dt={self.dt}, batch_size={self._batch_size}, step_mode={self._step_mode!r}"


def seeded_weight_init(seed: int, low: float = 0.0, high: float = 1.0) -> Callable[[Tensor], None]:
    """A ``weight_init`` filling the weight uniformly in ``[low, high)`` from ``seed`` (reproducible)."""

    def fill(weight: Tensor) -> None:
        generator = torch.Generator().manual_seed(seed)
        values = low + (high - low) * torch.rand(weight.shape, generator=generator, dtype=torch.float64)
        weight.copy_(values.to(device=weight.device, dtype=weight.dtype))

    return fill
