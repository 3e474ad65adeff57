"""The trace loops around the compiled window sums (:mod:`plastic.functional.window_traces`), compiled
and as plain Python, against torch's operations on the same values: the same floats bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.window_traces import compiled_window_traces, post_trace_after, trace_magnitudes_before

_KERNELS = compiled_window_traces()
_VARIANTS = [("python", trace_magnitudes_before, post_trace_after)]
if _KERNELS is not None:
    _VARIANTS.append(("compiled", _KERNELS.magnitudes_before, _KERNELS.post_trace_after))


def _scalar(dtype: torch.dtype, value: float):
    return torch.empty((), dtype=dtype).numpy().dtype.type(value)


@pytest.mark.parametrize(("name", "magnitudes", "post_after"), _VARIANTS)
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    inputs=st.integers(1, 300),
    outputs=st.integers(1, 300),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e4, 1e30]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_trace_loops_equal_torch(name, magnitudes, post_after, seed, inputs, outputs, scale, dtype):
    """Drawn values (no round numbers: products that round), as torch computes them."""
    generator = torch.Generator().manual_seed(seed)
    trace_pre = (torch.randn(inputs, generator=generator, dtype=torch.float64) * scale).to(dtype)
    trace_post = (torch.randn(outputs, generator=generator, dtype=torch.float64) * scale).to(dtype)
    eta, power, amplitude = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
    eta, amplitude = eta * 0.1 - 0.05, amplitude * 4 - 2
    carried = np.empty(outputs, dtype=trace_post.numpy().dtype)
    largest_pre, largest_post = magnitudes(trace_pre.numpy(), trace_post.numpy(), _scalar(dtype, -eta), carried)
    assert largest_pre == float(trace_pre.abs().max())
    assert largest_post == float(trace_post.abs().max())
    assert torch.equal(torch.from_numpy(carried), torch.mul(trace_post, -eta))
    # x_post(T-1) as pre_event_window_update computes it: a 0-dim power of the dtype, a Python amplitude
    power_tensor = torch.tensor(power, dtype=dtype)
    post_decayed = (torch.rand(outputs, generator=generator, dtype=torch.float64) * 30).to(dtype)
    expected = trace_post * power_tensor + amplitude * post_decayed
    written = trace_post.clone()
    post_after(written.numpy(), power_tensor.numpy()[()], _scalar(dtype, amplitude), post_decayed.numpy())
    assert torch.equal(written, expected)


@pytest.mark.parametrize(("name", "magnitudes", "post_after"), _VARIANTS)
@pytest.mark.parametrize("where", ["pre", "post"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_trace_magnitudes_report_non_finite_values(name, magnitudes, post_after, where, bad):
    trace_pre = np.array([0.5, -2.0, 1.0], dtype=np.float32)
    trace_post = np.array([0.25, 3.0], dtype=np.float32)
    (trace_pre if where == "pre" else trace_post)[1] = bad
    largest = magnitudes(trace_pre, trace_post, np.float32(-0.5), np.empty(2, dtype=np.float32))
    assert not all(math.isfinite(value) for value in largest)
