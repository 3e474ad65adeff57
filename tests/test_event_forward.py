"""The event-driven forward of dense connections (issue 15) against the plain path.

References: the current summed input by input in plain Python (float64), and
the dense ``F.linear`` path of the same connection (the event form forced on
and off by patching its thresholds).
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import plastic.functional.event_forward as event_forward
from plastic.functional.event_forward import event_linear, use_event_linear
from plastic.neural.connections import LinearDense, LinearLateral


def summed_reference(spikes: torch.Tensor, weight: torch.Tensor, amplitude: float) -> list[list[float]]:
    """``I[n][o] = A * sum of W[o][j] over the inputs j that spiked in row n``, in Python floats."""
    rows = spikes.reshape(-1, spikes.shape[-1]).tolist()
    matrix = weight.double().tolist()
    return [
        [amplitude * sum(matrix[o][j] for j, fired in enumerate(row) if fired) for o in range(len(matrix))]
        for row in rows
    ]


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 6),
    batch=st.integers(1, 3),
    n_in=st.integers(1, 12),
    n_out=st.integers(1, 7),
    density=st.floats(0.0, 1.0),
    amplitude=st.floats(-2.0, 2.0),
    seed=st.integers(0, 2**16),
)
def test_event_linear_matches_the_summed_inputs(steps, batch, n_in, n_out, density, amplitude, seed):
    generator = torch.Generator().manual_seed(seed)
    spikes = torch.rand(steps, batch, n_in, generator=generator) < density
    weight = torch.randn(n_out, n_in, generator=generator, dtype=torch.float64)
    out = event_linear(spikes, weight, amplitude)
    assert out.shape == (steps, batch, n_out) and out.dtype == torch.float64
    expected = torch.tensor(summed_reference(spikes, weight, amplitude), dtype=torch.float64)
    torch.testing.assert_close(out.reshape(-1, n_out), expected, rtol=1e-12, atol=1e-12)


def test_event_linear_bad_input():
    with pytest.raises(TypeError, match=r"^spikes"):
        event_linear(torch.ones(2, 3), torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"^spikes"):
        event_linear(torch.ones(2, 5, dtype=torch.bool), torch.ones(4, 3))


def test_use_event_linear_follows_density_rows_and_autograd():
    weight = torch.zeros(4, 100)
    sparse = torch.zeros(300, 100, dtype=torch.bool)
    sparse[:, 0] = True  # density 0.01
    assert use_event_linear(sparse, weight)
    assert not use_event_linear(sparse[:10], weight)  # too few rows for the CSR set-up
    assert not use_event_linear(torch.ones(300, 100, dtype=torch.bool), weight)  # dense
    assert not use_event_linear(sparse.float(), weight)  # not bool
    trainable = weight.clone().requires_grad_()
    assert not use_event_linear(sparse, trainable)
    with torch.no_grad():
        assert use_event_linear(sparse, trainable)


def _forced(event: bool):
    """Patch the thresholds so the event form is always (or never) taken."""
    return (
        mock.patch.object(event_forward, "EVENT_FORWARD_MIN_ROWS", 0 if event else 1 << 40),
        mock.patch.object(event_forward, "EVENT_FORWARD_DENSITY", 1.1),
    )


@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 5),
    batch=st.integers(1, 3),
    n_in=st.integers(2, 10),
    n_out=st.integers(2, 6),
    density=st.floats(0.0, 1.0),
    lateral=st.booleans(),
    bias=st.booleans(),
    amplitude=st.floats(0.1, 2.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_connection_window_event_path_equals_dense_path(
    steps, batch, n_in, n_out, density, lateral, bias, amplitude, dtype, seed
):
    generator = torch.Generator().manual_seed(seed)
    if lateral:
        n_out = n_in
        connection = LinearLateral(n_in, bias=bias, batch_size=batch, step_mode="window", dtype=dtype,
                                   synapse_kwargs={"amplitude": amplitude})  # fmt: skip
    else:
        connection = LinearDense(n_in, n_out, bias=bias, batch_size=batch, step_mode="window", dtype=dtype,
                                 synapse_kwargs={"amplitude": amplitude})  # fmt: skip
    with torch.no_grad():
        connection.weight.copy_(torch.randn(connection.weight.shape, generator=generator, dtype=dtype))
        if bias:
            connection.bias.copy_(torch.randn(n_out, generator=generator, dtype=dtype))
    spikes = torch.rand(steps, batch, n_in, generator=generator) < density
    outputs = {}
    for event in (True, False):
        connection.reset()
        first, second = _forced(event)
        with torch.no_grad(), first, second:
            outputs[event] = connection(spikes)
        outputs[(event, "current")] = connection.syncurrent.clone()
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(outputs[True], outputs[False], rtol=rtol, atol=rtol)
    # the synapse's state and the recorded currents do not depend on the path
    torch.testing.assert_close(outputs[(True, "current")], outputs[(False, "current")], rtol=0, atol=0)
