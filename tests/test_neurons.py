"""Tests of the spiking neurons: surrogate gradients, the functional step and
window forms, and the IF / LIF / AdaptiveLIF modules.

References used here are independent of the code under test: hand-computed
small cases, and a naive per-step reference written below straight from the
equations of DESIGN.md (with its own surrogate autograd function).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.neurons import (
    NeuronParams,
    NeuronState,
    fire,
    if_charge,
    lif_charge,
    neuron_step,
    neuron_step_state,
    neuron_window,
    neuron_window_state,
    refractory_steps,
    reset_hard,
    reset_soft,
    theta_decay_factor,
)
from plastic.functional.surrogate import ATan, Sigmoid, SurrogateGradient, heaviside
from plastic.neural.neurons import IF, LIF, AdaptiveLIF

# ----------------------------------------------------------------------------
# Independent reference
# ----------------------------------------------------------------------------


def _atan_bump(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


def _sigmoid_bump(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * torch.sigmoid(alpha * x) * (1 - torch.sigmoid(alpha * x))


class _ReferenceStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, name, alpha):
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        bump = _atan_bump if ctx.name == "atan" else _sigmoid_bump
        return grad * bump(x, ctx.alpha), None, None


def reference_run(
    inputs,
    voltage0,
    *,
    kind="lif",
    tau=2.0,
    v_threshold=1.0,
    v_reset=0.0,
    reset="hard",
    surrogate=("atan", 2.0),
    detach_reset=False,
    n_refractory=0,
    theta0=None,
    theta_plus=0.0,
    theta_decay=1.0,
    decay_input=True,
):
    """Naive per-step loop written from the DESIGN equations."""
    voltage = voltage0
    remaining = torch.zeros(voltage0.shape, dtype=torch.int64)
    theta = theta0
    spikes, voltages = [], []
    for t in range(inputs.shape[0]):
        x = inputs[t]
        if kind == "lif" and decay_input:
            h = voltage + (x - (voltage - v_reset)) / tau
        elif kind == "lif":
            h = voltage - (voltage - v_reset) / tau + x
        else:
            h = voltage + x
        refractory = remaining > 0
        h = torch.where(refractory, voltage, h)
        threshold = v_threshold if theta is None else v_threshold + theta
        spike = _ReferenceStep.apply(h - threshold, *surrogate) * (~refractory).to(h.dtype)
        spike_reset = spike.detach() if detach_reset else spike
        if reset == "hard":
            voltage = spike_reset * v_reset + (1 - spike_reset) * h
        else:
            voltage = h - spike_reset * threshold
        fired = spike.detach() > 0
        remaining = torch.where(fired, n_refractory, torch.clamp(remaining - 1, min=0))
        if theta is not None:
            theta = theta * theta_decay + theta_plus * fired.to(theta.dtype).sum(0)
        spikes.append(spike)
        voltages.append(voltage)
    return torch.stack(spikes), torch.stack(voltages), theta, remaining


def _surrogate(name: str, alpha: float) -> SurrogateGradient:
    return ATan(alpha) if name == "atan" else Sigmoid(alpha)


# ----------------------------------------------------------------------------
# Surrogate gradients
# ----------------------------------------------------------------------------


def test_heaviside_at_zero_is_one():
    x = torch.tensor([-1.0, -1e-30, 0.0, 1e-30, 2.0])
    assert heaviside(x).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_surrogate_defaults_and_values():
    assert ATan().alpha == 2.0 and Sigmoid().alpha == 4.0
    x = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    # Hand values: ATan(2) at 0 is 1, at 0.5 is 1/(1+(pi/2)^2); Sigmoid(4) at 0 is 4*0.25.
    atan = ATan().derivative(x)
    assert atan[0].item() == pytest.approx(1.0)
    assert atan[1].item() == pytest.approx(1 / (1 + (math.pi / 2) ** 2))
    assert atan[2].item() == pytest.approx(1 / (1 + math.pi**2))
    sig = Sigmoid().derivative(x)
    assert sig[0].item() == pytest.approx(1.0)
    s = 1 / (1 + math.exp(-2.0))
    assert sig[1].item() == pytest.approx(4 * s * (1 - s))


@pytest.mark.parametrize(
    "surrogate, primitive",
    [
        (ATan(1.5), lambda x: torch.atan(math.pi / 2 * 1.5 * x) / math.pi + 0.5),
        (Sigmoid(3.0), lambda x: torch.sigmoid(3.0 * x)),
    ],
)
def test_surrogate_backward_is_derivative_of_smooth_primitive(surrogate, primitive):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    out = surrogate(x)
    assert torch.equal(out.detach(), (x.detach() >= 0).double())
    weights = torch.linspace(0.5, 1.5, 41, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    eps = 1e-6
    numeric = (primitive(x.detach() + eps) - primitive(x.detach() - eps)) / (2 * eps)
    torch.testing.assert_close(grad, numeric * weights, rtol=1e-7, atol=1e-9)
    # The derivative itself is smooth: gradcheck it.
    assert torch.autograd.gradcheck(surrogate.derivative, (x.detach().clone().requires_grad_(),))


def test_surrogate_rejects_bad_alpha():
    with pytest.raises(ValueError, match=r"^alpha"):
        ATan(0.0)
    with pytest.raises(TypeError, match=r"^alpha"):
        Sigmoid("4")


# ----------------------------------------------------------------------------
# Hand-computed cases
# ----------------------------------------------------------------------------


def _run_module(module, inputs_per_step):
    spikes, voltages = [], []
    for value in inputs_per_step:
        x = torch.tensor(value, dtype=torch.float64).reshape(module.batch_size, *module.shape)
        spikes.append(module(x).flatten().tolist())
        voltages.append(module.voltage.flatten().tolist())
    return spikes, voltages


def _flat(nested):
    return [value for row in nested for value in row]


def test_lif_hard_hand_computed():
    # tau=2: H = V + (X - V)/2. V: 0.75; H=1.125 fire -> 0; 0.2; H=1.35 fire -> 0.
    neuron = LIF(1, tau=2.0, dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [1.5, 1.5, 0.4, 2.5])
    assert spikes == [[0.0], [1.0], [0.0], [1.0]]
    assert _flat(voltages) == pytest.approx(_flat([[0.75], [0.0], [0.2], [0.0]]))


def test_lif_soft_hand_computed():
    # V: 0.75; 1.125 fire -> 0.125; 0.2625; 1.38125 fire -> 0.38125.
    neuron = LIF(1, tau=2.0, reset="soft", dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [1.5, 1.5, 0.4, 2.5])
    assert spikes == [[0.0], [1.0], [0.0], [1.0]]
    assert _flat(voltages) == pytest.approx(_flat([[0.75], [0.125], [0.2625], [0.38125]]))


def test_lif_leaks_towards_v_reset():
    # tau=4, v_reset=-1 (start there), v_threshold=0.5: H = V + (X - (V + 1))/4.
    # X=3: H = -1 + 3/4 = -0.25; X=0: H = -0.25 + (0 - 0.75)/4 = -0.4375.
    neuron = LIF(1, tau=4.0, v_reset=-1.0, v_threshold=0.5, dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [3.0, 0.0])
    assert spikes == [[0.0], [0.0]]
    assert _flat(voltages) == pytest.approx(_flat([[-0.25], [-0.4375]]))


def test_if_hard_fires_exactly_at_threshold():
    # 0.625 + 0.375 = 1.0 exactly: Heaviside(0) = 1 fires.
    neuron = IF(1, dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [0.625, 0.375, 0.25, 1.5])
    assert spikes == [[0.0], [1.0], [0.0], [1.0]]
    assert voltages == [[0.625], [0.0], [0.25], [0.0]]


def test_if_soft_hand_computed():
    neuron = IF(1, reset="soft", dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [0.625, 0.375, 0.25, 1.5])
    assert spikes == [[0.0], [1.0], [0.0], [1.0]]
    assert voltages == [[0.625], [0.0], [0.25], [0.75]]


def test_tau_one_has_no_memory():
    neuron = LIF(1, tau=1.0, v_reset=-0.5, dtype=torch.float64)
    _, voltages = _run_module(neuron, [0.25, 0.125])
    assert voltages == [[-0.25], [-0.375]]  # H = V_reset + X


def test_refractory_hard_hand_computed():
    # refractory=2 steps: spike at 0, steps 1 and 2 ignore input, step 3 integrates.
    neuron = IF(1, refractory=2.0, dt=1.0, dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [1.5, 5.0, 5.0, 0.5, 0.75])
    assert spikes == [[1.0], [0.0], [0.0], [0.0], [1.0]]
    assert voltages == [[0.0], [0.0], [0.0], [0.5], [0.0]]
    assert neuron.refractory_remaining.item() == 2


def test_refractory_holds_the_voltage_after_a_soft_reset():
    # Spike leaves 1.5 (above threshold) but the refractory step cannot fire or integrate.
    neuron = IF(1, reset="soft", refractory=1.0, dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [2.5, 1.0, 0.0])
    assert spikes == [[1.0], [0.0], [1.0]]
    assert voltages == [[1.5], [1.5], [0.5]]


def test_refractory_counts_per_batch_item():
    neuron = IF(1, refractory=1.0, batch_size=2, dtype=torch.float64)
    spikes, voltages = _run_module(neuron, [[1.0, 0.5], [0.5, 0.5], [0.5, 0.25]])
    assert spikes == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert voltages == [[0.0, 0.5], [0.0, 0.0], [0.5, 0.0]]


def test_refractory_step_conversion():
    assert refractory_steps(0.0, 1.0) == 0
    assert refractory_steps(1.5, 1.0) == 2
    assert refractory_steps(5.0, 0.5) == 10
    assert refractory_steps(0.3, 0.1) == 3
    assert refractory_steps(1.1, 0.1) == 11  # 1.1/0.1 = 11.000000000000002 in floats
    assert IF(1, refractory=0.25, dt=0.1).refractory_steps == 3


def test_adaptive_threshold_hand_computed():
    # tau=1 (H = X), theta_plus=0.5, no decay: threshold 1, 1.5, 1.5, 2.
    neuron = AdaptiveLIF(1, tau=1.0, theta_plus=0.5, tau_theta=math.inf, dtype=torch.float64)
    spikes, _ = _run_module(neuron, [1.2, 1.2, 1.6, 1.6])
    assert spikes == [[1.0], [0.0], [1.0], [0.0]]
    assert neuron.theta.item() == pytest.approx(1.0)


def test_adaptive_threshold_sums_batch_and_decays():
    neuron = AdaptiveLIF(1, tau=1.0, theta_plus=0.5, tau_theta=10.0, dt=1.0, batch_size=3, dtype=torch.float64)
    _run_module(neuron, [[1.2, 0.5, 1.0]])  # two samples fire
    assert neuron.theta.item() == pytest.approx(1.0)
    _run_module(neuron, [[0.0, 0.0, 0.0]])
    assert neuron.theta.item() == pytest.approx(math.exp(-0.1))
    # Threshold is now 1 + exp(-0.1) ~ 1.905: 1.9 does not fire, 1.91 does.
    spikes, _ = _run_module(neuron, [[1.9, 1.91, 0.0]])
    assert spikes == [[0.0, 1.0, 0.0]]
    assert neuron.theta.item() == pytest.approx(math.exp(-0.2) + 0.5)


def test_adaptive_soft_reset_subtracts_effective_threshold():
    neuron = AdaptiveLIF(1, tau=1.0, reset="soft", theta_plus=0.5, tau_theta=math.inf, dtype=torch.float64)
    _run_module(neuron, [1.25])  # threshold 1: V = 1.25 - 1
    assert neuron.voltage.item() == pytest.approx(0.25)
    _run_module(neuron, [1.75])  # tau=1: H = 1.75 >= 1.5 -> V = 1.75 - 1.5
    assert neuron.voltage.item() == pytest.approx(0.25)
    assert neuron.theta.item() == pytest.approx(1.0)


def test_reset_keeps_theta_unless_asked():
    neuron = AdaptiveLIF(2, tau=1.0, refractory=3.0, dtype=torch.float64)
    neuron(torch.tensor([[2.0, 0.5]], dtype=torch.float64))
    assert neuron.theta.tolist() == pytest.approx([0.05, 0.0])
    neuron.reset()
    assert neuron.voltage.tolist() == [[0.0, 0.0]]
    assert neuron.refractory_remaining.tolist() == [[0, 0]]
    assert not neuron.spike.any()
    assert neuron.theta.tolist() == pytest.approx([0.05, 0.0])
    neuron.reset(theta=True)
    assert neuron.theta.tolist() == [0.0, 0.0]


def test_elementary_functions_hand_computed():
    v = torch.tensor([0.5, -1.0])
    x = torch.tensor([1.0, 2.0])
    assert lif_charge(v, x, 2.0, 0.0).tolist() == [0.75, 0.5]
    assert lif_charge(v, x, 4.0, -1.0).tolist() == [0.375, -0.5]  # 0.5 + (1 - 1.5)/4
    assert if_charge(v, x).tolist() == [1.5, 1.0]
    h = torch.tensor([0.5, 1.0, 1.5])
    spike = fire(h, 1.0, ATan())
    assert spike.tolist() == [0.0, 1.0, 1.0]
    assert reset_hard(h, spike, -0.5).tolist() == [0.5, -0.5, -0.5]
    assert reset_soft(h, spike, 1.0).tolist() == [0.5, 0.0, 0.5]


# ----------------------------------------------------------------------------
# Window == loop of single steps == reference (hypothesis)
# ----------------------------------------------------------------------------

KINDS = ("if", "lif", "adaptive")


@st.composite
def neuron_cases(draw, dtypes=(torch.float32, torch.float64)):
    return {
        "kind": draw(st.sampled_from(KINDS)),
        "reset": draw(st.sampled_from(("hard", "soft"))),
        "detach_reset": draw(st.booleans()),
        "refractory": draw(st.sampled_from((0.0, 1.0, 2.0))),
        "tau": draw(st.sampled_from((1.0, 1.5, 3.0))),
        "decay_input": draw(st.booleans()),
        "surrogate": draw(st.sampled_from((("atan", 2.0), ("sigmoid", 4.0), ("atan", 0.7)))),
        "shape": draw(st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)),
        "batch": draw(st.integers(1, 3)),
        "steps": draw(st.integers(1, 6)),
        "dtype": draw(st.sampled_from(dtypes)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _make(case, step_mode):
    common = {
        "reset": case["reset"],
        "detach_reset": case["detach_reset"],
        "refractory": case["refractory"],
        "surrogate": _surrogate(*case["surrogate"]),
        "batch_size": case["batch"],
        "step_mode": step_mode,
        "dtype": case["dtype"],
        "v_threshold": 1.0,
        "v_reset": 0.0,
    }
    if case["kind"] == "if":
        return IF(case["shape"], **common)
    if case["kind"] == "lif":
        return LIF(case["shape"], tau=case["tau"], decay_input=case["decay_input"], **common)
    return AdaptiveLIF(
        case["shape"], tau=case["tau"], decay_input=case["decay_input"], theta_plus=0.3, tau_theta=5.0, **common
    )


def _inputs(case, requires_grad=False):
    generator = torch.Generator().manual_seed(case["seed"])
    size = (case["steps"], case["batch"], *case["shape"])
    inputs = (torch.rand(size, generator=generator, dtype=torch.float64) * 2.4 - 0.4).to(case["dtype"])
    voltage0 = (torch.rand(size[1:], generator=generator, dtype=torch.float64) * 0.9).to(case["dtype"])
    return inputs.requires_grad_(requires_grad), voltage0.requires_grad_(requires_grad)


def _reference_for(case, inputs, voltage0):
    adaptive = case["kind"] == "adaptive"
    return reference_run(
        inputs,
        voltage0,
        kind="if" if case["kind"] == "if" else "lif",
        tau=case["tau"],
        reset=case["reset"],
        surrogate=case["surrogate"],
        detach_reset=case["detach_reset"],
        n_refractory=int(case["refractory"]),
        theta0=torch.zeros(case["shape"], dtype=inputs.dtype) if adaptive else None,
        theta_plus=0.3 if adaptive else 0.0,
        theta_decay=math.exp(-1 / 5.0),
        decay_input=case["decay_input"],
    )


@given(neuron_cases())
def test_window_equals_single_steps_and_reference(case):
    inputs, voltage0 = _inputs(case)
    single, window = _make(case, "single"), _make(case, "window")
    single.voltage.copy_(voltage0)
    window.voltage.copy_(voltage0)

    spikes_single, voltages_single = [], []
    for t in range(case["steps"]):
        spikes_single.append(single(inputs[t]))
        voltages_single.append(single.voltage.clone())
        assert single.spike.dtype == torch.bool
        assert torch.equal(single.spike, spikes_single[-1] != 0)
    spikes_window = window(inputs)
    assert spikes_window.shape == inputs.shape and spikes_window.dtype == case["dtype"]
    assert window.spike.shape == inputs.shape and window.spike.dtype == torch.bool

    assert torch.equal(spikes_window, torch.stack(spikes_single))
    torch.testing.assert_close(window.voltage, single.voltage, rtol=1e-6, atol=1e-7)
    if case["kind"] == "adaptive":
        torch.testing.assert_close(window.theta, single.theta, rtol=1e-6, atol=1e-7)
    if case["refractory"] > 0:
        assert torch.equal(window.refractory_remaining, single.refractory_remaining)

    ref_spikes, ref_voltages, ref_theta, ref_remaining = _reference_for(case, inputs, voltage0)
    assert torch.equal(spikes_window, ref_spikes)
    torch.testing.assert_close(torch.stack(voltages_single), ref_voltages, rtol=1e-6, atol=1e-6)
    if ref_theta is not None:
        torch.testing.assert_close(window.theta, ref_theta, rtol=1e-6, atol=1e-6)
    if case["refractory"] > 0:
        assert torch.equal(window.refractory_remaining.long(), ref_remaining)


@given(neuron_cases(dtypes=(torch.float64,)))
def test_window_backward_matches_autograd_through_steps(case):
    _check_window_backward(case)


def _check_window_backward(case):
    inputs, voltage0 = _inputs(case, requires_grad=True)
    generator = torch.Generator().manual_seed(case["seed"] + 1)
    weight_spikes = torch.randn(inputs.shape, generator=generator, dtype=torch.float64)
    weight_voltages = torch.randn(inputs.shape, generator=generator, dtype=torch.float64)

    ref_spikes, ref_voltages, _, _ = _reference_for(case, inputs, voltage0)
    ref_loss = (ref_spikes * weight_spikes).sum() + (ref_voltages * weight_voltages).sum()
    ref_grads = torch.autograd.grad(ref_loss, (inputs, voltage0))

    adaptive = case["kind"] == "adaptive"
    params = NeuronParams(
        kind="if" if case["kind"] == "if" else "lif",
        tau=case["tau"],
        reset=case["reset"],
        surrogate=_surrogate(*case["surrogate"]),
        detach_reset=case["detach_reset"],
        refractory_steps=int(case["refractory"]),
        theta_plus=0.3 if adaptive else 0.0,
        theta_decay=math.exp(-1 / 5.0),
        decay_input=case["decay_input"],
    )
    theta0 = torch.zeros(case["shape"], dtype=torch.float64) if adaptive else None
    result = neuron_window_state(inputs, NeuronState(voltage0, None, theta0), params)
    assert "NeuronWindow" in type(result.spikes.grad_fn).__name__  # one fused node
    loss = (result.spikes * weight_spikes).sum() + (result.voltages * weight_voltages).sum()
    grads = torch.autograd.grad(loss, (inputs, voltage0))
    for got, expected in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)

    # The module's single-step loop (autograd per step) gives the same gradients.
    module = _make(case, "single")
    module.voltage = voltage0
    loss = sum(
        (module(inputs[t]) * weight_spikes[t]).sum() + (module.voltage * weight_voltages[t]).sum()
        for t in range(case["steps"])
    )
    for got, expected in zip(torch.autograd.grad(loss, (inputs, voltage0)), ref_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("surrogate", [("atan", 2.0), ("sigmoid", 4.0)])
@pytest.mark.parametrize("refractory", [0.0, 2.0])
@pytest.mark.parametrize("decay_input", [True, False])
def test_window_backward_every_configuration(kind, reset, detach_reset, surrogate, refractory, decay_input):
    # Deterministic sweep of every option with a window long enough for the
    # adaptive threshold and the refractory period to matter.
    case = {
        "kind": kind,
        "reset": reset,
        "detach_reset": detach_reset,
        "surrogate": surrogate,
        "refractory": refractory,
        "tau": 1.5,
        "decay_input": decay_input,
        "shape": (3,),
        "batch": 2,
        "steps": 12,
        "dtype": torch.float64,
        "seed": 7,
    }
    _check_window_backward(case)


def test_window_gradient_through_final_state_and_split_windows():
    # Two module windows of 3 steps chained through the voltage state equal one window of 6.
    generator = torch.Generator().manual_seed(3)
    inputs = (torch.rand(6, 2, 4, generator=generator, dtype=torch.float64) * 1.5).requires_grad_()
    weights = torch.randn(6, 2, 4, generator=generator, dtype=torch.float64)
    whole = LIF(4, tau=1.5, batch_size=2, step_mode="window", dtype=torch.float64)
    out_whole = whole(inputs)
    loss_whole = (out_whole * weights).sum() + whole.voltage.sum()
    (grad_whole,) = torch.autograd.grad(loss_whole, inputs)

    split = LIF(4, tau=1.5, batch_size=2, step_mode="window", dtype=torch.float64)
    out_split = torch.cat([split(inputs[:3]), split(inputs[3:])])
    loss_split = (out_split * weights).sum() + split.voltage.sum()
    (grad_split,) = torch.autograd.grad(loss_split, inputs)
    assert torch.equal(out_whole, out_split)
    torch.testing.assert_close(grad_split, grad_whole, rtol=0, atol=1e-12)

    # Reference: naive loop, loss on spikes and final voltage.
    ref_spikes, ref_voltages, _, _ = reference_run(inputs, torch.zeros(2, 4, dtype=torch.float64), tau=1.5)
    (grad_ref,) = torch.autograd.grad((ref_spikes * weights).sum() + ref_voltages[-1].sum(), inputs)
    torch.testing.assert_close(grad_whole, grad_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["lif", "if"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_gradcheck_window_voltages_with_detached_reset(kind, reset):
    # With the reset detached, the voltages are a piecewise smooth function of the
    # inputs; away from the threshold the numerical derivative is meaningful.
    for seed in range(50):
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.rand(5, 2, 3, generator=generator, dtype=torch.float64) * 1.2
        voltage0 = torch.rand(2, 3, generator=generator, dtype=torch.float64) * 0.5
        h_ref = reference_run(inputs, voltage0, kind=kind, tau=1.7, reset=reset)
        # margin: recompute H from the voltages (H_t = charge(V_{t-1}, X_t))
        previous = torch.cat([voltage0[None], h_ref[1][:-1]])
        h = previous + (inputs - previous) / 1.7 if kind == "lif" else previous + inputs
        if (h - 1.0).abs().min() > 1e-3 and h_ref[0].any():
            break
    else:  # pragma: no cover
        pytest.fail("no input away from the threshold")

    def voltages(x, v0):
        return neuron_window(x, v0, kind=kind, tau=1.7, reset=reset, detach_reset=True)[1]

    assert torch.autograd.gradcheck(voltages, (inputs.requires_grad_(), voltage0.requires_grad_()), eps=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------
# Functional API
# ----------------------------------------------------------------------------


def test_functional_step_and_window_agree_with_hand_values():
    inputs = torch.tensor([[[1.5]], [[1.5]], [[0.4]], [[2.5]]], dtype=torch.float64)
    voltage0 = torch.zeros(1, 1, dtype=torch.float64)
    spikes, voltages = neuron_window(inputs, voltage0, tau=2.0, reset="soft")
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert voltages.flatten().tolist() == pytest.approx([0.75, 0.125, 0.2625, 0.38125])
    spike, voltage = neuron_step(inputs[0], voltage0, tau=2.0)
    assert spike.item() == 0.0 and voltage.item() == pytest.approx(0.75)


def test_empty_window_returns_initial_state():
    voltage0 = torch.full((2, 3), 0.25)
    result = neuron_window_state(torch.zeros(0, 2, 3), NeuronState(voltage0), NeuronParams())
    assert result.spikes.shape == (0, 2, 3) and result.voltages.shape == (0, 2, 3)
    assert result.state.voltage is voltage0


def test_functional_validation_names_arguments():
    voltage = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^inputs"):
        neuron_step(torch.full((2, 3), float("nan")), voltage)
    with pytest.raises(ValueError, match=r"^state\.voltage"):
        neuron_step(torch.zeros(2, 4), voltage)
    with pytest.raises(TypeError, match=r"^state\.voltage"):
        neuron_window(torch.zeros(4, 2, 3, dtype=torch.float64), voltage)
    with pytest.raises(TypeError, match=r"^inputs"):
        neuron_window(torch.zeros(4, 2, 3, dtype=torch.int64), voltage)
    with pytest.raises(ValueError, match=r"^state\.theta"):
        neuron_step_state(torch.zeros(2, 3), NeuronState(voltage, None, torch.zeros(2, 3)), NeuronParams())
    with pytest.raises(TypeError, match=r"^state\.refractory_remaining"):
        neuron_step_state(torch.zeros(2, 3), NeuronState(voltage, torch.zeros(2, 3)), NeuronParams(refractory_steps=1))
    with pytest.raises(ValueError, match=r"^tau"):
        neuron_window(torch.zeros(4, 2, 3), voltage, tau=0.5)


# ----------------------------------------------------------------------------
# Modules: validation, state, dtype, modes
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory, error, name",
    [
        (lambda: LIF(3, tau=0.9), ValueError, "tau"),
        (lambda: LIF(3, dt=0.0), ValueError, "dt"),
        (lambda: LIF(3, refractory=-1.0), ValueError, "refractory"),
        (lambda: LIF(3, reset="weird"), ValueError, "reset"),
        (lambda: LIF(3, v_threshold=0.0, v_reset=0.0), ValueError, "v_threshold"),
        (lambda: IF(3, reset="soft", v_threshold=-1.0, v_reset=-2.0), ValueError, "v_threshold"),
        (lambda: LIF(3, v_threshold=float("nan")), ValueError, "v_threshold"),
        (lambda: LIF(3, surrogate=torch.sigmoid), TypeError, "surrogate"),
        (lambda: LIF(3, detach_reset=1), TypeError, "detach_reset"),
        (lambda: LIF(0), ValueError, "shape"),
        (lambda: LIF((2, "a")), TypeError, "shape"),
        (lambda: LIF(3, batch_size=0), ValueError, "batch_size"),
        (lambda: LIF(3, step_mode="multi"), ValueError, "step_mode"),
        (lambda: LIF(3, dtype=torch.int32), TypeError, "dtype"),
        (lambda: AdaptiveLIF(3, theta_plus=-0.1), ValueError, "theta_plus"),
        (lambda: AdaptiveLIF(3, tau_theta=0.0), ValueError, "tau_theta"),
    ],
)
def test_bad_hyperparameters(factory, error, name):
    with pytest.raises(error, match=f"^{name}"):
        factory()


def _bad_inputs():
    return [
        ("single", torch.zeros(3, 2, 3), ValueError),  # batch 3 != 2
        ("single", torch.zeros(2, 3, 2), ValueError),  # shape
        ("single", torch.zeros(1, 2, 2, 3), ValueError),  # window given in single mode
        ("single", torch.full((2, 2, 3), float("nan")), ValueError),
        ("single", torch.full((2, 2, 3), float("inf")), ValueError),
        ("single", torch.zeros(2, 2, 3, dtype=torch.float64), TypeError),
        ("single", torch.zeros(2, 2, 3, dtype=torch.int64), TypeError),
        ("single", torch.zeros(2, 2, 3, device="meta"), ValueError),
        ("single", [[0.0]], TypeError),
        ("window", torch.zeros(2, 2, 3), ValueError),  # step given in window mode
        ("window", torch.zeros(4, 1, 2, 3), ValueError),  # batch
        ("window", torch.zeros(4, 2, 2, 3).index_fill_(0, torch.tensor([3]), float("nan")), ValueError),
    ]


@pytest.mark.parametrize("step_mode, bad, error", _bad_inputs())
def test_bad_inputs_leave_state_unchanged(step_mode, bad, error):
    neuron = AdaptiveLIF((2, 3), refractory=2.0, batch_size=2, tau=1.5, theta_plus=0.2)
    neuron(torch.rand(2, 2, 3) * 2)  # some state
    before = {key: value.clone() for key, value in neuron.state_dict().items()}
    spike_before = neuron.spike.clone()
    neuron.step_mode = step_mode
    with pytest.raises(error, match=r"^inputs"):
        neuron(bad)
    after = neuron.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert torch.equal(neuron.spike, spike_before)


def test_wrong_batch_error_mentions_batch_size():
    neuron = LIF(4, batch_size=2)
    with pytest.raises(ValueError, match=r"^inputs: .*batch_size=2"):
        neuron(torch.zeros(3, 4))


@pytest.mark.parametrize(
    "factory", [lambda: IF((2, 2), refractory=1.0), lambda: LIF(3), lambda: AdaptiveLIF(3, refractory=2.0)]
)
def test_state_dict_round_trip(factory):
    source = factory()
    shape = (source.batch_size, *source.shape)
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        source(torch.rand(shape, generator=generator) * 2)
    target = factory()
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)
    x = torch.rand(shape, generator=generator) * 2
    assert torch.equal(source(x), target(x))
    assert torch.equal(source.voltage, target.voltage)


def test_to_float64_moves_state_and_runs():
    neuron = AdaptiveLIF(3, tau=1.0, refractory=1.0, batch_size=2)
    neuron(torch.full((2, 3), 1.5))
    neuron.to(torch.float64)
    assert neuron.voltage.dtype == torch.float64
    assert neuron.theta.dtype == torch.float64
    assert neuron.refractory_remaining.dtype == torch.int32
    assert neuron.theta.tolist() == pytest.approx([0.1] * 3)
    out = neuron(torch.full((2, 3), 0.5, dtype=torch.float64))
    assert out.dtype == torch.float64
    with pytest.raises(TypeError, match=r"^inputs"):
        neuron(torch.zeros(2, 3))


def test_batch_size_setter_reallocates_and_resets():
    neuron = AdaptiveLIF((2,), batch_size=1, tau=1.0)
    neuron(torch.tensor([[1.5, 0.5]]))
    theta = neuron.theta.clone()
    neuron.batch_size = 3
    assert neuron.batch_size == 3
    assert neuron.voltage.shape == (3, 2) and bool((neuron.voltage == 0).all())
    assert neuron.spike.shape == (3, 2) and not neuron.spike.any()
    assert torch.equal(neuron.theta, theta)
    neuron(torch.zeros(3, 2))
    with pytest.raises(TypeError, match=r"^batch_size"):
        neuron.batch_size = 2.0


@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_eval_and_no_grad_give_identical_forward(step_mode):
    generator = torch.Generator().manual_seed(1)
    size = (5, 2, 3) if step_mode == "window" else (2, 3)
    inputs = (torch.rand(size, generator=generator) * 2).requires_grad_()
    outputs = {}
    for how in ("train", "eval", "no_grad"):
        neuron = AdaptiveLIF(3, batch_size=2, refractory=1.0, step_mode=step_mode, tau=1.5, theta_plus=0.3)
        if how == "eval":
            neuron.eval()
        if how == "no_grad":
            with torch.no_grad():
                out = neuron(inputs)
        else:
            out = neuron(inputs)
        outputs[how] = (out, neuron.voltage, neuron.theta, neuron.refractory_remaining)
    assert outputs["train"][0].requires_grad
    for how in ("eval", "no_grad"):
        assert outputs[how][0].grad_fn is None and outputs[how][1].grad_fn is None
        for got, expected in zip(outputs[how], outputs["train"], strict=True):
            assert torch.equal(got, expected.detach())


def test_window_without_grad_builds_no_graph():
    inputs = torch.rand(4, 1, 3) * 2
    spikes, voltages = neuron_window(inputs, torch.zeros(1, 3))
    assert spikes.grad_fn is None and voltages.grad_fn is None


def test_reset_cuts_graph_and_restores_state():
    neuron = LIF(3, v_reset=-0.5, v_threshold=1.0)
    x = torch.full((1, 3), 2.0, requires_grad=True)
    neuron(x).sum().backward()
    assert neuron.voltage.requires_grad
    neuron.reset()
    assert not neuron.voltage.requires_grad
    assert neuron.voltage.tolist() == [[-0.5] * 3]
    neuron(x)
    neuron.detach()
    assert not neuron.voltage.requires_grad


def test_spike_attribute_is_bool_of_the_output():
    neuron = IF(2, batch_size=1, step_mode="window")
    out = neuron(torch.tensor([[[1.5, 0.5]], [[0.0, 0.5]]]))
    assert neuron.spike.dtype == torch.bool
    assert neuron.spike.tolist() == [[[True, False]], [[False, True]]]
    assert out.tolist() == [[[1.0, 0.0]], [[0.0, 1.0]]]


def test_decay_factor_of_theta():
    assert theta_decay_factor(math.inf, 1.0) == 1.0
    assert theta_decay_factor(1e7, 0.5) == pytest.approx(math.exp(-0.5e-7))


def test_lif_tau_is_in_time_units():
    """tau is in the unit of dt (DESIGN conventions): tau=10 ms at dt=0.5 ms is 20 steps.

    Hand case: constant input X = 1, V_0 = 0, tau/dt = 20 steps:
    V_t = 1 - (1 - 1/20)^t (no threshold reached at v_threshold=10).
    """
    neuron = LIF(1, tau=10.0, dt=0.5, v_threshold=10.0, dtype=torch.float64)
    voltages = []
    for _ in range(5):
        neuron(torch.ones(1, 1, dtype=torch.float64))
        voltages.append(float(neuron.voltage))
    expected = [1 - (1 - 1 / 20) ** t for t in range(1, 6)]
    assert voltages == pytest.approx(expected, rel=1e-12)
    assert neuron.tau == pytest.approx(10.0)
    with pytest.raises(ValueError, match=r"^tau"):
        LIF(1, tau=0.4, dt=0.5)
