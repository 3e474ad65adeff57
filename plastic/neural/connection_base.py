"""The connection base class: a synapse, a weight, an optional bias and delays, outputs and views.

What every connection shares (:class:`Connection`); the kinds of weight, their
equations and shapes are in :mod:`plastic.neural.connections`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from plastic.functional.validation import check_choice, check_non_negative, check_positive, check_tensor
from plastic.functional.validation import check_count as check_count  # defined here before: still importable
from plastic.neural.buffers import rebind_buffer
from plastic.neural.observable import has_call_hooks
from plastic.neural.synapses import SYNAPSE_KINDS, Synapse, check_batch_size, make_synapse

__all__ = ["DELAY_INITS", "WEIGHT_LAYOUTS", "Connection", "WeightInit"]

WeightInit = Callable[[Tensor], Any] | tuple[float, float] | None
DELAY_INITS = ("zeros", "uniform")
#: how a 2-d weight ``[N_out, N_in]`` lies in memory: row by row (torch's ``nn.Linear``), or input
#: by input (its transpose contiguous: each input's outgoing weights in one row)
WEIGHT_LAYOUTS = ("output_major", "input_major")
# set by the connection; a synapse_kwargs entry for them is an error
_OWNED_SYNAPSE_KWARGS = ("shape", "dt", "max_delay", "batch_size", "step_mode")


class Connection(nn.Module):
    """Base class: synapse, weight, bias, optional delays, outputs and views.

    Subclasses define the weight's shape and :meth:`_propagate` (and, where
    delays are supported, :meth:`_propagate_delayed`) and the views.

    Attributes: ``weight``, ``bias`` (or None), ``delay`` (or None),
    ``max_delay`` (0.0 without delays), ``synapse``, ``in_shape``,
    ``out_shape``, ``groups``, ``weight_mask`` (or None), ``dt``.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None
    delay: nn.Parameter | None
    weight_mask: Tensor | None
    synspike: Tensor
    syncurrent: Tensor
    supports_delay = True
    #: read through __getattr__: the synapse's deferred current (see _pass_through_step)
    deferred_attributes: ClassVar[frozenset[str]] = frozenset({"syncurrent"})

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        weight_shape: tuple[int, ...],
        fan_in: int,
        groups: int,
        *,
        bias: bool,
        synapse: str | Synapse | None,
        synapse_kwargs: Mapping[str, object] | None,
        delay: float | None,
        learn_delay: bool,
        delay_init: str | Tensor,
        weight_init: WeightInit,
        dt: float,
        batch_size: int,
        step_mode: str,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        weight_layout: str = "output_major",
    ) -> None:
        super().__init__()
        check_choice(weight_layout, "weight_layout", WEIGHT_LAYOUTS)
        if weight_layout == "input_major" and len(weight_shape) != 2:
            raise ValueError(f"weight_layout: 'input_major' needs a 2-d weight, got shape {weight_shape}")
        dt = check_positive(dt, "dt")
        batch_size = check_batch_size(batch_size)
        if delay is not None:
            if not self.supports_delay:
                raise ValueError(
                    f"delay: per-synapse delays are not supported by {type(self).__name__}; "
                    "use delay=None (delays are available for LinearDense, LinearDirect, LinearLateral)"
                )
            delay = check_non_negative(delay, "delay")
        max_delay = 0.0 if delay is None else delay
        if not isinstance(delay_init, Tensor):
            check_choice(delay_init, "learn_delay_init", DELAY_INITS)
        self.in_shape = in_shape
        self.out_shape = out_shape
        self.groups = groups
        self.dt = dt
        self.max_delay = max_delay
        self.synapse = self._build_synapse(
            synapse, synapse_kwargs, max_delay, delay is not None, dt, batch_size, step_mode, device, dtype
        )
        dtype = self.synapse.state.dtype
        device = self.synapse.state.device

        if weight_layout == "input_major":
            # the parameter is the transpose of an [N_in, N_out] tensor: the same [N_out, N_in] weight
            # to every torch operation, read input by input by the event-driven forward
            storage = torch.empty(weight_shape[::-1], dtype=dtype, device=device)
            self.weight = nn.Parameter(storage.T)
        else:
            self.weight = nn.Parameter(torch.empty(weight_shape, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.empty(out_shape[:1], dtype=dtype, device=device)) if bias else None
        self._fan_in = fan_in
        # None unless lateral; a buffer slot so that a mask moves with .to() and is saved
        self.register_buffer("weight_mask", None)
        self._init_weight(weight_init)

        if delay is None:
            self.delay = None
        else:
            values = torch.zeros(weight_shape, dtype=dtype, device=device)
            if isinstance(delay_init, Tensor):
                check_tensor(delay_init, "learn_delay_init", shape=weight_shape, floating=True, finite=True)
                values.copy_(delay_init)
            elif delay_init == "uniform":
                values.uniform_(0.0, max_delay)
            self.delay = nn.Parameter(values.clamp_(0.0, max_delay), requires_grad=bool(learn_delay))
        self.learn_delay = delay is not None and bool(learn_delay)

        step_shape = (batch_size, *self.synapse_shape)
        self.register_buffer("synspike", torch.zeros(step_shape, dtype=torch.bool, device=device), persistent=False)
        self.register_buffer("syncurrent", torch.zeros(step_shape, dtype=dtype, device=device), persistent=False)

    # ------------------------------------------------------------------ construction

    def _build_synapse(
        self,
        synapse: str | Synapse | None,
        synapse_kwargs: Mapping[str, object] | None,
        max_delay: float,
        delayed: bool,
        dt: float,
        batch_size: int,
        step_mode: str,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> Synapse:
        if synapse is None:
            synapse = "delta"
        if isinstance(synapse, Synapse):
            if synapse_kwargs:
                raise ValueError("synapse_kwargs: only used when synapse is given by name")
            if tuple(synapse.shape) != self.in_shape:
                raise ValueError(f"synapse: expected shape {self.in_shape} (in_shape), got {synapse.shape}")
            if not math.isclose(synapse.dt, dt, rel_tol=1e-12):
                raise ValueError(f"synapse: dt {synapse.dt} differs from the connection's dt {dt}")
            if delayed and synapse.max_delay < max_delay:
                raise ValueError(
                    f"synapse: max_delay {synapse.max_delay} is shorter than the connection's delay bound {max_delay}"
                )
            synapse.step_mode = step_mode
            if synapse.batch_size != batch_size:
                synapse.batch_size = batch_size
            return synapse
        if not isinstance(synapse, str):
            raise TypeError(f"synapse: expected a name or a Synapse module, got {type(synapse).__name__}")
        kwargs = dict(synapse_kwargs or {})
        owned = [key for key in kwargs if key in _OWNED_SYNAPSE_KWARGS]
        if owned:
            raise ValueError(f"synapse_kwargs: {owned} are set by the connection")
        accepted = set(inspect.signature(SYNAPSE_KINDS.get(synapse, Synapse).__init__).parameters)
        unknown = sorted(key for key in kwargs if key not in accepted)
        if synapse in SYNAPSE_KINDS and unknown:
            raise TypeError(
                f"synapse_kwargs: unknown argument(s) {unknown} for a {synapse!r} synapse; "
                f"expected some of {sorted(accepted - {'self', 'shape', *_OWNED_SYNAPSE_KWARGS})}"
            )
        return make_synapse(
            synapse,
            self.in_shape,
            dt=dt,
            max_delay=max_delay,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
            **kwargs,
        )

    def _init_weight(self, weight_init: WeightInit) -> None:
        bound = 1.0 / math.sqrt(self._fan_in)
        # drawn into a contiguous tensor of the weight's shape (in-place fills follow the memory
        # order), so that a seed gives the same weight in either layout
        weight: Tensor = self.weight
        if not weight.is_contiguous():
            weight = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)
        with torch.no_grad():
            if weight_init is None:
                # torch's default for Linear/ConvNd: kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(fan_in), +)
                weight.uniform_(-bound, bound)
            elif callable(weight_init):
                weight_init(weight)
            elif isinstance(weight_init, tuple) and len(weight_init) == 2:
                low, high = (float(v) for v in weight_init)
                if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                    raise ValueError(f"weight_init: expected a finite range (low <= high), got {weight_init!r}")
                weight.uniform_(low, high)
            else:
                raise TypeError(f"weight_init: expected None, a callable or a (low, high) range, got {weight_init!r}")
            if weight is not self.weight:
                self.weight.copy_(weight)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    # ------------------------------------------------------------------ configuration

    @property
    def step_mode(self) -> str:
        """``"single"`` or ``"window"`` (held by the synapse)."""
        # read by the monitors at every step: the submodule without nn.Module.__getattr__ (annotated rather
        # than cast: typing.cast is a Python call)
        synapse: Synapse = self._modules["synapse"]  # type: ignore[assignment]  # registered in __init__
        return synapse.step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self.synapse.step_mode = value

    @property
    def batch_size(self) -> int:
        """Samples per step; setting it resets the synapse's state."""
        return self.synapse.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.synapse.batch_size = value
        self._clear_outputs()

    @property
    def synapse_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of ``synspike``/``syncurrent``: ``in_shape``, or the weight's with delays."""
        return tuple(self.weight.shape) if self.delay is not None else self.in_shape

    def reset(self) -> None:
        """Reset the synapse (histories, state) and the outputs."""
        self.synapse.reset()
        self._clear_outputs()

    def _clear_outputs(self) -> None:
        self.__dict__["_syncurrent_deferred"] = False
        shape = (self.synapse.batch_size, *self.synapse_shape)
        rebind_buffer(self, "synspike", torch.zeros(shape, dtype=torch.bool, device=self.weight.device))
        rebind_buffer(self, "syncurrent", torch.zeros(shape, dtype=self.weight.dtype, device=self.weight.device))

    def effective_weight(self) -> Tensor:
        """The weight the forward uses (masked for lateral connections)."""
        weight, mask = self.weight, self._buffers.get("weight_mask")
        return weight if mask is None else weight * mask

    def clamped_delay(self) -> Tensor:
        """The delays as read: ``delay`` clamped into ``[0, max_delay]``, detached."""
        if self.delay is None:
            raise ValueError("delay: this connection has no delays (built with delay=None)")
        return self.delay.detach().clamp(0.0, self.max_delay)

    # ------------------------------------------------------------------ forward

    def forward(self, spikes: Tensor) -> Tensor:
        """Presynaptic spikes ``[(T,) B, *in_shape]`` -> postsynaptic input ``[(T,) B, *out_shape]``."""
        synapse = cast(Synapse, self._modules["synapse"])  # without nn.Module.__getattr__ (every step)
        if self.delay is None:  # None is a plain attribute (no nn.Module.__getattr__)
            # the synapse's forward without nn.Module's call dispatch, unless hooks must see the call
            if has_call_hooks(synapse):
                currents = synapse(spikes)
            else:
                out = self._pass_through_step(synapse, spikes)
                if out is not None:
                    return out
                currents = synapse.forward(spikes)
            out = self._propagate_spikes(spikes, currents)
            rebind_buffer(self, "synspike", synapse.spike)
        else:
            # clamped_delay() is finite and within [0, max_delay] <= synapse.max_delay
            arrived, currents = synapse.forward_delayed(spikes, self.clamped_delay(), check_delay=False)
            out = self._propagate_delayed(currents)
            rebind_buffer(self, "synspike", arrived)
        rebind_buffer(self, "syncurrent", currents)
        self.__dict__["_syncurrent_deferred"] = False
        return out

    def _pass_through_step(self, synapse: Synapse, spikes: Tensor) -> Tensor | None:
        """A single step computed from the spikes alone, the synapse's currents deferred
        (:meth:`Synapse.pass_through`); ``None``: not taken, nothing changed (call the synapse).

        The dense connections take it with a delta synapse (:mod:`plastic.neural.connections`).
        """
        return None

    def _defer_syncurrent(self) -> None:
        """``syncurrent`` is the synapse's deferred current: read from it when first asked for."""
        self.__dict__["_syncurrent_deferred"] = True

    def __getattr__(self, name: str) -> Any:
        if name == "syncurrent" and self.__dict__.get("_syncurrent_deferred"):
            # the synapse writes its deferred step now (Synapse.__getattr__)
            self.__dict__["_syncurrent_deferred"] = False
            rebind_buffer(self, "syncurrent", cast(Synapse, self._modules["synapse"]).current)
        return super().__getattr__(name)

    def _propagate(self, currents: Tensor) -> Tensor:
        raise NotImplementedError

    def _propagate_spikes(self, spikes: Tensor, currents: Tensor) -> Tensor:
        """The output for the input ``spikes`` whose synaptic currents are ``currents``.

        The dense connections override it with the event-driven product where
        it is faster; everywhere else it is :meth:`_propagate` of the currents.
        """
        return self._propagate(currents)

    def _propagate_delayed(self, currents: Tensor) -> Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ receptive views

    def pre_view(self, pre: Tensor, *, per_synapse: bool | None = None, fill: float = 0.0) -> Tensor:
        """``[N, *in_shape]`` -> ``[N, G, K, P]``; per-synapse ``[N, *weight.shape]`` -> ``[N, G, O, K, P]``.

        ``per_synapse`` defaults to detecting the layout from the shape;
        ``fill`` is the value of zero padding (conv; NaN for event times).
        """
        raise NotImplementedError

    def post_view(self, post: Tensor) -> Tensor:
        """``[N, *out_shape]`` -> ``[N, G, O, P]``."""
        raise NotImplementedError

    def weight_grouped(self) -> Tensor:
        """The weight as ``[G, O, K]`` (a view: it shares storage and gradient)."""
        raise NotImplementedError

    def ungroup(self, grouped: Tensor) -> Tensor:
        """``[G, O, K]`` -> the weight's shape (inverse of :meth:`weight_grouped`)."""
        raise NotImplementedError

    def _is_per_synapse(self, pre: Tensor, per_synapse: bool | None) -> bool:
        check_tensor(pre, "pre", min_ndim=1)
        step = tuple(pre.shape[1:])
        if per_synapse is None:
            per_synapse = step == tuple(self.weight.shape) and step != self.in_shape
        expected = tuple(self.weight.shape) if per_synapse else self.in_shape
        if step != expected:
            layout = "*weight.shape" if per_synapse else "*in_shape"
            raise ValueError(
                f"pre: expected shape [N, {layout}] = [N, {', '.join(map(str, expected))}], got {tuple(pre.shape)}"
            )
        return per_synapse

    def _check_post(self, post: Tensor) -> Tensor:
        check_tensor(post, "post", min_ndim=1)
        if tuple(post.shape[1:]) != self.out_shape:
            raise ValueError(
                f"post: expected shape [N, {', '.join(map(str, self.out_shape))}], got {tuple(post.shape)}"
            )
        return post

    def extra_repr(self) -> str:
        text = f"in_shape={self.in_shape}, out_shape={self.out_shape}, bias={self.bias is not None}, dt={self.dt}"
        if self.delay is not None:
            text += f", max_delay={self.max_delay}, learn_delay={self.learn_delay}"
        return text
