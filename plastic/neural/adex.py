"""``AdEx``: the adaptive exponential integrate-and-fire neurons of Clopath et al. (2010) as a module.

The neuron the voltage-based STDP of :class:`~plastic.learn.clopath.ClopathSTDP`
was written for: AdEx dynamics with a depolarising spike after-potential, an
adaptive threshold and a 2 ms spike plateau, so that the membrane potential
recorded from it (``voltage_sequence``) carries the spike and the
after-depolarisation the rule filters. Equations, discretisation, units and
defaults: :mod:`plastic.functional.adex`.

The input is a current in pA (the connection's output plus ``Cell``'s
``current``), held over each step; a voltage jump of ``J`` mV in one step
needs ``J * C / dt`` pA. There is no surrogate gradient: the module runs
without building an autograd graph (use :class:`~plastic.neural.neurons.LIF`
for gradient training).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor

from plastic.functional.adex import AdExParams, AdExState, adex_initial_state, adex_step, adex_window
from plastic.functional.validation import check_positive, check_tensor
from plastic.neural.buffers import rebind_buffer
from plastic.neural.neuron_base import NeuronModule, _params_with_overrides, check_neuron_shape

__all__ = ["AdEx"]

_STATE_BUFFERS = ("voltage", "adaptation", "afterpotential", "threshold", "plateau")


class AdEx(NeuronModule):
    """AdEx neurons with spike after-potential, adaptive threshold and spike plateau (Clopath et al. 2010).

    Parameters
    ----------
    shape:
        Neuron shape without the batch (int or tuple of ints).
    params:
        :class:`~plastic.functional.adex.AdExParams` (default: the paper's neuron).
    dt:
        Step length (ms, > 0). The spike's plateau lasts ``ceil(spike_duration / dt)`` steps.
    batch_size, step_mode, device, dtype:
        Samples per step, ``"single"`` (``[B, *shape]`` per call) or
        ``"window"`` (``[T, B, *shape]``), where and in which floating dtype
        the state lives.
    store_voltage_sequence:
        Keep the membrane potential of every step of the last forward as
        :attr:`voltage_sequence` (what a monitor records for the voltage-based rule).
    **overrides:
        Fields of ``params`` to change (``AdEx(10, v_reset=-60.0)``).

    Buffers (all ``[B, *shape]``, saved in the state dict): ``voltage`` (``u``,
    mV), ``adaptation`` (``w``, pA), ``afterpotential`` (``z``, pA),
    ``threshold`` (``V_T``, mV), ``plateau`` (int32, plateau steps left).
    ``spike``: the last forward's spikes (bool, not saved). ``voltage_sequence``
    (with ``store_voltage_sequence``): ``u_t`` of every step of the last forward, the
    plateau value at a spike and during its plateau (see :class:`~plastic.neural.neuron_base.NeuronModule`).
    """

    voltage: Tensor
    adaptation: Tensor
    afterpotential: Tensor
    threshold: Tensor
    plateau: Tensor
    spike: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        params: AdExParams | None = None,
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
        self.params = _params_with_overrides(params, AdExParams, overrides, "AdEx")
        self.dt = check_positive(dt, "dt")
        self.params.check_step(self.dt)
        dtype = self._configure(step_mode, batch_size, dtype)
        state = adex_initial_state(self._state_shape, self.params, dtype=dtype, device=device)
        for name, value in zip(_STATE_BUFFERS, state, strict=True):
            self.register_buffer(name, value)
        self._register_outputs(device, store_voltage_sequence)

    @property
    def plateau_steps(self) -> int:
        """The spike's plateau in steps, ``ceil(spike_duration / dt)`` (of ``params`` and ``dt``)."""
        return self.params.plateau_steps(self.dt)

    # -- state ---------------------------------------------------------------

    def _state(self) -> AdExState:
        return AdExState(*(cast(Tensor, self._buffers[name]) for name in _STATE_BUFFERS))

    def _store(self, state: AdExState) -> None:
        for name, value in zip(_STATE_BUFFERS, state, strict=True):
            rebind_buffer(self, name, value)

    def reset(self) -> None:
        """Neurons at rest (``u = E_L``, ``w = z = 0``, ``V_T = V_T,rest``, no plateau), no spike, no sequence."""
        voltage = cast(Tensor, self._buffers["voltage"])
        self._store(adex_initial_state(self._state_shape, self.params, dtype=voltage.dtype, device=voltage.device))
        self._reset_outputs()

    # -- dynamics ------------------------------------------------------------

    def forward(self, inputs: Tensor) -> Tensor:
        """Advance by one step (``[B, *shape]``) or a window (``[T, B, *shape]``) of input
        currents (pA); returns float spikes of the same shape (no gradient).

        Errors name ``inputs`` (shape, batch size, dtype, device, NaN or inf);
        the state is unchanged when a call fails.
        """
        self._check_inputs(inputs)
        check_tensor(inputs, "inputs", finite=True)
        with torch.no_grad():
            if self._step_mode == "single":
                fired, state = adex_step(inputs, self._state(), self.params, dt=self.dt)
                voltages = state.voltage
            else:
                fired, voltages, state = adex_window(inputs, self._state(), self.params, dt=self.dt)
        self._store(state)
        rebind_buffer(self, "spike", fired)
        if self._store_voltage_sequence:
            rebind_buffer(self, "_voltage_sequence", voltages)
        return fired.to(inputs.dtype)

    def extra_repr(self) -> str:
        return ", ".join([f"shape={self.shape}", f"dt={self.dt}", *self._repr_batch()])
