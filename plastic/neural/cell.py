"""Cells: a trainable connection bound to the neuron group it drives.

``Cell(connection, neuron)`` computes ``neuron(connection(spikes))``: the
presynaptic spikes go through the connection's synapse and weights, and the
resulting input drives the postsynaptic neurons. Trainers are registered with
cells: they read the connection (``synspike``, ``syncurrent``, receptive
views, ``weight``, ``delay``) and the neuron (``spike``) and write potentiation
and depression into ``cell.updater``.

The updater is held by the cell but is **not** one of its submodules: an
:class:`~plastic.neural.updater.Updater` keeps a reference to the connection,
and registering it would make the module tree reach the connection twice (and
put the accumulators in the cell's ``state_dict``). Trainers reach it as
``cell.updater``; save its accumulators with ``cell.updater.state_dict()``
where needed.

``Serial(*cells)`` runs cells one after the other, the output spikes of each
feeding the next.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from torch import Tensor, nn

from plastic.functional.validation import all_finite
from plastic.neural.connections import Connection
from plastic.neural.fused_step import fused_cell_step
from plastic.neural.neuron_base import SpikingNeuron
from plastic.neural.observable import Observable, has_call_hooks
from plastic.neural.synapse_base import Synapse

if TYPE_CHECKING:
    from plastic.neural.updater import Updater

__all__ = ["Cell", "Serial"]


class _NeuronModule(Protocol):
    """What a cell uses of its neuron module: a SpikingNeuron, or any module with this interface."""

    step_mode: str
    batch_size: int
    voltage: Tensor

    def reset(self) -> None: ...

    def __call__(self, inputs: Tensor, **neuron_inputs: Tensor) -> Tensor: ...


def _neuron_shape(neuron: nn.Module) -> tuple[int, ...]:
    shape = getattr(neuron, "shape", None)
    if shape is None:
        raise TypeError(f"neuron: expected a neuron module with a 'shape', got {type(neuron).__name__}")
    return (shape,) if isinstance(shape, int) else tuple(shape)


class Cell(Observable):
    """A connection and the neurons it drives: ``forward(x) = neuron(connection(x))``.

    Args:
        connection: a :class:`~plastic.neural.connections.Connection`.
        neuron: a neuron module (``shape``, ``step_mode``, ``batch_size``,
            ``dt``, ``spike``, ``reset()``) with ``shape == connection.out_shape``.
        updater: None, or an :class:`~plastic.neural.updater.Updater` over
            ``connection`` (see :meth:`make_updater`).

    ``connection`` and ``neuron`` must agree on ``dt``, ``step_mode`` and
    ``batch_size`` (``ValueError`` otherwise); setting ``step_mode`` or
    ``batch_size`` on the cell sets both.
    """

    connection: Connection
    neuron: nn.Module

    def __init__(self, connection: Connection, neuron: nn.Module, updater: Updater | None = None) -> None:
        super().__init__()
        if not isinstance(connection, Connection):
            raise TypeError(f"connection: expected a plastic Connection, got {type(connection).__name__}")
        if not isinstance(neuron, nn.Module):
            raise TypeError(f"neuron: expected an nn.Module, got {type(neuron).__name__}")
        shape = _neuron_shape(neuron)
        if shape != tuple(connection.out_shape):
            raise ValueError(
                f"neuron: shape {shape} does not match the connection's out_shape {tuple(connection.out_shape)}"
            )
        neuron_dt = getattr(neuron, "dt", connection.dt)
        if not math.isclose(float(neuron_dt), connection.dt, rel_tol=1e-12):
            raise ValueError(f"neuron: dt {neuron_dt} differs from the connection's dt {connection.dt}")
        if getattr(neuron, "step_mode", connection.step_mode) != connection.step_mode:
            raise ValueError(
                f"neuron: step_mode {neuron.step_mode!r} differs from the connection's {connection.step_mode!r}"
            )
        if getattr(neuron, "batch_size", connection.batch_size) != connection.batch_size:
            raise ValueError(
                f"neuron: batch_size {neuron.batch_size} differs from the connection's {connection.batch_size}"
            )
        self.connection = connection
        self.neuron = neuron
        object.__setattr__(self, "_updater", None)
        self.updater = updater

    # The updater is kept out of the module tree (see the module docstring): nn.Module.__setattr__
    # would register it as a submodule, object.__setattr__ reaches the property's setter.
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "updater":
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    @property
    def updater(self) -> Updater | None:
        """The updater trainers write into (None until set or made)."""
        updater: Updater | None = self.__dict__["_updater"]  # a plain attribute (see __setattr__)
        return updater

    @updater.setter
    def updater(self, updater: Updater | None) -> None:
        self._set_updater(updater)

    def _set_updater(self, updater: object) -> None:
        if updater is not None:
            from plastic.neural.updater import Updater  # lazy: updaters are optional

            if not isinstance(updater, Updater):
                raise TypeError(f"updater: expected None or an Updater, got {type(updater).__name__}")
            if updater.module is not self.connection:
                raise ValueError("updater: expected an Updater over this cell's connection")
        object.__setattr__(self, "_updater", updater)

    def trainable_params(self) -> tuple[str, ...]:
        """Connection parameters plasticity acts on: ``weight``, plus ``delay`` when learned."""
        names = ["weight"]
        delay = getattr(self.connection, "delay", None)
        if delay is not None and delay.requires_grad:
            names.append("delay")
        return tuple(names)

    def make_updater(self, params: Sequence[str] | None = None, **kwargs: Any) -> Updater:
        """Build an :class:`~plastic.neural.updater.Updater` over the connection, store it as ``cell.updater``.

        ``params`` defaults to :meth:`trainable_params`; ``kwargs`` go to the
        updater (``reduction``, ``bounding``, ``clamp``, ``normalize``, ...).
        A learned ``delay`` is clamped to ``[0, max_delay]`` unless ``clamp``
        names it.
        A lateral connection's ``weight_mask`` is respected by the updater.
        """
        from plastic.neural.updater import Updater  # lazy import, see the module docstring

        names = self.trainable_params() if params is None else tuple(params)
        if "delay" in names:
            # learned delays stay within [0, max_delay] unless the caller says otherwise
            clamp = kwargs.get("clamp")
            delay_range = (0.0, float(self.connection.max_delay))
            if clamp is None:
                kwargs["clamp"] = {"delay": delay_range}
            elif isinstance(clamp, dict) and "delay" not in clamp:
                kwargs["clamp"] = {**clamp, "delay": delay_range}
        updater = Updater(self.connection, names, **kwargs)
        self._set_updater(updater)
        return updater

    # ------------------------------------------------------------------ configuration

    @property
    def step_mode(self) -> str:
        """``"single"`` or ``"window"``; setting it sets the connection and the neuron."""
        # read by the monitors at every step: the connection's, which its synapse holds, read where the
        # synapse keeps it (what Connection.step_mode and Synapse.step_mode return, without their two
        # calls: measured 0.4 us per step of a cell with two monitors) unless a subclass redefines either
        connection: Connection = self._modules["connection"]  # type: ignore[assignment]  # registered in __init__
        synapse: Synapse = connection._modules["synapse"]  # type: ignore[assignment]  # registered by Connection
        if type(connection).step_mode is _CONNECTION_STEP_MODE and type(synapse).step_mode is _SYNAPSE_STEP_MODE:
            mode: str = synapse.__dict__["_step_mode"]  # set by Synapse.step_mode
            return mode
        return connection.step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self.connection.step_mode = value
        cast(_NeuronModule, self.neuron).step_mode = value

    @property
    def batch_size(self) -> int:
        """Samples per step; setting it resizes and resets the connection and the neuron."""
        return self.connection.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.connection.batch_size = value
        cast(_NeuronModule, self.neuron).batch_size = value

    @property
    def dt(self) -> float:
        """Step length in time units (shared by the connection and the neuron)."""
        return self.connection.dt

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.connection.in_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.connection.out_shape)

    def reset(self) -> None:
        """Reset the connection (synapse histories) and the neuron; the updater is left as is."""
        self.connection.reset()
        cast(_NeuronModule, self.neuron).reset()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # a single step without a graph in one native call where it can be (plastic.neural.fused_step);
        # its observers are called there
        if args and not torch.is_grad_enabled() and len(args) + len(kwargs) <= 2:
            if len(args) == 2:
                current = args[1]
            elif not kwargs:
                current = None
            else:
                current = kwargs.get("current", _NOT_GIVEN)
            if current is not _NOT_GIVEN:
                out = fused_cell_step(self, args[0], current, args)
                if out is not None:
                    return out
        return super().__call__(*args, **kwargs)

    def forward(self, spikes: Tensor, current: Tensor | None = None, **neuron_inputs: Tensor) -> Tensor:
        """Presynaptic spikes ``[(T,) B, *in_shape]`` -> postsynaptic spikes ``[(T,) B, *out_shape]``.

        ``current`` (optional, the shape of the connection's output) is added
        to the connection's output before the neuron: the input of other
        connections onto the same neurons, e.g. lateral inhibition.
        ``neuron_inputs`` go to the neuron's forward as keywords (the neuron
        checks them), e.g. the ``inhibitory`` conductance of a
        :class:`~plastic.neural.conductance_lif.ConductanceLIF`.
        """
        # the submodules without nn.Module.__getattr__ (this runs at every step; registered in __init__,
        # annotated rather than cast: typing.cast is a Python call)
        modules = self._modules
        connection: Connection = modules["connection"]  # type: ignore[assignment]
        neuron: _NeuronModule = modules["neuron"]  # type: ignore[assignment]
        if not neuron_inputs and not torch.is_grad_enabled():
            out = plain_single_step(connection, modules["neuron"], spikes, current)  # type: ignore[arg-type]
            if out is not None:
                return out
        if current is not None:
            # checked before anything runs, so a bad call changes no state
            leading = spikes.ndim - len(connection.in_shape)
            if not (
                type(current) is Tensor
                and current.ndim == leading + len(connection.out_shape)
                and current.shape[:leading] == spikes.shape[:leading]
                and current.shape[leading:] == connection.out_shape
            ):
                expected = tuple(spikes.shape[:leading]) + tuple(connection.out_shape)
                if not isinstance(current, Tensor) or tuple(current.shape) != expected:
                    shown = tuple(current.shape) if isinstance(current, Tensor) else type(current).__name__
                    raise ValueError(f"current: expected shape {expected}, got {shown}")
            # the state without nn.Module.__getattr__ where it is a buffer (a SpikingNeuron's)
            voltage = modules["neuron"]._buffers.get("voltage")  # type: ignore[union-attr]
            if voltage is None:
                voltage = neuron.voltage
            if current.dtype != voltage.dtype:
                raise TypeError(f"current: expected dtype {voltage.dtype} (the neuron's state), got {current.dtype}")
            if current.device != voltage.device:
                raise ValueError(f"current: expected a tensor on {voltage.device}, got {current.device}")
            check_current_finite(current)
        # the submodules' forwards without nn.Module's call dispatch, unless hooks must see the calls
        drive = connection(spikes) if has_call_hooks(connection) else connection.forward(spikes)
        if current is not None:
            drive = drive + current
        module = modules["neuron"]  # the same neuron, as the nn.Module it is
        if neuron_inputs:
            if module is None or has_call_hooks(module):
                return neuron(drive, **neuron_inputs)
            return cast(Tensor, module.forward(drive, **neuron_inputs))
        return neuron(drive) if module is None or has_call_hooks(module) else module.forward(drive)


def check_current_finite(current: Tensor) -> None:
    """A cell's other input (``current``) holds no NaN or inf; checked before anything steps."""
    if not all_finite(current):
        raise ValueError("current: expected finite values, found NaN or inf")


def plain_single_step(
    connection: Connection, neuron: nn.Module, spikes: Tensor, current: Tensor | None = None
) -> Tensor | None:
    """``neuron(connection(spikes) + current)`` for a step without a graph, through the methods the calls
    would reach.

    Taken when neither module nor the synapse needs ``nn.Module``'s call
    dispatch (:func:`~plastic.neural.observable.has_call_hooks`), the
    connection (without delays) and a :class:`~plastic.neural.neuron_base.SpikingNeuron`
    keep their classes' ``forward`` and the neuron steps singly, and
    ``current`` (None: no other input) is a plain tensor of the neuron's
    state's shape, dtype and device that records no graph: the connection's
    pass-through step (its ``forward`` otherwise) and the neuron's step
    without a graph, what :meth:`Cell.forward` would run under
    ``torch.no_grad()``, without the modules' dispatch. ``current`` is
    checked for NaN and inf before anything steps, as there. ``None``: not
    taken, nothing changed (call the modules).
    """
    synapse = connection._modules["synapse"]
    if not (
        type(connection).forward is _CONNECTION_FORWARD
        and type(neuron).forward is _NEURON_FORWARD
        and neuron.__dict__["_step_mode"] == "single"
        and connection.delay is None
        and not has_call_hooks(connection)
        and not has_call_hooks(synapse)  # type: ignore[arg-type]  # registered in Connection.__init__
        and not has_call_hooks(neuron)
    ):
        return None
    if current is not None:
        # the shape the neuron's state has: the connection's output for spikes of its batch (other
        # spikes are refused by the connection, before the neuron runs)
        voltage = neuron._buffers["voltage"]
        if not (
            type(current) is Tensor
            and voltage is not None
            and current.shape == voltage.shape
            and current.dtype == voltage.dtype
            and current.device == voltage.device
            and not current.requires_grad
        ):
            return None  # Cell.forward's checks, with their messages
        check_current_finite(current)
    drive = connection._pass_through_step(synapse, spikes)  # type: ignore[arg-type]  # a Synapse
    if drive is None:
        drive = connection.forward(spikes)
    if current is not None:
        drive = drive + current
    return cast(SpikingNeuron, neuron)._forward_step_unchecked(drive)


_NOT_GIVEN = object()
_CONNECTION_FORWARD = Connection.forward
_CONNECTION_STEP_MODE = Connection.step_mode
_SYNAPSE_STEP_MODE = Synapse.step_mode
_NEURON_FORWARD = SpikingNeuron.forward


class Serial(nn.Module):
    """Cells in sequence: the output spikes of each cell feed the next.

    ``Serial(cell_1, cell_2, ...)`` checks that each cell's ``out_shape`` is
    the next one's ``in_shape`` and that all share ``dt``, ``step_mode`` and
    ``batch_size``; setting ``step_mode`` or ``batch_size`` sets them all.
    """

    def __init__(self, *cells: Cell) -> None:
        super().__init__()
        if not cells:
            raise ValueError("cells: expected at least one Cell")
        for index, cell in enumerate(cells):
            if not isinstance(cell, Cell):
                raise TypeError(f"cells: item {index} is a {type(cell).__name__}, expected a Cell")
        for index, (before, after) in enumerate(itertools.pairwise(cells)):
            if before.out_shape != after.in_shape:
                raise ValueError(
                    f"cells: cell {index} gives shape {before.out_shape}, cell {index + 1} expects {after.in_shape}"
                )
            for name in ("dt", "step_mode", "batch_size"):
                if getattr(before, name) != getattr(after, name):
                    raise ValueError(
                        f"cells: {name} of cell {index} ({getattr(before, name)!r}) differs from "
                        f"cell {index + 1} ({getattr(after, name)!r})"
                    )
        self.cells = nn.ModuleList(cells)

    def _cells(self) -> list[Cell]:
        # the ModuleList holds only the Cells checked in __init__
        return cast(list[Cell], list(self.cells))

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, index: int) -> Cell:
        return cast(Cell, self.cells[index])

    @property
    def step_mode(self) -> str:
        return cast(Cell, self.cells[0]).step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        for cell in self._cells():
            cell.step_mode = value

    @property
    def batch_size(self) -> int:
        return cast(Cell, self.cells[0]).batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        for cell in self._cells():
            cell.batch_size = value

    @property
    def dt(self) -> float:
        return cast(Cell, self.cells[0]).dt

    def reset(self) -> None:
        for cell in self._cells():
            cell.reset()

    def forward(self, spikes: Tensor) -> Tensor:
        for cell in self._cells():
            spikes = cell(spikes)
        return spikes
