"""LIF ``decay_input``: ``True`` gives ``H = V + (X - (V - V_reset)) / tau`` (the default), ``False`` gives
``H = V - (V - V_reset) / tau + X`` (SpikingJelly's option): hand-computed runs, window == step loop bit for bit,
the fused backward against autograd through a per-step reference, the modules, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from plastic.functional.neurons import (
    NeuronParams,
    NeuronState,
    lif_charge,
    neuron_step,
    neuron_step_state,
    neuron_step_unchecked,
    neuron_window,
    neuron_window_state,
)
from plastic.neural.neurons import IF, LIF, AdaptiveLIF


def plain_lif_run(inputs, voltage0, *, tau, v_threshold, v_reset, reset, decay_input):
    """The LIF equation integrated step by step on Python floats (one neuron)."""
    voltage, spikes, voltages = voltage0, [], []
    for x in inputs:
        if decay_input:
            h = voltage + (x - (voltage - v_reset)) / tau
        else:
            h = voltage - (voltage - v_reset) / tau + x
        spike = 1.0 if h >= v_threshold else 0.0
        if reset == "hard":
            voltage = v_reset if spike else h
        else:
            voltage = h - spike * v_threshold
        spikes.append(spike)
        voltages.append(voltage)
    return spikes, voltages


# ----------------------------------------------------------------------------
# Hand-computed runs (dyadic values: exact in binary floating point)
# ----------------------------------------------------------------------------


def test_hand_computed_hard_reset_input_not_divided_by_tau():
    # tau = 2, V_reset = 0, X = 0.625 every step, V_th = 1:
    # H1 = 0 - 0 + 0.625 = 0.625; H2 = 0.625 - 0.3125 + 0.625 = 0.9375;
    # H3 = 0.9375 - 0.46875 + 0.625 = 1.09375 >= 1: spike, V = 0; H4 = 0.625.
    inputs = torch.full((4, 1, 1), 0.625, dtype=torch.float64)
    spikes, voltages = neuron_window(inputs, torch.zeros(1, 1, dtype=torch.float64), tau=2.0, decay_input=False)
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert voltages.flatten().tolist() == [0.625, 0.9375, 0.0, 0.625]
    # decay_input=True divides the same input by tau: H1 = 0.3125, H2 = 0.3125 + (0.625 - 0.3125) / 2 = 0.46875
    _, voltages_decayed = neuron_window(inputs, torch.zeros(1, 1, dtype=torch.float64), tau=2.0)
    assert voltages_decayed.flatten().tolist()[:2] == [0.3125, 0.46875]
    assert plain_lif_run([0.625] * 4, 0.0, tau=2.0, v_threshold=1.0, v_reset=0.0, reset="hard", decay_input=False) == (
        spikes.flatten().tolist(),
        voltages.flatten().tolist(),
    )


def test_hand_computed_leak_towards_a_nonzero_reset():
    # tau = 4, V_reset = -1 (also the rest), V_th = 0, V0 = -1, X = 0.5:
    # H1 = -1 - 0 + 0.5 = -0.5; H2 = -0.5 - 0.125 + 0.5 = -0.125;
    # H3 = -0.125 - 0.21875 + 0.5 = 0.15625 >= 0: spike, V = -1.
    inputs = torch.full((3, 1, 1), 0.5, dtype=torch.float64)
    spikes, voltages = neuron_window(
        inputs, torch.full((1, 1), -1.0, dtype=torch.float64), tau=4.0, v_threshold=0.0, v_reset=-1.0,
        decay_input=False,
    )  # fmt: skip
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0]
    assert voltages.flatten().tolist() == [-0.5, -0.125, -1.0]


def test_hand_computed_soft_reset():
    # tau = 2, V_reset = 0, V_th = 1 (soft), X = 0.75:
    # H1 = 0.75; H2 = 0.75 - 0.375 + 0.75 = 1.125: spike, V = 0.125; H3 = 0.125 - 0.0625 + 0.75 = 0.8125.
    neuron = LIF(1, tau=2.0, reset="soft", decay_input=False, dtype=torch.float64)
    got = [(neuron(torch.tensor([[0.75]], dtype=torch.float64)).item(), neuron.voltage.item()) for _ in range(3)]
    assert got == [(0.0, 0.75), (1.0, 0.125), (0.0, 0.8125)]


def test_decay_input_false_is_decay_input_true_driven_by_tau_times_the_input():
    # For tau = 4 (a power of two) the two forms are exactly the same arithmetic up to the order of additions,
    # and with dyadic inputs every intermediate is exact.
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(-8, 24, (12, 2, 3), generator=generator).to(torch.float64) / 32
    voltage0 = torch.zeros(2, 3, dtype=torch.float64)
    plain = neuron_window(inputs, voltage0, tau=4.0, v_threshold=0.5, decay_input=False)
    scaled = neuron_window(inputs * 4.0, voltage0, tau=4.0, v_threshold=0.5)
    assert plain[0].sum() > 0
    assert torch.equal(plain[0], scaled[0]) and torch.equal(plain[1], scaled[1])


def test_if_ignores_decay_input():
    inputs = torch.rand(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    voltage0 = torch.zeros(2, 3, dtype=torch.float64)
    with_decay = neuron_window(inputs, voltage0, kind="if")
    without = neuron_window(inputs, voltage0, kind="if", decay_input=False)
    assert torch.equal(with_decay[0], without[0]) and torch.equal(with_decay[1], without[1])


# ----------------------------------------------------------------------------
# Window == step loop == plain Python, bit for bit (float64)
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("v_reset", [0.0, -0.0, -0.3])
@pytest.mark.parametrize("tau", [1.0, 1.7, 3.0])
def test_window_step_loop_and_plain_python_agree_exactly(reset, v_reset, tau):
    generator = torch.Generator().manual_seed(5)
    inputs = torch.rand(20, 3, 4, generator=generator, dtype=torch.float64) - 0.1
    voltage0 = torch.rand(3, 4, generator=generator, dtype=torch.float64) * 0.5
    params = NeuronParams(tau=tau, v_threshold=0.5, v_reset=v_reset, reset=reset, decay_input=False)
    window = neuron_window_state(inputs, NeuronState(voltage0), params)
    assert window.spikes.sum() > 0

    state, unchecked = NeuronState(voltage0), NeuronState(voltage0)
    for t in range(inputs.shape[0]):
        spike, state = neuron_step_state(inputs[t], state, params)
        fast_spike, _, unchecked = neuron_step_unchecked(inputs[t], unchecked, params)
        assert torch.equal(spike, window.spikes[t]) and torch.equal(fast_spike, window.spikes[t])
        assert torch.equal(state.voltage, window.voltages[t]) and torch.equal(unchecked.voltage, window.voltages[t])

    for b in range(3):
        for i in range(4):
            expected = plain_lif_run(
                inputs[:, b, i].tolist(), voltage0[b, i].item(), tau=tau, v_threshold=0.5, v_reset=v_reset,
                reset=reset, decay_input=False,
            )  # fmt: skip
            assert (window.spikes[:, b, i].tolist(), window.voltages[:, b, i].tolist()) == expected


def test_lif_charge_function_both_forms():
    voltage = torch.tensor([0.5, -0.25], dtype=torch.float64)
    inputs = torch.tensor([1.0, 0.5], dtype=torch.float64)
    # (0.5 + (1 - 0.5) / 2, -0.25 + (0.5 + 0.25) / 2) and (0.5 - 0.25 + 1, -0.25 + 0.125 + 0.5)
    assert lif_charge(voltage, inputs, 2.0, 0.0).tolist() == [0.75, 0.125]
    assert lif_charge(voltage, inputs, 2.0, 0.0, decay_input=False).tolist() == [1.25, 0.375]


# ----------------------------------------------------------------------------
# Gradients: dH/dX = 1 without input decay, dH/dV = 1 - 1/tau either way
# ----------------------------------------------------------------------------


def reference_voltages(inputs, voltage0, *, tau, reset):
    """Per-step autograd reference with the reset detached (the voltages are smooth in the inputs)."""
    voltage, out = voltage0, []
    for x in inputs:
        h = voltage - voltage / tau + x
        spike = (h >= 1.0).to(h.dtype)
        voltage = (1 - spike) * h if reset == "hard" else h - spike * 1.0
        out.append(voltage)
    return torch.stack(out)


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_fused_backward_matches_per_step_autograd_and_gradcheck(reset):
    for seed in range(50):
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.rand(6, 2, 3, generator=generator, dtype=torch.float64) * 0.7
        voltage0 = torch.rand(2, 3, generator=generator, dtype=torch.float64) * 0.5
        voltages = reference_voltages(inputs, voltage0, tau=1.7, reset=reset)
        previous = torch.cat([voltage0[None], voltages[:-1]])
        h = previous - previous / 1.7 + inputs
        if (h - 1.0).abs().min() > 1e-3 and (h >= 1.0).any():
            break
    else:  # pragma: no cover
        pytest.fail("no input away from the threshold")
    inputs.requires_grad_()
    voltage0.requires_grad_()

    def fused(x, v0):
        return neuron_window(x, v0, tau=1.7, reset=reset, detach_reset=True, decay_input=False)[1]

    weights = torch.randn(inputs.shape, generator=generator, dtype=torch.float64)
    expected = torch.autograd.grad((reference_voltages(inputs, voltage0, tau=1.7, reset=reset) * weights).sum(),
                                   (inputs, voltage0))  # fmt: skip
    got = torch.autograd.grad((fused(inputs, voltage0) * weights).sum(), (inputs, voltage0))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(fused, (inputs, voltage0), eps=1e-6, atol=1e-7)


def test_one_step_input_gradient_is_one_without_input_decay():
    # Below threshold with the reset detached, V_1 = H_1 and dV_1/dX_1 = dH/dX: 1/tau with decay, 1 without.
    for decay_input, slope in ((True, 0.25), (False, 1.0)):
        inputs = torch.full((1, 1, 1), 0.125, dtype=torch.float64, requires_grad=True)
        voltage0 = torch.full((1, 1), 0.25, dtype=torch.float64, requires_grad=True)
        _, voltages = neuron_window(inputs, voltage0, tau=4.0, detach_reset=True, decay_input=decay_input)
        grad_x, grad_v = torch.autograd.grad(voltages.sum(), (inputs, voltage0))
        assert grad_x.item() == slope
        assert grad_v.item() == 0.75  # dH/dV = 1 - 1/tau either way


# ----------------------------------------------------------------------------
# Modules and bad input
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [LIF, AdaptiveLIF])
def test_modules_take_decay_input(factory):
    neuron = factory((2, 3), tau=2.0, decay_input=False, batch_size=2, dtype=torch.float64)
    assert neuron.decay_input is False and neuron.params.decay_input is False
    assert "decay_input=False" in repr(neuron)
    assert "decay_input=True" in repr(factory(3))
    assert factory(3).decay_input is True
    # one step from rest with input 0.5 and tau = 2: H = 0.5 (not 0.25)
    neuron(torch.full((2, 2, 3), 0.5, dtype=torch.float64))
    assert torch.equal(neuron.voltage, torch.full((2, 2, 3), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_state_dict_round_trip_continues_identically(step_mode):
    generator = torch.Generator().manual_seed(2)
    inputs = torch.rand(8, 2, 3, generator=generator, dtype=torch.float64)
    first = AdaptiveLIF(3, tau=3.0, decay_input=False, refractory=1.0, batch_size=2, step_mode=step_mode,
                        dtype=torch.float64)  # fmt: skip

    def run(neuron, window):
        if step_mode == "window":
            return neuron(window)
        return torch.stack([neuron(x) for x in window])

    run(first, inputs[:4])
    second = AdaptiveLIF(3, tau=3.0, decay_input=False, refractory=1.0, batch_size=2, step_mode=step_mode,
                         dtype=torch.float64)  # fmt: skip
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    assert torch.equal(run(first, inputs[4:]), run(second, inputs[4:]))
    assert torch.equal(first.voltage, second.voltage)


@pytest.mark.parametrize("bad", ["no", 1, None, 0.0])
def test_bad_decay_input_is_a_type_error_naming_it(bad):
    with pytest.raises(TypeError, match="decay_input"):
        NeuronParams(decay_input=bad)
    with pytest.raises(TypeError, match="decay_input"):
        LIF(3, decay_input=bad)
    with pytest.raises(TypeError, match="decay_input"):
        AdaptiveLIF(3, decay_input=bad)
    with pytest.raises(TypeError, match="decay_input"):
        neuron_step(torch.zeros(1, 3), torch.zeros(1, 3), decay_input=bad)


def test_if_module_has_no_decay_input_option():
    with pytest.raises(TypeError):
        IF(3, decay_input=False)  # the IF charge has no leak to apply to the input
