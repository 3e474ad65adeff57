"""``ConductanceLIF``: leaky integrate-and-fire neurons driven by synaptic conductances, as a module.

The input is the excitatory conductance ``g_e`` (the connection's output plus
``Cell``'s ``current``: every excitatory connection onto the neurons shares
the reversal potential ``E_e``), in units of the leak conductance; an
inhibitory conductance ``g_i`` (reversal ``E_i``) comes as the keyword
``inhibitory`` (``cell(spikes, inhibitory=g_i)`` passes it on). Equations,
discretisation, units and defaults (the neuron of Song, Miller & Abbott
2000): :mod:`plastic.functional.conductance_lif`. There is no surrogate
gradient: the module runs without building an autograd graph (use
:class:`~plastic.neural.neurons.LIF` for gradient training).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor

from plastic.functional.conductance_lif import ConductanceLIFParams, conductance_lif_step, conductance_lif_window
from plastic.functional.validation import check_positive
from plastic.neural.buffers import rebind_buffer
from plastic.neural.neuron_base import NeuronModule, _params_with_overrides, check_neuron_shape

__all__ = ["ConductanceLIF"]


class ConductanceLIF(NeuronModule):
    """Conductance-based LIF neurons: ``tau_m dV/dt = (E_L - V) + g_e (E_e - V) + g_i (E_i - V)``.

    Parameters
    ----------
    shape:
        Neuron shape without the batch (int or tuple of ints).
    params:
        :class:`~plastic.functional.conductance_lif.ConductanceLIFParams`
        (default: the neuron of Song, Miller & Abbott 2000).
    dt:
        Step length (ms, > 0).
    batch_size, step_mode, device, dtype:
        Samples per step, ``"single"`` (``[B, *shape]`` per call) or
        ``"window"`` (``[T, B, *shape]``), where and in which floating dtype
        the state lives.
    store_voltage_sequence:
        Keep the membrane potential of every step of the last forward as
        :attr:`voltage_sequence`.
    **overrides:
        Fields of ``params`` to change (``ConductanceLIF(1, v_threshold=-50.0)``).

    Buffers: ``voltage`` ``[B, *shape]`` (mV, starts at ``v_rest``, saved in
    the state dict); ``spike``: the last forward's spikes (bool, not saved);
    ``voltage_sequence`` (with ``store_voltage_sequence``): ``V_t`` of every
    step of the last forward, after the reset.
    """

    voltage: Tensor
    spike: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        params: ConductanceLIFParams | None = None,
        *,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        store_voltage_sequence: bool = False,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.shape = check_neuron_shape(shape)
        self.params = _params_with_overrides(params, ConductanceLIFParams, overrides, "ConductanceLIF")
        self.dt = check_positive(dt, "dt")
        dtype = self._configure(step_mode, batch_size, dtype)
        self.register_buffer("voltage", torch.full(self._state_shape, self.params.v_rest, dtype=dtype, device=device))
        self._register_outputs(device, store_voltage_sequence)

    def reset(self) -> None:
        """Neurons at rest (``V = E_L``), no spike, no voltage sequence."""
        voltage = cast(Tensor, self._buffers["voltage"])
        rest = torch.full(self._state_shape, self.params.v_rest, dtype=voltage.dtype, device=voltage.device)
        rebind_buffer(self, "voltage", rest)  # [B, *shape] of the batch size, which may be new
        self._reset_outputs()

    def forward(self, inputs: Tensor, inhibitory: Tensor | None = None) -> Tensor:
        """Advance by one step (``[B, *shape]``) or a window (``[T, B, *shape]``) of excitatory
        conductances ``inputs`` (and ``inhibitory`` ones of the same shape, or none); returns
        float spikes of the same shape (no gradient).

        Errors name ``inputs`` (shape, batch size, dtype, device; NaN, inf or a
        negative conductance as ``excitatory``, the functional form's name) or
        ``inhibitory``; the state is unchanged when a call fails.
        """
        self._check_inputs(inputs)  # the values (finite, >= 0): by the functional form, named excitatory
        voltage = cast(Tensor, self._buffers["voltage"])
        with torch.no_grad():
            if self._step_mode == "single":
                fired, voltage = conductance_lif_step(inputs, voltage, self.params, inhibitory=inhibitory, dt=self.dt)
                voltages = voltage
            else:
                fired, voltages, voltage = conductance_lif_window(
                    inputs, voltage, self.params, inhibitory=inhibitory, dt=self.dt
                )
        rebind_buffer(self, "voltage", voltage)
        rebind_buffer(self, "spike", fired)
        if self._store_voltage_sequence:
            rebind_buffer(self, "_voltage_sequence", voltages)
        return fired.to(inputs.dtype)

    def extra_repr(self) -> str:
        return ", ".join([f"shape={self.shape}", f"dt={self.dt}", *self._repr_batch()])
