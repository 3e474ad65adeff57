"""Window form == step loop for every plasticity rule: bit for bit where the arithmetic is exact,
to rounding elsewhere.

A rule's window form contracts the T steps (and B samples, P receptive positions) of a window in
one product, where the step loop adds each step's change in turn; the two differ only in the order
of the floating-point additions. With bool spikes in float64 and parameters under which every
intermediate value is a short dyadic number (decays 0.5, 0.25 or 0.75, amplitudes, rates and
rewards powers of two or small multiples of them, weights on a coarse grid, a few steps) no
operation rounds, so every order gives the same bits: calling the trainer once per window, after
every step (the cell in single-step mode) or after chunks of steps must leave exactly the same
change in the updater and the same carried state (``torch.equal``), and a functional window form
chained over chunks exactly its one-window sums. Each such parameter is checked (``assert``, not
``assume``) to be short before a run.

With general parameters the same runs agree to 1e-12 relative in float64 and 1e-6 in float32
(relative to the largest potentiation or depression magnitude), and the carried recurrences
(traces, filters, rates, thresholds, pairing counters) stay bit for bit the same; the carried
quantities a window form computes in closed form (the one-product form's traces, the
presynaptic-centred pending trace, the eligibility traces of MSTDP-ET and R-max) agree to the
same tolerance.

Rules: pair STDP (all-to-all fused and two-term, nearest, presynaptic-centred, restricted; weight
dependence), power-law weight dependence (NEST's stdp_pl_synapse_hom, in the updater and in the
trainer), inhibitory STDP (Vogels 2011), Oja, BCM, voltage-based STDP (Clopath 2010), triplet STDP,
MSTDP, MSTDP-ET, R-max, Diehl & Cook's online STDP, all-pairs kernel STDP (with kept steps), integer
STDP without stochastic rounding; dense and convolutional cells; the Tsodyks-Markram synapse through
a connection (bit for bit with any parameters).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from helpers import (
    F64,
    ScriptedProbabilityNeuron,
    ScriptedVoltageNeuron,
    chunk_bounds,
    conv_specs,
    cut_points,
    default_dtype,
    drive,
    feed_values,
    make_cell,
    make_voltage_cell,
    run,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from plastic.functional.bounding import Bounding
from plastic.functional.clopath import clopath_step, clopath_window
from plastic.functional.homeostasis import rate_ema_alpha
from plastic.functional.inhibitory import inhibitory_depression_constant, inhibitory_stdp_window
from plastic.functional.rate_rules import bcm_window, oja_window
from plastic.functional.reward import mstdp_et_step, mstdp_et_window, mstdp_step, mstdp_window
from plastic.functional.rmax import rmax_step, rmax_window
from plastic.functional.stdp import stdp_step, stdp_window, stdp_window_net
from plastic.functional.traces import decay_factor
from plastic.functional.triplet import triplet_stdp_step, triplet_stdp_window
from plastic.learn.all_pairs import AllPairsKernelSTDP
from plastic.learn.clopath import ClopathSTDP
from plastic.learn.inhibitory import InhibitorySTDP
from plastic.learn.integer import IntegerSTDP
from plastic.learn.online import OnlineSTDP
from plastic.learn.rate_rules import BCM, Oja
from plastic.learn.reward import MSTDP, MSTDPET
from plastic.learn.rmax import Rmax
from plastic.learn.stdp import STDP
from plastic.learn.triplet import TripletSTDP
from plastic.neural.connections import Conv1d, LinearDense

DTS = (0.5, 1.0, 2.0)
#: dyadic weights (eighths in [-1, 1]) and squares of dyadic numbers (the power law's w^0.5)
WEIGHT_GRID = tuple(k / 8 for k in range(-8, 9))
SQUARES = (0.0, 1 / 16, 1 / 4, 9 / 16, 1.0, 9 / 4, 4.0)


# ------------------------------------------------------------------------- exactness preconditions


def is_short(value: float, bits: int = 12) -> bool:
    """Whether ``value`` is a dyadic number of at most ``bits`` significant bits."""
    mantissa = math.frexp(float(value))[0] * 2**bits
    return mantissa == int(mantissa)


def short(value: float, name: str) -> float:
    """``value``, checked to be short: products of a few such numbers are exact in float64."""
    assert is_short(value), f"precondition: {name} = {value!r} is not a short dyadic number"
    return value


def all_short(values: torch.Tensor, name: str) -> None:
    assert all(is_short(v) for v in values.flatten().tolist()), f"precondition: {name} has long values"


def time_constant(draw, dt, exact, dyadic, decays=(0.5, 0.25, 0.75)):
    """A time constant (unit of ``dt``): one whose per-step decay (``exp(-dt/tau)`` when ``exact``,
    else ``1 - dt/tau``) is one of ``decays`` and checked to be it, or a general one (``>= dt``)."""
    if not dyadic:
        return draw(st.floats(2.0, 30.0))
    decay = draw(st.sampled_from(decays))
    tau = dt / -math.log(decay) if exact else dt / (1.0 - decay)
    assert decay_factor(dt, tau, exact=exact) == decay, "precondition: the decay is exactly the dyadic one"
    return tau


def amplitude(draw, dyadic, *, signed=False, low=0.2, high=2.0):
    """A learning rate or trace amplitude: a power of two (``dyadic``) or a general float."""
    value = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])) if dyadic else draw(st.floats(low, high))
    return -value if signed and draw(st.booleans()) else value


# ------------------------------------------------------------------------- the rules under test


@dataclass
class Setup:
    """One rule with drawn parameters: how to build its trainer and what its cell needs."""

    trainer_class: type
    kwargs: dict[str, Any]
    # what the scripted neuron gives: "spikes" (the cell is fed pre, post), "voltage" (pre, voltage)
    # or "probability" (pre, probability, post); and whether each call takes the chunk's reward
    neuron: str = "spikes"
    reward: bool = False
    updater: dict[str, Any] = field(default_factory=dict)  # cell.make_updater keywords
    weights: tuple[float, ...] = WEIGHT_GRID  # exact runs draw the weights from these
    general_weights: bool = True  # general runs: any float between their extremes (else these too)
    apply: bool = False  # also compare the weights after the updater applied the change
    steps: int = 8  # the longest run drawn
    batches: tuple[int, ...] = (1, 2, 4)  # batch sizes drawn (powers of two: a mean stays exact)
    contracted: tuple[str, ...] = ()  # carried state the window form contracts: equal to rounding
    probabilities: tuple[float, ...] = ()  # R-max: the firing probabilities exact runs draw
    functional: Callable[..., Any] | None = None  # the functional form: (setup, chunk, state, view, dt, weight, step)

    def trainer(self) -> Any:
        return self.trainer_class(**self.kwargs)


def reduction(draw):
    return draw(st.sampled_from(["sum", "mean"]))


def maybe_weight_dependent(draw, kwargs) -> bool:
    """Drawn: linear weight dependences (exact on the weight grid) in ``kwargs``, or none."""
    if not draw(st.booleans()):
        return False
    kwargs["weight_dependence_post"] = lambda w: 1.5 - w
    kwargs["weight_dependence_pre"] = lambda w: w + 2.0
    return True


def stdp_rule(draw, dt, dyadic):
    exact = draw(st.booleans())
    pairing = draw(st.sampled_from(["all", "nearest", "presynaptic_centred", "restricted"]))
    # presynaptic-centred takes one presynaptic decay for every neuron: tau_pre a number (any)
    kwargs = {
        "pairing": pairing,
        "exact": exact,
        "tau_pre": time_constant(draw, dt, exact, dyadic),
        "tau_post": time_constant(draw, dt, exact, dyadic),
        "eta_post": amplitude(draw, dyadic, signed=True),
        "eta_pre": amplitude(draw, dyadic, signed=True),
        "amplitude_pre": amplitude(draw, dyadic),
        "amplitude_post": amplitude(draw, dyadic),
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    if not maybe_weight_dependent(draw, kwargs) and pairing == "all":
        kwargs["fuse"] = draw(st.sampled_from([None, True, False]))
    # closed forms: the one-product form's traces, the presynaptic-centred pending trace
    contracted = {"presynaptic_centred": ("pending_pre",)}.get(pairing, ())
    if pairing == "all" and "weight_dependence_post" not in kwargs and kwargs["fuse"] is not False:
        contracted = ("trace_pre", "trace_post")
    return Setup(STDP, kwargs, contracted=contracted, functional=stdp_functional)


def power_law_rule(draw, dt, dyadic):
    """NEST's stdp_pl_synapse_hom: dw+ = lambda w0^(1-mu) w^mu x_pre, dw- = lambda alpha w x_post,
    the factors in the updater's bounding (applied once, to the accumulated terms) or as the
    trainer's weight dependence (each call)."""
    exact = draw(st.booleans())
    bounding = (
        Bounding("power_law", w_reference=4.0, mu=0.5, alpha=0.5)
        if dyadic
        else Bounding(
            "power_law",
            w_reference=draw(st.floats(0.5, 2.0)),
            mu=draw(st.floats(0.1, 0.9)),
            alpha=draw(st.floats(0.2, 2)),
        )
    )
    if dyadic:
        all_short(bounding.upper_factor(torch.tensor(SQUARES, dtype=F64)), "w0^(1-mu) w^mu")
        all_short(bounding.lower_factor(torch.tensor(SQUARES, dtype=F64)), "alpha w")
    kwargs = {
        "exact": exact,
        "pairing": draw(st.sampled_from(["all", "nearest"])),
        "tau_pre": time_constant(draw, dt, exact, dyadic),
        "tau_post": time_constant(draw, dt, exact, dyadic),
        "eta_post": amplitude(draw, dyadic),
        "eta_pre": amplitude(draw, dyadic),
        "window": 16,
    }
    weights = SQUARES if dyadic else tuple(np.linspace(0.0, 2.0, 9))
    if draw(st.booleans()):
        return Setup(STDP, kwargs, updater={"bounding": bounding}, weights=weights, apply=True)
    kwargs["weight_dependence_post"] = bounding.upper_factor
    kwargs["weight_dependence_pre"] = bounding.lower_factor
    return Setup(STDP, kwargs, weights=weights, apply=True, functional=stdp_functional)


def inhibitory_rule(draw, dt, dyadic):
    exact = draw(st.booleans())
    # with tau = dt / -ln(0.75) no rate gives a short alpha: decays 0.5 and 0.25 only when exact
    tau = time_constant(draw, dt, exact, dyadic, decays=(0.5, 0.25) if exact else (0.5, 0.25, 0.75))
    # alpha = 2 rho_0 tau (rho_0 in Hz, tau in ms): a short alpha from the drawn tau
    if dyadic:
        alpha = draw(st.sampled_from([0.125, 0.25, 0.5]))
        target_rate = 1000.0 * alpha / (2.0 * tau)
        short(inhibitory_depression_constant(target_rate, tau), "alpha")
    else:
        target_rate = draw(st.floats(0.0, 50.0))
    kwargs = {
        "eta": amplitude(draw, dyadic),
        "tau": tau,
        "target_rate": target_rate,
        "exact": exact,
        "weight_sign": draw(st.sampled_from([1, -1])),
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    return Setup(InhibitorySTDP, kwargs, functional=inhibitory_functional)


def ema_time_constant(draw, dt, dyadic):
    """``tau`` of an EMA ``alpha = 1 - exp(-dt/tau)``: alpha 0.5 or 0.75 (checked), or general."""
    if not dyadic:
        return draw(st.floats(1.5, 20.0))
    alpha = draw(st.sampled_from([0.5, 0.75]))
    tau = dt / -math.log(1.0 - alpha)
    assert rate_ema_alpha(dt, tau) == alpha, "precondition: the EMA weight is exactly the dyadic one"
    return tau


def oja_rule(draw, dt, dyadic):
    kwargs = {
        "eta": amplitude(draw, dyadic),
        "tau_rate": ema_time_constant(draw, dt, dyadic),
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    return Setup(Oja, kwargs, steps=6, functional=oja_functional)


def bcm_rule(draw, dt, dyadic):
    kwargs = {
        "eta": amplitude(draw, dyadic),
        "tau_rate": ema_time_constant(draw, dt, dyadic),
        "tau_threshold": ema_time_constant(draw, dt, dyadic),
        "rate_reference": amplitude(draw, dyadic),
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    return Setup(BCM, kwargs, steps=5, functional=bcm_functional)


def clopath_rule(draw, dt, dyadic):
    # exact (exp) decays make x_bar's jump 1/tau_x = -ln(a)/dt a long number: Euler when dyadic
    exact = False if dyadic else draw(st.booleans())
    homeostasis = draw(st.booleans())
    kwargs = {
        "exact": exact,
        "tau_minus": time_constant(draw, dt, exact, dyadic, decays=(0.5, 0.75)),
        "tau_plus": time_constant(draw, dt, exact, dyadic, decays=(0.5, 0.75)),
        "tau_x": time_constant(draw, dt, exact, dyadic, decays=(0.5, 0.75)),
        "filter_delay": dt * draw(st.integers(0, 2)),
        "homeostasis": homeostasis,
        "tau_homeostasis": time_constant(draw, dt, exact, dyadic, decays=(0.5,)),
        "u_ref_squared": 64.0 if dyadic else 60.0,
        "a_ltd": amplitude(draw, dyadic) / 8,
        "a_ltp": amplitude(draw, dyadic) / 64,
        "theta_minus": -70.5 if dyadic else draw(st.floats(-72.0, -65.0)),
        "theta_plus": -50.0 if dyadic else draw(st.floats(-55.0, -40.0)),
        "v_rest": -70.5 if dyadic else -70.6,
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    if dyadic:
        short(1.0 / kwargs["tau_x"], "1/tau_x")
        short(kwargs["a_ltp"] * dt, "A_LTP dt")
        short(kwargs["a_ltd"] / kwargs["u_ref_squared"], "A_LTD / u_ref^2")
    return Setup(ClopathSTDP, kwargs, neuron="voltage", steps=6, functional=clopath_functional)


def triplet_rule(draw, dt, dyadic):
    exact = draw(st.booleans())
    kwargs = {
        "exact": exact,
        "pairing": draw(st.sampled_from(["all", "nearest"])),
        **{name: time_constant(draw, dt, exact, dyadic) for name in ("tau_plus", "tau_minus", "tau_x", "tau_y")},
        **{name: amplitude(draw, dyadic) for name in ("a2_plus", "a3_plus", "a2_minus", "a3_minus")},
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    maybe_weight_dependent(draw, kwargs)
    return Setup(TripletSTDP, kwargs, steps=7, functional=triplet_functional)


def reward_rule(draw, dt, dyadic, trace):
    # MSTDP-ET divides by tau_e: a short 1/tau_e needs the Euler decays when dyadic
    exact = draw(st.booleans()) and not (trace and dyadic)
    kwargs = {
        "exact": exact,
        "pairing": draw(st.sampled_from(["all", "nearest"])),
        "tau_plus": time_constant(draw, dt, exact, dyadic),
        "tau_minus": time_constant(draw, dt, exact, dyadic),
        "a_plus": amplitude(draw, dyadic),
        "a_minus": amplitude(draw, dyadic),
        "learning_rate": amplitude(draw, dyadic),
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    if trace:
        kwargs["tau_eligibility"] = time_constant(draw, dt, exact, dyadic, decays=(0.5, 0.75))
        if dyadic:
            short(1.0 / kwargs["tau_eligibility"], "1/tau_e")
    maybe_weight_dependent(draw, kwargs)
    return Setup(
        MSTDPET if trace else MSTDP, kwargs, reward=True, steps=7,
        contracted=("eligibility_trace",) if trace else (),
        functional=mstdp_et_functional if trace else mstdp_functional,
    )  # fmt: skip


def online_rule(draw, dt, dyadic):
    exact = draw(st.booleans())
    kwargs = {
        "exact": exact,
        "trace": draw(st.sampled_from(["nearest", "cumulative"])),
        "tau_pre": time_constant(draw, dt, exact, dyadic),
        "tau_post": time_constant(draw, dt, exact, dyadic),
        "a_post": amplitude(draw, dyadic),
        "a_pre": amplitude(draw, dyadic),
        "w_norm": 2.0,
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    updater = {"params": ("weight",), **OnlineSTDP.updater_kwargs(w_norm=2.0)}
    # cumulative traces take the one-product form: its traces in closed form
    contracted = ("trace_pre", "trace_post") if kwargs["trace"] == "cumulative" else ()
    return Setup(OnlineSTDP, kwargs, updater=updater, contracted=contracted)


def rmax_rule(draw, dt, dyadic):
    exact = draw(st.booleans())
    if dyadic:
        # q = p / (1 + (tau_c/dt) p): p itself (tau_c = 0), 0 (tau_c = inf), or short for p in {0, 1/2}
        # when tau_c = 2 dt
        tau_c = draw(st.sampled_from([0.0, math.inf, 2.0 * dt]))
        probabilities = (0.0, 0.5) if tau_c == 2.0 * dt else tuple(k / 8 for k in range(9))
        if math.isfinite(tau_c):
            for p in probabilities:
                short(p / (1.0 + (tau_c / dt) * p), "q")
        tau_eligibility = math.inf if draw(st.booleans()) else time_constant(draw, dt, exact, dyadic)
    else:
        tau_c = draw(st.sampled_from([0.0, math.inf])) if draw(st.booleans()) else draw(st.floats(0.5, 20.0))
        probabilities = ()
        tau_eligibility = time_constant(draw, dt, exact, dyadic)
    kwargs = {
        "exact": exact,
        "tau_psp": time_constant(draw, dt, exact, dyadic),
        "amplitude_psp": amplitude(draw, dyadic),
        "tau_eligibility": tau_eligibility,
        "tau_c": tau_c,
        "learning_rate": amplitude(draw, dyadic, signed=True),
        "batch_reduction": reduction(draw),
        "window": 16,
    }
    return Setup(
        Rmax, kwargs, neuron="probability", reward=True, steps=7, contracted=("eligibility_trace",),
        probabilities=probabilities, functional=rmax_functional,
    )  # fmt: skip


def halving_post(delta, amplitude=1.0, step=1.0):
    """``amplitude * 2^(-delta/step)`` for ``delta >= 0``: exact kernel values at whole steps."""
    return torch.where(delta >= 0, amplitude * torch.exp2(-delta / step), torch.zeros_like(delta))


def halving_pre(delta, amplitude=-1.0, step=1.0):
    """``amplitude * 2^(delta/step)`` for ``delta < 0``."""
    return torch.where(delta < 0, amplitude * torch.exp2(delta / step), torch.zeros_like(delta))


def all_pairs_rule(draw, dt, dyadic):
    steps = 8
    if dyadic:
        amplitudes = amplitude(draw, dyadic), -amplitude(draw, dyadic)
        lags = torch.arange(-steps, steps + 1, dtype=F64) * dt
        all_short(halving_post(lags, amplitudes[0], dt) + halving_pre(lags, amplitudes[1], dt), "kernel values")
        kernels = {
            "kernel_post": halving_post,
            "kernel_pre": halving_pre,
            "kernel_post_kwargs": {"amplitude": amplitudes[0], "step": dt},
            "kernel_pre_kwargs": {"amplitude": amplitudes[1], "step": dt},
        }
    else:
        kernels = {
            "kernel_post_kwargs": {"eta_post": draw(st.floats(0.2, 2.0)), "tau_post": draw(st.floats(2.0, 30.0))},
            "kernel_pre_kwargs": {"eta_pre": -draw(st.floats(0.2, 2.0)), "tau_pre": draw(st.floats(2.0, 30.0))},
        }
    kwargs = {**kernels, "carry_steps": steps, "batch_reduction": reduction(draw), "window": 16}
    return Setup(AllPairsKernelSTDP, kwargs, steps=steps)


def integer_rule(draw, dt, dyadic):
    """Integer STDP without stochastic rounding (``rounding_shift=0``): integer arithmetic, exact
    with any parameters. (With rounding the uniforms are drawn per call: the same distribution,
    not the same bits.)"""
    kwargs = {
        "rounding_shift": 0,
        "nu_pre": draw(st.integers(0, 5)),
        "nu_post": draw(st.integers(0, 5)),
        "trace_decay_pre": draw(st.integers(100, 255)),
        "trace_decay_post": draw(st.integers(100, 255)),
        "w_min": -(10**6),
        "w_max": 10**6,
        "window": 16,
    }
    weights = tuple(float(k) for k in range(-8, 9))
    return Setup(IntegerSTDP, kwargs, weights=weights, general_weights=False, apply=True)


RULES: dict[str, Callable[..., Setup]] = {
    "stdp": stdp_rule,
    "power_law": power_law_rule,
    "inhibitory": inhibitory_rule,
    "oja": oja_rule,
    "bcm": bcm_rule,
    "clopath": clopath_rule,
    "triplet": triplet_rule,
    "mstdp": lambda draw, dt, dyadic: reward_rule(draw, dt, dyadic, trace=False),
    "mstdp_et": lambda draw, dt, dyadic: reward_rule(draw, dt, dyadic, trace=True),
    "online": online_rule,
    "all_pairs": all_pairs_rule,
    "integer": integer_rule,
    "rmax": rmax_rule,
}


# ------------------------------------------------------------------------- functional forms


def stdp_functional(setup, chunk, state, view, dt, weight, step):
    pre, post = chunk
    kw = setup.kwargs
    trace_pre, trace_post, pairing_state = (None, None, None) if state is None else state
    common = {
        "tau_pre": kw["tau_pre"], "tau_post": kw["tau_post"], "dt": dt, "exact": kw["exact"],
        "amplitude_pre": kw.get("amplitude_pre", 1.0), "amplitude_post": kw.get("amplitude_post", 1.0),
        "view": view, "batch_reduction": kw.get("batch_reduction", "sum"),
    }  # fmt: skip
    if kw.get("fuse"):
        net = stdp_window_net(
            pre, post, trace_pre, trace_post, eta_post=kw["eta_post"], eta_pre=kw["eta_pre"], **common
        )
        return (net.delta_weight,), (net.trace_pre, net.trace_post, None)
    function = stdp_step if step else stdp_window
    arguments = (pre[0], post[0]) if step else (pre, post)
    result = function(*arguments, trace_pre, trace_post, pairing=kw["pairing"], pairing_state=pairing_state, **common)
    return (result.potentiation, result.depression), (result.trace_pre, result.trace_post, result.pairing_state)


def inhibitory_functional(setup, chunk, state, view, dt, weight, step):
    kw = setup.kwargs
    result = inhibitory_stdp_window(
        *chunk, *(state or (None, None)), eta=kw["eta"], tau=kw["tau"], target_rate=kw["target_rate"], dt=dt,
        exact=kw["exact"], view=view, batch_reduction=kw["batch_reduction"],
    )  # fmt: skip
    return (result.potentiation, result.depression), (result.trace_pre, result.trace_post)


def oja_functional(setup, chunk, state, view, dt, weight, step):
    kw = setup.kwargs
    result = oja_window(
        *chunk, weight, *(state or (None, None)), eta=kw["eta"], tau_rate=kw["tau_rate"], dt=dt, view=view,
        batch_reduction=kw["batch_reduction"],
    )  # fmt: skip
    return (result.delta_weight,), (result.rate_pre, result.rate_post)


def bcm_functional(setup, chunk, state, view, dt, weight, step):
    kw = setup.kwargs
    result = bcm_window(
        *chunk, weight, *(state or (None, None, None)), eta=kw["eta"], tau_rate=kw["tau_rate"],
        tau_threshold=kw["tau_threshold"], rate_reference=kw["rate_reference"], dt=dt, view=view,
        batch_reduction=kw["batch_reduction"],
    )  # fmt: skip
    return (result.delta_weight,), (result.rate_pre, result.rate_post, result.threshold)


def rule_functional(window_function, step_function, *, order=None, weighted=True):
    """The functional form of a rule whose functions take ``(*inputs, state, parameters, dt=, view=,
    batch_reduction=[, weight=, f_post=, f_pre=])`` (the trainer's ``Params.rule()``) and return a
    tuple ending with the state; ``order`` rearranges the chunk's inputs into the function's."""

    def functional(setup, chunk, state, view, dt, weight, step):
        inputs = chunk if order is None else tuple(chunk[index] for index in order)
        kw = setup.kwargs
        extra = {"weight": weight, "f_post": kw.get("weight_dependence_post"), "f_pre": kw.get("weight_dependence_pre")}
        result = (step_function if step else window_function)(
            *(tuple(values[0] for values in inputs) if step else inputs), state,
            setup.trainer_class.Params(**kw).rule(), dt=dt, view=view, batch_reduction=kw["batch_reduction"],
            **(extra if weighted else {}),
        )  # fmt: skip
        return tuple(result[:-1]), result[-1]

    return functional


clopath_functional = rule_functional(clopath_window, clopath_step)
triplet_functional = rule_functional(triplet_stdp_window, triplet_stdp_step)
mstdp_functional = rule_functional(mstdp_window, mstdp_step)
mstdp_et_functional = rule_functional(mstdp_et_window, mstdp_et_step)
# the cell is fed (pre, probability, post); the rule takes (pre, post, probability, reward)
rmax_functional = rule_functional(rmax_window, rmax_step, order=(0, 2, 1, 3), weighted=False)


# ------------------------------------------------------------------------- runs


@dataclass
class Run:
    """What a rule does with one drawn run, for each way of calling it."""

    setup: Setup
    spec: dict[str, Any] | None
    batch: int
    dt: float
    dtype: torch.dtype
    inputs: tuple[torch.Tensor, ...]  # what the cell is fed, [T, ...] each (Setup.neuron)
    reward: torch.Tensor | None  # [T, B] when the rule takes one
    weight: torch.Tensor

    def cell(self):
        if self.setup.neuron == "spikes":
            cell = make_cell(self.spec, self.batch, self.dt, dtype=self.dtype)
        else:
            neuron = ScriptedProbabilityNeuron if self.setup.neuron == "probability" else ScriptedVoltageNeuron
            cell = make_voltage_cell(self.spec, self.batch, self.dt, dtype=self.dtype, neuron=neuron)
        with torch.no_grad():
            cell.connection.weight.copy_(self.weight)
        cell.make_updater(**self.setup.updater)
        return cell

    def trainer_results(self, chunking) -> dict[str, torch.Tensor]:
        """The updater's net change (and its terms' magnitude), the carried state after the run,
        and the weights after applying (``setup.apply``), calling the trainer as ``chunking`` says."""
        cell = self.cell()
        trainer = self.setup.trainer()
        trainer.register_cell("c", cell)
        call = None
        if self.reward is not None:
            reward = self.reward

            def call(start, stop):
                # a step's reward is [B]; a window's [T, B]
                trainer(reward[start] if chunking == "every step" else reward[start:stop])

        drive(
            cell, trainer, self.inputs, chunking, feed=run if self.setup.neuron == "spikes" else feed_values, call=call
        )
        potentiation, depression = cell.updater.pending("weight")
        results = {"change": potentiation - depression, "magnitude": torch.maximum(potentiation, depression)}
        carried = trainer.get_unit("c").state.state_dict()
        results.update({f"state.{name}": value for name, value in carried.items() if isinstance(value, torch.Tensor)})
        if self.setup.apply:
            trainer.update()
            results["weight"] = cell.connection.weight.detach().clone()
        return results

    def functional_results(self, chunking) -> dict[str, torch.Tensor]:
        """The functional form's terms summed over the chunks (step functions for single steps)
        and the state after the last chunk."""
        view = None if self.spec is None else self.cell().connection
        state, totals = None, None
        bounds = chunk_bounds(self.inputs[0].shape[0], chunking)
        everything = self.inputs if self.reward is None else (*self.inputs, self.reward)
        with default_dtype(self.dtype):
            for start, stop in itertools.pairwise(bounds):
                chunk = tuple(values[start:stop] for values in everything)
                terms, state = self.setup.functional(
                    self.setup, chunk, state, view, self.dt, self.weight, chunking == "every step"
                )
                totals = terms if totals is None else tuple(a + b for a, b in zip(totals, terms, strict=True))
        results = {f"term{index}": value for index, value in enumerate(totals)}
        results.update({f"state.{index}": value for index, value in enumerate(flatten(state))})
        return results


def flatten(state) -> list[torch.Tensor]:
    """The tensors of a (nested) state tuple, in order, Nones left out."""
    if state is None:
        return []
    if isinstance(state, torch.Tensor):
        return [state]
    return [tensor for item in state for tensor in flatten(item)]


def draw_run(draw, rule, *, dyadic, dtype=F64) -> Run:
    dt = draw(st.sampled_from(DTS))
    setup = RULES[rule](draw, dt, dyadic)
    spec = draw(conv_specs)  # None (dense), a Conv1d or a Conv2d
    batch = draw(st.sampled_from(setup.batches if spec is None else setup.batches[:2]))
    steps = draw(st.integers(2, setup.steps))
    cell = make_cell(spec, batch, dt)
    in_shape, out_shape = tuple(cell.connection.in_shape), tuple(cell.connection.out_shape)
    weight_shape = tuple(cell.connection.weight.shape)

    def train(shape):
        # every element drawn (no fill value): trains of any density
        return torch.from_numpy(draw(arrays(np.bool_, (steps, batch, *shape), fill=st.nothing())))

    def values(shape, dyadic_values, general_values):
        elements = dyadic_values if dyadic else general_values
        return torch.from_numpy(draw(arrays(np.float64, shape, elements=elements, fill=st.nothing()))).to(dtype)

    pre = train(in_shape)
    post_shape = (steps, batch, *out_shape)
    if setup.neuron == "voltage":
        # around the thresholds, with spike plateaus
        voltage = values(
            post_shape,
            st.one_of(st.integers(-160, -80).map(lambda k: k / 2), st.just(29.5)),
            st.one_of(st.floats(-80.0, -40.0), st.just(29.4)),
        )
        inputs: tuple[torch.Tensor, ...] = (pre, voltage)
    elif setup.neuron == "probability":
        inputs = (pre, values(post_shape, st.sampled_from(setup.probabilities), st.floats(0.0, 1.0)), train(out_shape))
    else:
        inputs = (pre, train(out_shape))
    reward = None
    if setup.reward:
        reward = values((steps, batch), st.integers(-8, 8).map(lambda k: k / 4), st.floats(-2.0, 2.0))
    grid = st.sampled_from(setup.weights)
    weight = values(
        weight_shape, grid, st.floats(min(setup.weights), max(setup.weights)) if setup.general_weights else grid
    )
    return Run(setup, spec, batch, dt, dtype, inputs, reward, weight)


def draw_chunking(draw):
    return draw(cut_points(max_cut=8))


def assert_identical(results: list[dict[str, torch.Tensor]]) -> None:
    """Every change, carried state and weight the same bits (the updater's potentiation and
    depression themselves may split a net change differently: a call adds each part of its own)."""
    reference = results[0]
    for other in results[1:]:
        assert other.keys() == reference.keys()
        for name, value in reference.items():
            assert name == "magnitude" or torch.equal(other[name], value), name


def assert_equal_to_rounding(results, dtype, contracted=()) -> None:
    """Changes within 1e-12 (float64) or 1e-6 (float32) relative to the largest potentiation or
    depression any of the runs accumulated, contracted state relative to its largest value;
    carried recurrences bit for bit."""
    rel = 1e-12 if dtype == F64 else 1e-6
    reference = results[0]
    scale = max(float(result["magnitude"].abs().max()) for result in results)
    for other in results[1:]:
        assert other.keys() == reference.keys()
        for name, value in reference.items():
            if name == "magnitude":
                continue
            if name.startswith("state.") and name[len("state.") :] not in contracted:
                assert torch.equal(other[name], value), name
                continue
            local = scale if name == "change" else float(value.abs().max())
            if name == "weight":  # applied changes: relative to the weight and the change
                local = max(scale, float(value.abs().max()))
            error = float((other[name].double() - value.double()).abs().max())
            assert error <= rel * local, (name, error, local)


# ------------------------------------------------------------------------- tests


@pytest.mark.parametrize("rule", sorted(RULES))
@settings(max_examples=10)
@given(data=st.data())
def test_trainer_calls_give_identical_bits_in_exact_arithmetic(rule, data):
    run_ = draw_run(data.draw, rule, dyadic=True)
    chunking = draw_chunking(data.draw)
    assert_identical([run_.trainer_results(c) for c in ("once", "every step", chunking)])


@pytest.mark.parametrize("rule", sorted(RULES))
@settings(max_examples=6)
@given(data=st.data(), dtype=st.sampled_from([F64, torch.float32]))
def test_trainer_calls_agree_to_rounding_with_general_parameters(rule, data, dtype):
    run_ = draw_run(data.draw, rule, dyadic=False, dtype=dtype)
    chunking = draw_chunking(data.draw)
    results = [run_.trainer_results(c) for c in ("once", "every step", chunking)]
    assert_equal_to_rounding(results, dtype, run_.setup.contracted)


#: the rules with a functional window form that carries state (the others: the trainer is the rule)
FUNCTIONAL = sorted(name for name in RULES if name not in ("online", "all_pairs", "power_law", "integer"))


@pytest.mark.parametrize("rule", FUNCTIONAL)
@settings(max_examples=8)
@given(data=st.data())
def test_functional_chunks_give_identical_bits_in_exact_arithmetic(rule, data):
    run_ = draw_run(data.draw, rule, dyadic=True)
    chunking = draw_chunking(data.draw)
    assert_identical([run_.functional_results(c) for c in ("once", "every step", chunking)])


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("kind", ["dense", "conv1d"])
def test_tsodyks_markram_connection_window_equals_steps_bit_for_bit(dtype, kind):
    """The short-term synapse is a recurrence in the connection: its currents and state are those
    of the step loop bit for bit, with any parameters (the connection's product over them only to
    rounding: one product over T*B against B at a time)."""
    synapse_kwargs = {"utilisation_increment": 0.37, "tau_recovery": 13.3, "tau_facilitation": 41.0, "tau": 3.1}

    def connection():
        options = {"synapse": "tsodyks_markram", "synapse_kwargs": synapse_kwargs, "batch_size": 2, "dt": 0.5}
        torch.manual_seed(0)
        if kind == "dense":
            return LinearDense(3, 2, dtype=dtype, **options)
        return Conv1d(2, 4, 2, 1, 1, 1, 2, "zeros", in_size=5, dtype=dtype, **options)

    single, window = connection(), connection()
    window.step_mode = "window"
    pre = torch.rand(11, 2, *single.in_shape, generator=torch.Generator().manual_seed(3)) < 0.5
    with torch.no_grad():
        stepped, currents = [], []
        for t in range(pre.shape[0]):
            stepped.append(single(pre[t].to(dtype)))
            currents.append(single.syncurrent.clone())
        windowed = window(pre.to(dtype))
    assert torch.equal(window.syncurrent, torch.stack(currents))
    assert torch.equal(window.synapse.resources, single.synapse.resources)
    assert torch.equal(window.synapse.utilisation, single.synapse.utilisation)
    rel = 1e-12 if dtype == F64 else 1e-6
    torch.testing.assert_close(windowed, torch.stack(stepped), rtol=rel, atol=rel)
