"""The pairing-frequency protocol of Clopath et al. (2010) Fig. 2b (Sjöström et al. 2001) through
plastic's AdEx, cell and trainer, against the authors' own discretisation re-run in plain Python.

``authors_discretisation`` rewrites, from the facts of the authors' published simulation
(ModelDB 144566, VoTri.m and aEIF.m), their scheme: dt = 1 ms, Euler for everything, the spike
detected at 20 mV and held 2 ms (29.4 then 32.862 mV), the reset to E_L + 21.0984 mV with
w += b, z = 400 pA, V_T = V_T,rest + 20 mV, the filters updated one step late and read 3 steps
further back, the presynaptic trace one step late, 15 bursts of 5 pairings (10 at 0.1 Hz), a
post-pre burst closed by a sixth postsynaptic spike. Ours differs in small ways (exact decays,
one plateau value, the trace including the current step), so the numbers agree within a few
percentage points, not exactly.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from plastic.functional.adex import AdExParams, adex_initial_state, adex_window
from plastic.functional.clopath import ClopathParameters, clopath_window
from plastic.zoo.figures_clopath import AUTHORS_CODE, FREQUENCIES, ORDERS, pairing_trains, run_pairing_protocol


def authors_discretisation(rate: float, lag: int) -> float:
    """Weight change (%) after the protocol, the authors' scheme in plain Python (module docstring)."""
    a_ltd, a_ltp, tau_plus, tau_x, tau_minus = 14e-5, 8e-5, 7.0, 15.0, 10.0
    theta_minus, theta_plus, rest = -70.6, -45.3, -70.6
    pairs, period = 5, round(1000 / rate)
    length = pairs * period + abs(lag) + 1
    pre = [0] * length
    post = [0] * length
    for k in range(abs(lag), length - 1, period):
        pre[k] = 1
    for k in range(abs(lag) + lag, length, period):
        post[k] = 1
    block = max(length, 10000)
    repetitions = 10 if rate == 0.1 else 15
    pre = (pre + [0] * (block - length)) * repetitions
    post = (post + [0] * (block - length)) * repetitions
    steps = len(pre)
    u = [rest] * steps
    u_minus = [rest] * (steps + 1)
    u_plus = [rest] * (steps + 1)
    trace = [0.0] * (steps + 1)
    adaptation, afterpotential, threshold, counter, weight = 0.0, 0.0, -50.4, 0, 0.5
    for t in range(3, steps):
        voltage = u[t - 1]
        if counter == 2:  # the end of the 2 ms spike: reset and jumps
            voltage, adaptation, afterpotential, threshold, counter = (
                rest + 21.0984,
                adaptation + 0.0805,
                400.0,
                -30.4,
                0,
            )
        exponential = 60.0 * math.exp(min((voltage - threshold) / 2.0, 700.0))
        du = (-30.0 * (voltage - rest) + exponential - adaptation + afterpotential + post[t] * 1e6) / 281.0
        dw = (4.0 * (voltage - rest) - adaptation) / 144.0
        voltage, adaptation = voltage + du, adaptation + dw
        afterpotential -= afterpotential / 40.0
        threshold = -50.4 / 50.0 + (1 - 1 / 50.0) * threshold
        if counter == 1:
            counter, voltage, adaptation = 2, 29.4 + 3.462, adaptation - dw
        if voltage > 20.0 and counter == 0:
            voltage, counter = 29.4, 1
        u[t] = voltage
        u_minus[t + 1] = voltage / tau_minus + (1 - 1 / tau_minus) * u_minus[t]
        u_plus[t + 1] = voltage / tau_plus + (1 - 1 / tau_plus) * u_plus[t]
        trace[t + 1] = pre[t] / tau_x + (1 - 1 / tau_x) * trace[t]
        weight += -a_ltd * pre[t] * max(u_minus[t - 3] - theta_minus, 0.0) + a_ltp * max(
            voltage - theta_plus, 0.0
        ) * trace[t] * max(u_plus[t - 3] - theta_minus, 0.0)
    return 100.0 * (weight - 0.5) / 0.5


def test_one_frequency_both_orders_against_the_authors_scheme():
    result = run_pairing_protocol((20.0,))
    ours = {order: result["changes"][(order, 20.0)] for order in ORDERS}
    assert ours["pre-post"] > 5.0 and ours["post-pre"] < -25.0  # LTP before, LTD after, at 20 Hz
    assert ours["pre-post"] == pytest.approx(authors_discretisation(20.0, 10), abs=3.0)
    assert ours["post-pre"] == pytest.approx(authors_discretisation(20.0, -10), abs=3.0)


def test_bursts_ten_seconds_apart_are_independent():
    # the protocol counts one burst 15 times: two bursts 10 s apart change the weight twice as much
    spikes, current, _ = pairing_trains((50.0,), dt=1.0)
    silence = 10_000 - spikes.shape[0]
    twice_spikes = torch.cat((spikes, torch.zeros(silence, *spikes.shape[1:], dtype=torch.bool), spikes))
    twice_current = torch.cat((current, torch.zeros(silence, *current.shape[1:], dtype=current.dtype), current))
    changes = []
    for pre, drive in ((spikes, current), (twice_spikes, twice_current)):
        neuron = AdExParams()
        voltages = adex_window(drive, adex_initial_state(drive.shape[1:], neuron, dtype=torch.float64), neuron).voltages
        update = clopath_window(pre, voltages, None, ClopathParameters())
        changes.append((update.potentiation - update.depression).reshape(2, 2).diagonal())
    # to 1e-6: the AdEx rests 7e-5 mV above E_L (its exponential term is 0.0025 pA there), not at
    # E_L where the run starts, so the second burst starts from a slightly different state
    torch.testing.assert_close(changes[1], 2 * changes[0], rtol=1e-6, atol=0)


@pytest.mark.slow
def test_the_authors_scheme_gives_the_quoted_numbers():
    for order, lag in zip(ORDERS, (10, -10), strict=True):
        for frequency, quoted in zip(FREQUENCIES, AUTHORS_CODE[order], strict=True):
            assert authors_discretisation(frequency, lag) == pytest.approx(quoted, abs=0.05), (order, frequency)


@pytest.mark.slow
def test_the_protocol_reproduces_the_frequency_dependence():
    changes = run_pairing_protocol()["changes"]
    pre_post = [changes[("pre-post", f)] for f in FREQUENCIES]
    post_pre = [changes[("post-pre", f)] for f in FREQUENCIES]
    # post-pre depresses at low frequencies, both orders potentiate at 50 Hz; pre-post grows with frequency
    assert all(change < -20.0 for change in post_pre[:3])
    assert abs(pre_post[0]) < 1.0 and all(b > a for a, b in itertools.pairwise(pre_post))
    assert pre_post[-1] > 40.0 and post_pre[-1] > 40.0
    for order, values in (("pre-post", pre_post), ("post-pre", post_pre)):
        for value, authors in zip(values, AUTHORS_CODE[order], strict=True):
            assert value == pytest.approx(authors, abs=4.0), order


def test_figure_script_writes_png(tmp_path):
    from plastic.zoo.figures_clopath import main

    path = main(tmp_path, frequencies=(10.0, 20.0))  # smoke-sized: the full protocol is the test above
    assert path.exists() and path.stat().st_size > 10_000
