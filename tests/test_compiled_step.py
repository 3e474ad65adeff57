"""The compiled neuron step (issue 15): ``torch.compile`` of the single step, against the eager step.

The reference is the same neuron stepping eagerly on the same inputs: every
spike and every state tensor must be bit for bit equal in float64 (the fused
kernel performs the same operations in the same order). Compilation takes
seconds, so the inputs are few and the sizes small; the fallback is checked
with a backend that always fails.
"""

from __future__ import annotations

import copy

import pytest
import torch

from plastic.neural.compiled import CompiledStep
from plastic.neural.neurons import IF, LIF, AdaptiveLIF


def _neurons(kind: str, batch: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    if kind == "adaptive":
        neuron = AdaptiveLIF(7, tau=3.0, v_threshold=0.4, refractory=2.0, theta_plus=0.05, tau_theta=50.0,
                             batch_size=batch, dtype=torch.float64)  # fmt: skip
    elif kind == "soft_if":
        neuron = IF(7, v_threshold=0.5, v_reset=-0.1, reset="soft", batch_size=batch, dtype=torch.float64)
    else:
        neuron = LIF(7, tau=2.5, v_threshold=0.6, v_reset=0.05, batch_size=batch, dtype=torch.float64)
    return neuron, copy.deepcopy(neuron)


def _state(neuron: torch.nn.Module) -> list[torch.Tensor]:
    return [tensor.clone() for _, tensor in sorted(neuron.named_buffers()) if tensor is not None]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["adaptive", "soft_if", "lif"])
def test_compiled_neuron_step_is_the_eager_step_bit_for_bit(kind):
    generator = torch.Generator().manual_seed(5)
    eager, compiled = _neurons(kind, batch=3)
    compiled.compile_step(dynamic=False)
    with torch.no_grad():
        for _ in range(12):
            inputs = torch.rand(3, 7, generator=generator, dtype=torch.float64) * 0.8
            assert torch.equal(compiled(inputs), eager(inputs))
            for mine, reference in zip(_state(compiled), _state(eager), strict=True):
                assert mine.dtype == reference.dtype and torch.equal(mine, reference)
    assert compiled.compile_error is None, compiled.compile_error
    # back to eager
    compiled.compile_step(False)
    assert compiled.compile_error is None
    with torch.no_grad():
        inputs = torch.rand(3, 7, generator=generator, dtype=torch.float64)
        assert torch.equal(compiled(inputs), eager(inputs))


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError("no compiler here")


def test_compiled_step_falls_back_to_eager_when_compilation_fails():
    eager, compiled = _neurons("adaptive", batch=2)
    compiled.compile_step(backend=_failing_backend)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="running it eagerly"):
        for _ in range(4):
            inputs = torch.rand(2, 7, generator=generator, dtype=torch.float64)
            assert torch.equal(compiled(inputs), eager(inputs))
    assert compiled.compile_error is not None
    assert torch.equal(compiled.voltage, eager.voltage) and torch.equal(compiled.theta, eager.theta)
    # a copy keeps the eager fallback and steps on
    again = copy.deepcopy(compiled)
    assert again.compile_error is not None
    with torch.no_grad():
        again(torch.zeros(2, 7, dtype=torch.float64))


def test_compiled_step_bad_arguments():
    with pytest.raises(TypeError, match="function"):
        CompiledStep(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="enabled"):
        LIF(3).compile_step("yes")  # type: ignore[arg-type]


@pytest.mark.slow
def test_compiled_neuron_step_on_the_device(device):
    """``pytest --device cuda`` compiles for the GPU (Triton); the CPU run is the same check as above."""
    eager, compiled = _neurons("adaptive", batch=2)
    eager, compiled = eager.to(device), compiled.to(device)
    compiled.compile_step()
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _ in range(5):
            inputs = (torch.rand(2, 7, generator=generator, dtype=torch.float64) * 0.8).to(device)
            assert torch.equal(compiled(inputs), eager(inputs))
    assert compiled.compile_error is None, compiled.compile_error
    assert torch.equal(compiled.voltage, eager.voltage) and torch.equal(compiled.theta, eager.theta)
    assert compiled.voltage.device.type == device.type
