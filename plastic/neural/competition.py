"""Winner-take-all across feature maps: a neuron group whose spikes compete.

:class:`WinnerTakeAll` wraps a neuron module of shape ``[C, *spatial]`` (``C``
feature maps, e.g. the output of a :class:`~plastic.neural.connections.Conv2d`)
and lets through only the spikes that win the competition of
:mod:`plastic.functional.competition`; it keeps, per sample, which neurons are
inhibited for the rest of the presentation (``blocked``) and how many winners
are left. It has the neuron interface (``shape``, ``dt``, ``step_mode``,
``batch_size``, ``voltage``, ``spike``, ``reset()``), so it drives a
:class:`~plastic.neural.cell.Cell` and the trainers' monitors read its
``spike``: a rule registered with the cell learns from the winners only.

Per step (``score = H - threshold``, the charge of the wrapped neuron's kind
above its threshold, ``theta`` included for adaptive neurons):

1. ``candidates`` = the wrapped neuron's spikes, minus ``blocked``;
2. ``per_position``: one winner per position (the others there are blocked);
3. ``k``: at most ``k`` winners per sample and presentation, one per map, each
   blocking its map and every map within ``radius`` positions;
4. ``once``: a neuron that fired is blocked for the rest of the presentation
   (first-spike coding: each neuron fires at most once).

Without ``per_position`` and ``k`` every unblocked candidate fires. A
presentation ends with :meth:`reset` (the wrapped neuron's state, ``blocked``
and the winner counts). The wrapped neuron's own state evolves as usual; the
spikes it emits but that lose are dropped (a losing neuron is blocked, so its
later state does not matter). No gradient passes the competition.

References: Masquelier & Thorpe (2007), PLoS Comput. Biol. 3:e31 (one winner
per presentation, first-spike STDP); Kheradpisheh, Ganjtabesh, Thorpe &
Masquelier (2018), Neural Netw. 99:56 (per-position inhibition between maps at
inference, k winners with local inhibition during learning, each neuron firing
at most once).
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor, nn

from plastic.functional.attrs_validators import int_at_least
from plastic.functional.competition import k_winners, position_winners
from plastic.functional.neurons import neuron_charge
from plastic.neural.buffers import rebind_buffer
from plastic.neural.neurons import SpikingNeuron
from plastic.neural.step_mode import StepModeMixin

__all__ = ["Competition", "WinnerTakeAll"]


@attrs.frozen
class Competition:
    """How the spikes of a :class:`WinnerTakeAll` group compete (see the module docs).

    Parameters:
        k: at most this many winners per sample and presentation, one per map
            (None: no limit, no k-winners step).
        radius: with ``k``, a winner blocks every map within this many
            positions (Chebyshev distance; 0: its own position only).
        per_position: at most one map fires at each position (the others
            there are blocked for the presentation).
        once: each neuron fires at most once per presentation.
    """

    k: int | None = attrs.field(default=None, validator=attrs.validators.optional(int_at_least(1)))
    radius: int = attrs.field(default=0, validator=int_at_least(0))
    per_position: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    once: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


class WinnerTakeAll(StepModeMixin, nn.Module):
    """A neuron group ``[C, *spatial]`` whose spikes compete across feature maps.

    Args:
        neuron: the wrapped :class:`~plastic.neural.neurons.SpikingNeuron`
            (``IF``, ``LIF``, ``AdaptiveLIF``), shape ``[C]``, ``[C, L]`` or
            ``[C, H, W]``; it is run one step at a time (its ``step_mode`` is
            set to ``"single"``).
        competition: a :class:`Competition`, or None for keyword arguments
            ``k``, ``radius``, ``per_position``, ``once``.
        step_mode: ``"single"`` (``[B, *shape]`` per call) or ``"window"``
            (``[T, B, *shape]``, the steps run in order: the competition is a
            recurrence).

    Buffers: ``blocked`` (bool ``[B, *shape]``), ``winners_left`` (int64 ``[B]``,
    only meaningful with ``k``), ``spike`` (the last forward's winners, bool,
    not saved). ``competition`` may be replaced between presentations.
    """

    blocked: Tensor
    winners_left: Tensor
    spike: Tensor

    def __init__(
        self,
        neuron: SpikingNeuron,
        competition: Competition | None = None,
        *,
        step_mode: str = "single",
        **competition_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(neuron, SpikingNeuron):
            raise TypeError(f"neuron: expected a SpikingNeuron (IF, LIF, AdaptiveLIF), got {type(neuron).__name__}")
        if len(neuron.shape) > 3:
            raise ValueError(f"neuron: expected a shape [C], [C, L] or [C, H, W], got {neuron.shape}")
        if competition is not None and competition_kwargs:
            raise ValueError("competition: give a Competition or keyword arguments, not both")
        self._competition = self._checked(Competition(**competition_kwargs) if competition is None else competition)
        neuron.step_mode = "single"
        self.neuron = neuron
        self.step_mode = step_mode
        voltage = neuron.voltage
        self.register_buffer("blocked", torch.zeros(voltage.shape, dtype=torch.bool, device=voltage.device))
        self.register_buffer("winners_left", torch.zeros(voltage.shape[0], dtype=torch.int64, device=voltage.device))
        self.register_buffer("spike", torch.zeros_like(self.blocked), persistent=False)
        self._reset_competition()

    # -- configuration -------------------------------------------------------

    @staticmethod
    def _checked(competition: object) -> Competition:
        if not isinstance(competition, Competition):
            raise TypeError(f"competition: expected a Competition, got {type(competition).__name__}")
        return competition

    @property
    def competition(self) -> Competition:
        """The rules of the competition; setting it resets the competition state (not the neuron)."""
        return self._competition

    @competition.setter
    def competition(self, value: Competition) -> None:
        self._competition = self._checked(value)
        self._reset_competition()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.neuron.shape

    @property
    def dt(self) -> float:
        return self.neuron.dt

    @property
    def voltage(self) -> Tensor:
        """The wrapped neuron's membrane potential ``[B, *shape]``."""
        return self.neuron.voltage

    @property
    def batch_size(self) -> int:
        return self.neuron.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.neuron.batch_size = value  # validates and resets the neuron
        voltage = self.neuron.voltage
        self.blocked = torch.zeros(voltage.shape, dtype=torch.bool, device=voltage.device)
        self.winners_left = torch.zeros(voltage.shape[0], dtype=torch.int64, device=voltage.device)
        self.spike = torch.zeros_like(self.blocked)
        self._reset_competition()

    # -- state ---------------------------------------------------------------

    def _reset_competition(self) -> None:
        self.blocked.zero_()
        self.winners_left.fill_(0 if self._competition.k is None else self._competition.k)
        self.spike = torch.zeros_like(self.blocked)

    def reset(self) -> None:
        """Start a new presentation: the wrapped neuron's state, ``blocked`` and the winner counts."""
        self.neuron.reset()
        self._reset_competition()

    # -- dynamics ------------------------------------------------------------

    def _score(self, voltage_before: Tensor, inputs: Tensor) -> Tensor:
        neuron = self.neuron
        score = neuron_charge(neuron.params, voltage_before, inputs) - neuron.params.v_threshold
        return score - neuron.theta if neuron.adaptive else score

    def _step(self, inputs: Tensor) -> Tensor:
        voltage_before = self.neuron.voltage
        self.neuron(inputs)  # checks the inputs before any state changes
        candidates = self.neuron.spike & ~self.blocked
        competition = self._competition
        blocked = self.blocked
        if competition.per_position or competition.k is not None:
            score = self._score(voltage_before, inputs.detach())
            if competition.per_position:
                candidates, blocked = position_winners(score, candidates, blocked)
            if competition.k is not None:
                candidates, blocked, left = k_winners(score, candidates, blocked, self.winners_left, competition.radius)
                rebind_buffer(self, "winners_left", left)
        if competition.once:
            blocked = blocked | candidates
        rebind_buffer(self, "blocked", blocked)
        rebind_buffer(self, "spike", candidates)
        return candidates.to(inputs.dtype)

    def forward(self, inputs: Tensor) -> Tensor:
        """One step ``[B, *shape]`` or a window ``[T, B, *shape]`` of input current -> the winners' spikes.

        Returns float spikes (0/1, the inputs' dtype) of the inputs' shape;
        ``spike`` holds them as bool. The wrapped neuron raises on bad inputs
        before any state changes.
        """
        if self._step_mode == "single":
            return self._step(inputs)
        if not isinstance(inputs, Tensor) or inputs.ndim != len(self.shape) + 2:
            shown = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ValueError(f"inputs: expected a window [T, B, *{self.shape}], got {shown}")
        spikes = [self._step(step) for step in inputs]  # a recurrence over time
        window = torch.stack(spikes)
        rebind_buffer(self, "spike", window != 0)
        return window

    def extra_repr(self) -> str:
        c = self._competition
        return (
            f"k={c.k}, radius={c.radius}, per_position={c.per_position}, once={c.once}, step_mode={self._step_mode!r}"
        )
