"""Layers for plain torch spiking networks: a spike filter, a delay line, voting.

All three take a step ``[B, *shape]`` (``step_mode="single"``) or a window
``[T, B, *shape]`` (``step_mode="window"``). State lives in registered buffers,
is shaped lazily by the first input, and ``reset()`` returns it to its initial
(unshaped) value, after which a new shape may be used.

Surrogate-gradient networks feed float spikes that carry gradients; the layers
check that the values are {0, 1} but compute with the float tensor itself so
that gradients keep flowing. State keeps its autograd history across calls (for
backpropagation through time over consecutive steps); ``reset()`` or
``detach()`` cuts it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from plastic.functional.traces import spike_filter_step, spike_filter_window
from plastic.functional.validation import (
    check_greater,
    check_in_range,
    check_int_at_least,
    check_spikes,
    check_tensor,
)
from plastic.neural.step_mode import StepModeMixin

__all__ = ["Delay", "SynapseFilter", "VotingLayer"]


class _StepModeMixin(StepModeMixin):
    def _min_ndim(self) -> int:
        return 2 if self._step_mode == "window" else 1


class SynapseFilter(_StepModeMixin, nn.Module):
    """Spike filter: a current that gains 1 at each spike and decays between spikes.

    ``I_t = I_{t-1} - (1 - S_t) * I_{t-1} / tau + S_t``

    Between spikes the current decays by ``1 - 1/tau`` per step; at a spike it
    keeps its value and gains 1 (the decay is suspended for that step). ``tau``
    is in steps (Fang et al. use this filter as a learnable synaptic current in
    surrogate-gradient networks).

    Learnable variant (``learnable=True``): ``1/tau = sigmoid(w)`` with the
    parameter ``w`` initialised to ``w_0 = -log(tau - 1)`` (so that
    ``sigmoid(w_0) = 1/tau``); it needs ``tau > 1`` and keeps ``1/tau`` in
    ``(0, 1)`` during training. The fixed variant needs ``tau >= 1``
    (``tau = 1``: the current drops to 0 at every step without a spike).

    Args:
        tau: time constant in steps.
        learnable: make ``1/tau`` a trainable parameter ``weight`` (also
            readable and writable as ``w``, SpikingJelly's name).
        step_mode: ``"single"`` or ``"window"``.

    State: ``current`` buffer ``[B, *shape]``, 0-dimensional until the first
    input. Inputs are spikes (bool or {0, 1} floats, possibly carrying
    gradients); outputs are float currents, ``[B, *shape]`` or ``[T, B, *shape]``.

    Reference: Fang, Yu, Chen, Huang, Masquelier, Tian (2021), "Exploiting
    neuron and synapse filter dynamics in spatial temporal learning of deep
    spiking neural network", IJCAI 2020, arXiv:2003.02944.
    """

    current: Tensor

    def __init__(self, tau: float, learnable: bool = False, *, step_mode: str = "single") -> None:
        super().__init__()
        self.learnable = bool(learnable)
        if self.learnable:
            # sigmoid(w) = 1/tau has a finite w only for tau > 1.
            tau = check_greater(tau, "tau", 1.0)
            self.weight = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))
        else:
            tau = check_in_range(tau, "tau", 1.0, math.inf)
            if math.isinf(tau):
                raise ValueError(f"tau: expected a finite value >= 1 (in steps), got {tau}")
        self._initial_tau = tau
        self.step_mode = step_mode
        # 0-dim until the first input fixes [B, *shape]; its dtype (moved by .to())
        # is the state dtype used for bool inputs.
        self.register_buffer("current", torch.zeros(()))

    @property
    def inverse_tau(self) -> float | Tensor:
        """``1/tau``: a float (fixed) or ``sigmoid(weight)``, a tensor with gradient (learnable)."""
        if self.learnable:
            return torch.sigmoid(self.weight)
        return 1.0 / self._initial_tau

    @property
    def w(self) -> nn.Parameter:
        """SpikingJelly's name of the learnable parameter: an alias of ``weight``.

        Reading gives ``weight`` itself; ``filter.w = nn.Parameter(...)``
        replaces ``weight`` (learnable filters only).
        """
        return self.weight

    def __setattr__(self, name: str, value: Any) -> None:
        # nn.Module registers a Parameter under the assigned name before any
        # property setter runs, so the alias is redirected here
        super().__setattr__("weight" if name == "w" else name, value)

    @property
    def tau(self) -> float:
        """The current time constant in steps (a plain number)."""
        if self.learnable:
            return float(1.0 / torch.sigmoid(self.weight.detach()))
        return self._initial_tau

    def _prepare(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Validate ``inputs``; return (spike values for the computation, initial current)."""
        check_spikes(inputs, "inputs", min_ndim=self._min_ndim())
        step_shape = inputs.shape[1:] if self._step_mode == "window" else inputs.shape
        if self.current.ndim == 0:
            dtype = inputs.dtype if inputs.is_floating_point() else self.current.dtype
            current = torch.zeros(step_shape, dtype=dtype, device=inputs.device)
        else:
            current = self.current
            if current.shape != step_shape:
                raise ValueError(
                    f"inputs: expected steps of shape {tuple(current.shape)} (the state's shape), "
                    f"got {tuple(step_shape)}; call reset() before changing shapes"
                )
            if current.device != inputs.device:
                raise ValueError(
                    f"inputs: expected a tensor on {current.device} (the state's device), got {inputs.device}"
                )
        # Floats are used as they are (gradients flow); bool becomes the state's dtype.
        values = inputs if inputs.is_floating_point() else inputs.to(current.dtype)
        return values, current

    def forward(self, inputs: Tensor) -> Tensor:
        values, current = self._prepare(inputs)
        if self._step_mode == "single":
            self.current = spike_filter_step(current, values, self.inverse_tau)
            return self.current
        currents, self.current = spike_filter_window(values, current, self.inverse_tau)
        return currents

    def reset(self) -> None:
        """Forget the current (back to the unshaped zero state, keeping dtype and device)."""
        self.current = torch.zeros((), dtype=self.current.dtype, device=self.current.device)

    def detach(self) -> None:
        """Cut the autograd history of the state (truncated backpropagation through time)."""
        self.current = self.current.detach()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The state's shape is lazy: adopt the saved one before the size check.
        saved = state_dict.get(prefix + "current")
        if isinstance(saved, Tensor):
            self.current = torch.zeros(saved.shape, dtype=self.current.dtype, device=self.current.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, learnable={self.learnable}, step_mode={self._step_mode!r}"


class Delay(_StepModeMixin, nn.Module):
    """Delay line: ``y[t] = x[t - d]``, zeros for ``t < d``.

    ``d = delay_steps`` (an integer number of steps, ``>= 0``; ``0`` passes the
    input through). The last ``d`` inputs are kept in a preallocated ring
    buffer ``history [d, B, *shape]`` (lazily shaped by the first input), so
    consecutive calls continue one another and single steps and windows mix
    freely. Window mode is a single shift of ``[history, x]`` (no loop over
    time). Any dtype passes (spikes, currents); gradients pass through.

    With inputs that carry gradients in single mode, each in-place write of the
    ring is recorded by autograd; backward then costs ``O(d * B * N)`` per step.
    Use window mode for long differentiable runs.

    Args:
        delay_steps: the delay ``d`` in steps.
        step_mode: ``"single"`` or ``"window"``.
    """

    history: Tensor

    def __init__(self, delay_steps: int, *, step_mode: str = "single") -> None:
        super().__init__()
        self.delay_steps = check_int_at_least(delay_steps, "delay_steps", 0)
        self.step_mode = step_mode
        # Ring slot holding the oldest input (the next one to come out). A plain
        # int (no device sync per step), saved through get_extra_state.
        self._position = 0
        self.register_buffer("history", torch.zeros(()))

    def _prepare(self, inputs: Tensor) -> Tensor:
        check_tensor(inputs, "inputs", min_ndim=self._min_ndim(), finite=True)
        step_shape = inputs.shape[1:] if self._step_mode == "window" else inputs.shape
        if self.history.ndim == 0:
            return torch.zeros((self.delay_steps, *step_shape), dtype=inputs.dtype, device=inputs.device)
        history = self.history
        if history.shape[1:] != step_shape:
            raise ValueError(
                f"inputs: expected steps of shape {tuple(history.shape[1:])} (the state's shape), "
                f"got {tuple(step_shape)}; call reset() before changing shapes"
            )
        if history.dtype != inputs.dtype:
            raise TypeError(f"inputs: expected dtype {history.dtype} (the state's dtype), got {inputs.dtype}")
        if history.device != inputs.device:
            raise ValueError(f"inputs: expected a tensor on {history.device} (the state's device), got {inputs.device}")
        return history

    def forward(self, inputs: Tensor) -> Tensor:
        if self.delay_steps == 0:
            check_tensor(inputs, "inputs", min_ndim=self._min_ndim(), finite=True)
            return inputs
        history = self._prepare(inputs)
        if self._step_mode == "single":
            output = history[self._position].clone()
            history[self._position] = inputs
            self.history = history
            self._position = (self._position + 1) % self.delay_steps
            return output
        # Oldest first, then the window: outputs are the first T rows, the new
        # history the last d.
        ordered = torch.cat([history[self._position :], history[: self._position]]) if self._position else history
        combined = torch.cat([ordered, inputs])
        steps = inputs.shape[0]
        self.history = combined[steps:].clone()
        self._position = 0
        return combined[:steps]

    def reset(self) -> None:
        """Empty the delay line (back to the unshaped state; keeps the device)."""
        self.history = torch.zeros((), dtype=self.history.dtype, device=self.history.device)
        self._position = 0

    def detach(self) -> None:
        """Cut the autograd history of the delay line."""
        self.history = self.history.detach()

    def get_extra_state(self) -> dict[str, int]:
        return {"position": self._position}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self._position = int(state["position"])

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        saved = state_dict.get(prefix + "history")
        if isinstance(saved, Tensor):
            self.history = torch.zeros(saved.shape, dtype=saved.dtype, device=self.history.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"delay_steps={self.delay_steps}, step_mode={self._step_mode!r}"


class VotingLayer(_StepModeMixin, nn.Module):
    """Voting: the mean over consecutive groups of ``voting_size`` in the last dimension.

    ``y[..., g] = (1 / v) * sum_{k < v} x[..., g * v + k]``, ``v = voting_size``

    Used to read a class out of a population: ``num_classes * v`` output
    neurons, ``v`` per class, their firing (rate or spikes) averaged per class.
    The last dimension must be divisible by ``v``. Stateless (``reset()`` does
    nothing); bool or integer inputs give default-dtype floats.

    Args:
        voting_size: the group size ``v >= 1``.
        step_mode: ``"single"`` (``[B, ..., N]``) or ``"window"`` (``[T, B, ..., N]``);
            only the minimum number of dimensions differs.
    """

    def __init__(self, voting_size: int = 10, *, step_mode: str = "single") -> None:
        super().__init__()
        self.voting_size = check_int_at_least(voting_size, "voting_size", 1)
        self.step_mode = step_mode

    def forward(self, inputs: Tensor) -> Tensor:
        check_tensor(inputs, "inputs", min_ndim=self._min_ndim() + 1)
        if inputs.shape[-1] % self.voting_size:
            raise ValueError(
                f"inputs: the last dimension ({inputs.shape[-1]}) must be divisible by voting_size ({self.voting_size})"
            )
        if inputs.is_complex():
            raise TypeError(f"inputs: expected real values, got dtype {inputs.dtype}")
        values = inputs if inputs.is_floating_point() else inputs.to(torch.get_default_dtype())
        return rearrange(values, "... (group member) -> ... group member", member=self.voting_size).mean(-1)

    def reset(self) -> None:
        """Nothing to reset: voting keeps no state."""

    def extra_repr(self) -> str:
        return f"voting_size={self.voting_size}, step_mode={self._step_mode!r}"
