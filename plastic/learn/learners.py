"""Learners for plain torch layers: STDP, MSTDP and MSTDP-ET without cells.

For a user whose network is ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``
followed by any spiking module (our neurons, or any module returning {0, 1}
spikes), a learner hooks both: the layer's forward hook records its input
spikes (presynaptic), the spiking module's forward hook its output spikes
(postsynaptic). Records are detached, stored as bool, and bounded (at most
``window`` steps are held). :meth:`~STDPLearner.step` turns the steps recorded
since the previous call into the rule's weight change ``dw`` and, with
``on_grad=True``, adds ``-scale * dw`` to ``layer.weight.grad`` so that any
torch optimizer applies it (``SGD(lr=1)`` adds exactly ``scale * dw``); it
always returns ``scale * dw``.

Rules (traces carried between calls, so calling ``step`` after every time
step or once after many gives the same ``dw``):

* :class:`STDPLearner`: pair STDP in trace form
  (:func:`plastic.functional.stdp.stdp_window`)::

      dw = eta_post * f_post(w) * sum s_post (x) x_pre - eta_pre * f_pre(w) * sum x_post (x) s_pre

* :class:`MSTDPLearner`, :class:`MSTDPETLearner`: reward-modulated STDP
  (Florian 2007, :mod:`plastic.functional.reward`); ``step(reward)`` with the
  reward of the steps since the last call (scalar, ``[B]``, ``[T]``, ``[T, B]``).

Time layout (``step_mode``): ``"single"``, every forward is one step
``[B, *shape]``; ``"window"``, every forward is a window ``[T, B, *shape]``.
In window mode one of the two sides may be flattened to ``[T*B, *shape]``
(a convolution applied to the flattened window): it is unflattened with the
other side's ``[T, B]``.

Memory: with :class:`STDPLearner` the recorded spikes are folded into a
pending ``dw`` (weight-sized) whenever ``window`` steps are held, so a long
run between two ``step`` calls needs no more than ``window`` steps of spikes.
The reward learners cannot fold before the reward is known: holding more than
``window`` steps raises ``RuntimeError`` (call ``step`` more often or raise
``window``).

References: Bi & Poo (1998); Morrison, Diesmann & Gerstner (2008), Biol.
Cybern. 98:459 (trace STDP); R. V. Florian (2007), Neural Computation
19(6):1468-1502 (MSTDP, MSTDP-ET).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

import attrs
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from plastic.functional.attrs_validators import finite, non_negative, one_of, positive
from plastic.functional.receptive import layer_geometry, weight_to_grouped
from plastic.functional.reward import (
    MSTDPETState,
    MSTDPState,
    RewardSTDPParameters,
    mstdp_et_window,
    mstdp_window,
)
from plastic.functional.stdp import stdp_delta_weight, stdp_window
from plastic.functional.validation import check_positive, check_spikes, check_tensor
from plastic.learn.base import adopt_buffers, carried_buffer
from plastic.learn.bilinear import functional_reduction
from plastic.learn.window import WindowRuleParams
from plastic.neural.step_mode import STEP_MODES

__all__ = [
    "LearnerParams",
    "MSTDPETLearner",
    "MSTDPLearner",
    "RewardLearnerParams",
    "STDPLearner",
    "layer_geometry",
]


@attrs.frozen
class _LearnerCommonParams(WindowRuleParams):
    """The fields every learner shares: those of the window trainers
    (:class:`~plastic.learn.window.WindowRuleParams`: pairing, exact, weight
    dependences, batch_reduction, window) and the learner's own clock (keyword-only).

    dt: step length (> 0). step_mode: ``"single"`` or ``"window"``.
    """

    dt: float = attrs.field(default=1.0, validator=positive, kw_only=True)
    step_mode: str = attrs.field(default="single", validator=one_of(*STEP_MODES), kw_only=True)


@attrs.frozen
class LearnerParams(_LearnerCommonParams):
    """Hyperparameters of :class:`STDPLearner` (times in the unit of ``dt``, ms).

    tau_pre, tau_post: trace time constants.
    eta_pre, eta_post: depression and potentiation rates (weight units per trace unit); Hebbian: both > 0.
    pairing: ``"all"`` (cumulative traces) or ``"nearest"``.
    exact: decay ``exp(-dt/tau)`` (True) or Euler ``1 - dt/tau``.
    dt: step length (> 0).
    weight_dependence_post, weight_dependence_pre: ``f_post(w)``, ``f_pre(w)`` (None: 1).
    batch_reduction: ``"sum"`` (default), ``"mean"`` or a callable reducing dim 0.
    step_mode: ``"single"`` or ``"window"``.
    window: most steps of spikes held (see the module docstring).
    """

    tau_pre: float = attrs.field(default=20.0, validator=positive)
    tau_post: float = attrs.field(default=20.0, validator=positive)
    eta_pre: float = attrs.field(default=1.0, validator=finite)
    eta_post: float = attrs.field(default=1.0, validator=finite)


@attrs.frozen
class RewardLearnerParams(_LearnerCommonParams):
    """Hyperparameters of :class:`MSTDPLearner` and :class:`MSTDPETLearner`.

    tau_pre, tau_post: trace time constants (Florian's ``tau+``, ``tau-``).
    eta_post, eta_pre: trace jumps, i.e. the potentiation and depression
        amplitudes of the eligibility (Florian's ``A+`` and ``-A-``), >= 0.
    learning_rate: ``eta`` (Florian's ``gamma``), >= 0.
    tau_eligibility: ``tau_e`` of MSTDP-ET (ignored by MSTDP).
    pairing: ``"all"`` or ``"nearest"``; exact, dt, weight dependences,
    batch_reduction, step_mode, window: as :class:`LearnerParams`.
    """

    tau_pre: float = attrs.field(default=20.0, validator=positive)
    tau_post: float = attrs.field(default=20.0, validator=positive)
    eta_pre: float = attrs.field(default=1.0, validator=non_negative)
    eta_post: float = attrs.field(default=1.0, validator=non_negative)
    learning_rate: float = attrs.field(default=1.0, validator=non_negative)
    tau_eligibility: float = attrs.field(default=25.0, validator=positive)

    def rule(self) -> RewardSTDPParameters:
        return RewardSTDPParameters(
            tau_plus=self.tau_pre, tau_minus=self.tau_post, a_plus=self.eta_post, a_minus=self.eta_pre,
            learning_rate=self.learning_rate, tau_eligibility=self.tau_eligibility,
            pairing=self.pairing, exact_decay=self.exact,
        )  # fmt: skip


class _Learner(nn.Module):
    """Hooks, bounded records, carried state and the gradient write shared by the learners."""

    Params: ClassVar[type]
    # set with object.__setattr__ (references, not submodules); layer_geometry refuses other layers
    layer: nn.Linear | nn.Conv1d | nn.Conv2d
    spiking_module: nn.Module

    def __init__(self, layer: nn.Module, spiking_module: nn.Module, **params: Any) -> None:
        """``layer`` and ``spiking_module`` are hooked; ``params`` are the fields of :attr:`Params`
        (:class:`LearnerParams` or :class:`RewardLearnerParams`, whose defaults apply)."""
        super().__init__()
        geometry = layer_geometry(layer)
        if not isinstance(spiking_module, nn.Module):
            raise TypeError(f"spiking_module: expected an nn.Module, got {type(spiking_module).__name__}")
        self.params = self.Params(**params)
        # references, not submodules: the learner's state_dict holds only its own state
        object.__setattr__(self, "layer", layer)
        object.__setattr__(self, "spiking_module", spiking_module)
        self.geometry = geometry
        self.feature_ndim = 1 if geometry is None else geometry.dims + 1
        self._records: dict[str, list[Tensor]] = {"pre": [], "post": []}
        self._handles: list[RemovableHandle] = []
        self.enable()

    # ------------------------------------------------------------ hooks
    @property
    def enabled(self) -> bool:
        """Whether the hooks are attached (spikes are being recorded)."""
        return bool(self._handles)

    def enable(self) -> None:
        """Attach the forward hooks (recording starts); no-op when already enabled."""
        if self._handles:
            return
        self._handles = [
            self.layer.register_forward_hook(lambda module, args, output: self._record("pre", args[0])),
            self.spiking_module.register_forward_hook(lambda module, args, output: self._record("post", output)),
        ]

    def disable(self) -> None:
        """Remove the hooks; what was recorded and the carried state are kept."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _record(self, side: str, value: object) -> None:
        if isinstance(value, (tuple, list)):
            value = value[0]
        name = "spikes_pre" if side == "pre" else "spikes_post"
        spikes = check_spikes(value, name).detach()
        leading = spikes.ndim - self.feature_ndim
        allowed = (1,) if self.params.step_mode == "single" else (1, 2)
        if leading not in allowed:
            layout = "[B, *shape]" if self.params.step_mode == "single" else "[T, B, *shape] or [T*B, *shape]"
            raise ValueError(f"{name}: expected {layout} in {self.params.step_mode} mode, got {tuple(spikes.shape)}")
        # a bool input is stored as is: copy it, so later in-place edits by the caller do not leak in
        given_bool = isinstance(value, Tensor) and value.dtype == torch.bool  # check_spikes passed: a tensor
        self._records[side].append(spikes.clone() if given_bool else spikes)
        self._on_record()

    def _on_record(self) -> None:
        if self.recorded_steps > self.params.window:
            raise RuntimeError(
                f"{type(self).__name__}: more than window={self.params.window} steps recorded since the last "
                "step(); call step() more often or raise window"
            )

    @property
    def recorded_steps(self) -> int:
        """Steps held by the records (complete pre/post pairs, plus a pending side)."""
        pairs = min(len(self._records["pre"]), len(self._records["post"]))
        steps = sum(self._steps_of(self._records["pre"][i], self._records["post"][i]) for i in range(pairs))
        unmatched = self._records["pre"][pairs:] + self._records["post"][pairs:]
        return steps + sum(self._own_steps(value) for value in unmatched)

    def _own_steps(self, value: Tensor) -> int:
        window = self.params.step_mode == "window" and value.ndim == self.feature_ndim + 2
        return int(value.shape[0]) if window else 1

    def _steps_of(self, pre: Tensor, post: Tensor) -> int:
        if self.params.step_mode == "single":
            return 1
        for value in (pre, post):
            if value.ndim == self.feature_ndim + 2:
                return int(value.shape[0])
        raise ValueError("spikes_pre: in window mode one side must be [T, B, *shape]; both were flattened")

    def _windows(self, count: int | None = None) -> tuple[Tensor, Tensor]:
        """Pop the first ``count`` (default: all) complete records as ``[T, B, ...]`` windows."""
        pre_list, post_list = self._records["pre"], self._records["post"]
        if count is None:
            if len(pre_list) != len(post_list):
                raise RuntimeError(
                    f"{type(self).__name__}: {len(pre_list)} layer calls but {len(post_list)} spiking-module "
                    "calls recorded; each layer call must be followed by one call of the spiking module"
                )
            count = len(pre_list)
        pres, posts = [], []
        for pre, post in zip(pre_list[:count], post_list[:count], strict=True):
            if self.params.step_mode == "single":
                pre, post = pre.unsqueeze(0), post.unsqueeze(0)
            else:
                steps = self._steps_of(pre, post)
                lead = post.shape[:2] if post.ndim == self.feature_ndim + 2 else pre.shape[:2]
                if pre.ndim == self.feature_ndim + 1:
                    pre = pre.reshape(steps, lead[1], *pre.shape[1:])
                if post.ndim == self.feature_ndim + 1:
                    post = post.reshape(steps, lead[1], *post.shape[1:])
            pres.append(pre)
            posts.append(post)
        if not pres:
            return torch.empty(0), torch.empty(0)
        try:
            return torch.cat(pres), torch.cat(posts)
        except RuntimeError as error:
            message = f"spikes_pre: recorded steps of different shapes cannot form one window ({error})"
            raise ValueError(message) from error

    def _drop(self, count: int | None = None) -> None:
        for side in ("pre", "post"):
            del self._records[side][: len(self._records[side]) if count is None else count]

    # ------------------------------------------------------------ carried state
    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        adopt_buffers(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def reset(self) -> None:
        """Drop the records, the carried traces/eligibility and any pending change."""
        self._drop()
        for name in list(self._buffers):
            del self._buffers[name]

    # ------------------------------------------------------------ output
    def _deliver(self, dw: Tensor, on_grad: bool, scale: float) -> Tensor:
        scale = check_positive(scale, "scale")
        weight = self.layer.weight
        dw = (dw * scale).to(weight.dtype)
        if on_grad:
            if weight.grad is None:
                weight.grad = (-dw).clone()
            else:
                weight.grad.add_(-dw)
        return dw

    def extra_repr(self) -> str:
        return f"layer={type(self.layer).__name__}, {self.params}, enabled={self.enabled}"


class STDPLearner(_Learner):
    """Pair STDP on a plain layer (module docstring).

    Args:
        layer: ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d`` (its input is presynaptic).
        spiking_module: the module after it whose output spikes are postsynaptic.
        **params: the rule's parameters, see :class:`LearnerParams` (``tau_pre``, ``tau_post``,
            ``eta_pre``, ``eta_post``, ``pairing``, ``exact``, ``dt``, ``weight_dependence_post``,
            ``weight_dependence_pre``, ``batch_reduction``, ``step_mode``, ``window``).

    Example::

        learner = STDPLearner(fc, lif, tau_pre=2.0, tau_post=2.0, eta_pre=1e-2, eta_post=1e-2)
        optimizer = torch.optim.SGD(fc.parameters(), lr=1.0)
        with torch.no_grad():  # the learner writes weight.grad itself: no autograd graph
            for x in inputs:
                lif(fc(x))
                optimizer.zero_grad(); learner.step(); optimizer.step()
    """

    Params = LearnerParams

    def _on_record(self) -> None:
        # fold complete records into the pending change once `window` steps are held
        if self.recorded_steps >= self.params.window:
            self._fold(min(len(self._records["pre"]), len(self._records["post"])))

    def _fold(self, count: int | None = None) -> None:
        spikes_pre, spikes_post = self._windows(count)
        if spikes_pre.numel() == 0 and spikes_pre.ndim == 1:
            return
        p = self.params
        weight = self.layer.weight.detach()
        batch = spikes_pre.shape[1]
        trace_pre = carried_buffer(self, "trace_pre", (batch, *spikes_pre.shape[2:]), weight)
        trace_post = carried_buffer(self, "trace_post", (batch, *spikes_post.shape[2:]), weight)
        result = stdp_window(
            spikes_pre, spikes_post, trace_pre, trace_post,
            tau_pre=p.tau_pre, tau_post=p.tau_post, dt=p.dt, exact=p.exact, pairing=p.pairing,
            view=self.geometry, batch_reduction=functional_reduction(p.batch_reduction),
        )  # fmt: skip
        dw = stdp_delta_weight(
            result.potentiation, result.depression, weight, eta_post=p.eta_post, eta_pre=p.eta_pre,
            f_post=p.weight_dependence_post, f_pre=p.weight_dependence_pre,
        )  # fmt: skip
        pending = carried_buffer(self, "pending", tuple(weight.shape), weight)
        pending.add_(dw)
        trace_pre.copy_(result.trace_pre)
        trace_post.copy_(result.trace_post)
        self._drop(count)

    def step(self, *, on_grad: bool = True, scale: float = 1.0) -> Tensor:
        """The change ``scale * dw`` of the steps since the last call; with ``on_grad``
        also ``layer.weight.grad -= scale * dw`` (accumulating)."""
        check_positive(scale, "scale")
        self._fold()  # raises before any change when the records do not pair up
        weight = self.layer.weight.detach()
        dw = carried_buffer(self, "pending", tuple(weight.shape), weight).clone()
        # registered by carried_buffer just above: a tensor
        cast(Tensor, self._buffers["pending"]).zero_()
        return self._deliver(dw, on_grad, scale)


class _RewardLearner(_Learner):
    Params = RewardLearnerParams
    carried_name: ClassVar[str]
    window_function: ClassVar[Callable[..., Any]]
    state_type: ClassVar[type]

    def step(self, reward: float | Tensor, *, on_grad: bool = True, scale: float = 1.0) -> Tensor:
        """The change ``scale * dw`` of the steps since the last call under ``reward``
        (scalar, ``[B]``, ``[T]`` or ``[T, B]``); with ``on_grad`` also
        ``layer.weight.grad -= scale * dw``. Everything is checked before any state changes."""
        check_positive(scale, "scale")
        weight = self.layer.weight.detach()
        spikes_pre, spikes_post = self._windows()
        if spikes_pre.ndim == 1:  # nothing recorded: nothing to modulate
            if isinstance(reward, Tensor):
                check_tensor(reward, "reward", finite=True)
            return self._deliver(torch.zeros_like(weight), on_grad, scale)
        p = self.params
        batch = spikes_pre.shape[1]
        grouped = (batch, *weight_to_grouped(weight, 1 if self.geometry is None else self.geometry.groups).shape)
        state = self.state_type(
            carried_buffer(self, "trace_pre", (batch, *spikes_pre.shape[2:]), weight),
            carried_buffer(self, "trace_post", (batch, *spikes_post.shape[2:]), weight),
            carried_buffer(self, self.carried_name, grouped, weight),
        )
        result = type(self).window_function(
            spikes_pre, spikes_post, reward, state, p.rule(), dt=p.dt, view=self.geometry, weight=weight,
            f_post=p.weight_dependence_post, f_pre=p.weight_dependence_pre,
            batch_reduction=functional_reduction(p.batch_reduction),
        )  # fmt: skip
        for name, value in zip(("trace_pre", "trace_post", self.carried_name), result.state, strict=True):
            cast(Tensor, self._buffers[name]).copy_(value)  # registered by carried_buffer above: a tensor
        self._drop()
        return self._deliver(result.update, on_grad, scale)


class MSTDPLearner(_RewardLearner):
    """MSTDP (Florian 2007) on a plain layer: ``dw_t = eta * sum_b r_{b,t} z_{b,t-1}``.

    Arguments as :class:`STDPLearner` plus ``learning_rate``; ``eta_post`` and
    ``eta_pre`` are the eligibility's potentiation and depression amplitudes
    (:class:`RewardLearnerParams`). ``step(reward)``.
    """

    carried_name = "eligibility"
    window_function = staticmethod(mstdp_window)
    state_type = MSTDPState


class MSTDPETLearner(_RewardLearner):
    """MSTDP-ET (Florian 2007) on a plain layer: ``e_t = c e_{t-1} + z_{t-1}/tau_e``,
    ``dw_t = eta * sum_b r_{b,t} e_{b,t}``; ``tau_eligibility`` keyword (ms)."""

    carried_name = "eligibility_trace"
    window_function = staticmethod(mstdp_et_window)
    state_type = MSTDPETState
