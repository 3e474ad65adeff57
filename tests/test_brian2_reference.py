"""Brian2 as an independent reference for plastic's rules (issue 13's optional cross-check).

Run with ``make test-brian2`` (its own venv ``.venv-brian2``: brian2 2.9 needs
``numpy<2.3``, pyproject's ``brian2`` extra); the normal suite skips this module
when brian2 is not importable.

Each test drives Brian2 (code generation target ``numpy``,
``defaultclock.dt`` = plastic's ``dt``) with the same fixed random or regular
spike trains, fed through ``SpikeGeneratorGroup`` objects, and compares what
Brian2's ``Synapses`` accumulate with what plastic computes:

* pair STDP, all-to-all and the three nearest-neighbour schemes (plastic's
  ``stdp_window(pairing=...)``), raw potentiation and depression per synapse;
* the inhibitory STDP of Vogels et al. (2011) (``inhibitory_stdp_window``);
* Tsodyks-Markram short-term plasticity (``TsodyksMarkramCurrent``: ``u``,
  ``x``, released fraction and postsynaptic current);
* the LIF membrane (``LIF``, forward Euler) against a Brian2 ``NeuronGroup``
  integrated with ``method="euler"``.

Making the two discretisations the same model
---------------------------------------------
* **Decay.** Brian2 integrates the ``(event-driven)`` traces exactly between
  events (``exp(-(t - lastupdate)/tau)``); plastic multiplies by
  ``exp(-dt/tau)`` each step (``exact=True``). With every spike on the step
  grid both are ``exp(-k dt/tau)`` for a gap of ``k`` steps: the same model,
  differing only by float64 rounding (a power against ``k`` products, about
  ``k`` ulps relative).
* **Simultaneous pre and post spikes.** plastic's traces include the current
  step's spike on both sides, so a pre and a post spike in one step form a pair
  counted in both the potentiation and the depression. Brian2 runs the ``pre``
  pathway before the ``post`` pathway of a step (pathway ``order`` -1 and 1), so
  the docs' two-pathway form (``on_pre="apre += Apre; w += apost"``) reads
  ``apost`` before the post spike of the same step. Here each side has two
  pathways: the trace updates (``pre_trace``, ``post_trace``, ordered first) and
  the reads (``pre``, ``post``), so every read sees both traces of the step,
  plastic's convention. ``test_brian2_docs_ordering_differs_only_at_coincident_spikes``
  runs the docs' form too and checks that the difference is exactly
  ``A_post`` per coincident step in the depression.
* **Nearest-neighbour schemes** in Brian2 (the formulations NEST uses):
  symmetric: traces set to ``A`` at a spike instead of incremented;
  presynaptic-centred: nearest postsynaptic trace, cumulative presynaptic trace
  set to 0 after each postsynaptic read (NEST's ``Kplus`` reset); restricted:
  nearest traces, and a read counts only when the partner spiked since this
  neuron's previous spike, flags ``fresh_presynaptic``/``fresh_postsynaptic`` set at a
  spike and cleared by the partner's read. Each is written from the scheme's
  definition, not from plastic's implementation (which computes them over a
  window with anti-causal traces and step counts). Every scheme could be written
  faithfully; none is skipped.
* **Tsodyks-Markram.** Brian2's event-driven ``u`` and ``x`` relax exactly
  between spikes, plastic relaxes them by ``exp(-dt/tau)`` each step and then
  applies the step's spike: the same model. The purely depressing synapse
  (``tau_facilitation=None``: ``u = U`` at every spike) is written in Brian2
  with ``released = U x``. The current ``dI/dt = -I/tau`` in a ``NeuronGroup``
  (``method="exact"``) decays in Brian2's ``groups`` slot before the synapses
  add ``A r`` in the same step: plastic's ``I_t = e^(-dt/tau) I_{t-1} + A r_t``.
* **LIF.** plastic's charge is the Euler step ``H_t = V_{t-1} + (X_t - (V_{t-1} -
  V_reset)) dt/tau``; Brian2 with ``method="euler"``, the input a ``TimedArray``
  with the step's value, threshold ``v >= V_th`` and reset ``v = V_reset`` is the
  same recurrence.

Tolerances: both sides compute in float64 from the same spikes; what differs is
rounding (``exp(-k dt/tau)`` against ``k`` products, sums in another order),
a few ulps (measured: below ``5e-15`` of the largest value of each STDP
comparison, ``2e-14`` over the 4000 steps of the Tsodyks-Markram runs). ``rel=1e-9, abs=1e-12``
leaves room for rounding and none for a difference of convention: a coincident
pair counted once instead of twice, a nearest trace incremented instead of
reset, a pending pre spike dropped at a window edge each change a sum by the
order of ``A`` (the docs-ordering test below shows one such difference).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # brian2's pyparsing calls (pytestmark below)
    try:
        import brian2
    except Exception as error:  # brian2 missing, or one that fails to import with this numpy
        pytest.skip(f"brian2 not importable ({error!r}): run `make test-brian2`", allow_module_level=True)

from brian2 import (
    Hz,
    Network,
    NeuronGroup,
    SpikeGeneratorGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    TimedArray,
    defaultclock,
    ms,
    prefs,
)
from helpers import F64, default_dtype, drive, make_cell, net_pending

from plastic import LIF, STDP, InhibitorySTDP, TsodyksMarkramCurrent
from plastic.functional.inhibitory import inhibitory_stdp_window
from plastic.functional.stdp import stdp_window

pytestmark = [
    pytest.mark.brian2,
    # brian2 2.9 still calls pyparsing's camelCase names, deprecated since pyparsing 3.3
    pytest.mark.filterwarnings("ignore::pyparsing.PyparsingDeprecationWarning"),
]

RTOL = 1e-9
ATOL = 1e-12

prefs.codegen.target = "numpy"  # no compiler needed; slower, but these runs are small
brian2.BrianLogger.log_level_error()  # keep the output to the test results


def random_trains(seed: int, steps: int, neurons: int, probability: float) -> np.ndarray:
    """``[steps, neurons]`` bool: independent Bernoulli spikes per step."""
    return np.random.default_rng(seed).random((steps, neurons)) < probability


def spike_generator(spikes: np.ndarray, dt: float) -> SpikeGeneratorGroup:
    """A ``SpikeGeneratorGroup`` emitting ``spikes[t, n]`` at ``t * dt`` (on the step grid)."""
    steps, neurons = np.nonzero(spikes)
    return SpikeGeneratorGroup(spikes.shape[1], neurons, steps * dt * ms)


def synaptic_matrix(synapses: Synapses, name: str, shape: tuple[int, int]) -> np.ndarray:
    """A synaptic variable as ``[N_post, N_pre]`` (plastic's dense weight layout)."""
    out = np.full(shape, np.nan)
    out[synapses.j[:], synapses.i[:]] = getattr(synapses, name)[:]
    return out


def max_difference(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Largest absolute difference and the largest value, for the record."""
    return float(np.max(np.abs(actual - expected))), float(np.max(np.abs(expected)))


# ------------------------------------------------------------------ pair STDP and its pairing schemes

TRACES = """
potentiation : 1
depression : 1
dapre/dt = -apre / taupre : 1 (event-driven)
dapost/dt = -apost / taupost : 1 (event-driven)
"""

# Brian2 reserves the suffixes _pre and _post for the variables of the pre- and postsynaptic groups:
# the traces are apre, apost (amplitudes Apre, Apost, time constants taupre, taupost) as in its docs.
# per scheme: model additions, the trace updates at a spike, the reads (Brian2 abstract code)
SCHEMES = {
    "all": ("", "apre += Apre", "apost += Apost",
            "depression += apost", "potentiation += apre"),
    "nearest": ("", "apre = Apre", "apost = Apost",
                "depression += apost", "potentiation += apre"),
    # each pre spike pairs with the first post spike at or after it: the cumulative presynaptic
    # trace holds the pre spikes since the last post spike and is emptied by the post spike that reads it
    "presynaptic_centred": ("", "apre += Apre", "apost = Apost",
                            "depression += apost", "potentiation += apre\napre = 0"),
    # a pair counts only when no spike of either neuron lies between its two spikes
    "restricted": ("fresh_presynaptic : 1\nfresh_postsynaptic : 1\n",
                   "apre = Apre\nfresh_presynaptic = 1",
                   "apost = Apost\nfresh_postsynaptic = 1",
                   "depression += apost * fresh_postsynaptic\nfresh_postsynaptic = 0",
                   "potentiation += apre * fresh_presynaptic\nfresh_presynaptic = 0"),
}  # fmt: skip


def traces_first(synapses: Synapses) -> Synapses:
    """Run both trace updates of a step before both reads (plastic: traces include the step's spikes)."""
    synapses.pre_trace.order = -3
    synapses.post_trace.order = -2
    synapses.pre.order = -1
    synapses.post.order = 1
    return synapses


def brian2_pair_stdp(spikes_pre, spikes_post, dt, namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scheme of :data:`SCHEMES` plus the docs' two-pathway all-to-all form, in one Brian2 run:
    ``{name: (potentiation, depression)}`` as ``[N_post, N_pre]``."""
    defaultclock.dt = dt * ms
    pre, post = spike_generator(spikes_pre, dt), spike_generator(spikes_post, dt)
    shape = (spikes_post.shape[1], spikes_pre.shape[1])
    network = Network(pre, post)
    groups = {}
    for name, (extra, pre_trace, post_trace, pre_read, post_read) in SCHEMES.items():
        synapses = Synapses(
            pre, post, TRACES + extra,
            on_pre={"pre_trace": pre_trace, "pre": pre_read},
            on_post={"post_trace": post_trace, "post": post_read},
            namespace=namespace, name=f"stdp_{name}",
        )  # fmt: skip
        synapses.connect()
        groups[name] = traces_first(synapses)
    # the Brian2 docs' form: each pathway updates its trace and reads the other's, pre before post
    docs = Synapses(
        pre, post, TRACES,
        on_pre="apre += Apre\ndepression += apost",
        on_post="apost += Apost\npotentiation += apre",
        namespace=namespace, name="stdp_docs_ordering",
    )  # fmt: skip
    docs.connect()
    groups["docs_ordering"] = docs
    network.add(*groups.values())
    network.run(spikes_pre.shape[0] * dt * ms, namespace={})
    return {
        name: (synaptic_matrix(s, "potentiation", shape), synaptic_matrix(s, "depression", shape))
        for name, s in groups.items()
    }


def plastic_pair_stdp(spikes_pre, spikes_post, dt, pairing, tau_pre, tau_post, amplitude_pre, amplitude_post):
    with default_dtype(F64):
        out = stdp_window(
            torch.from_numpy(spikes_pre)[:, None], torch.from_numpy(spikes_post)[:, None],
            tau_pre=tau_pre, tau_post=tau_post, dt=dt, amplitude_pre=amplitude_pre,
            amplitude_post=amplitude_post, pairing=pairing,
        )  # fmt: skip
    return out.potentiation[0].numpy(), out.depression[0].numpy()


# seed, dt (ms), steps, pre and post spike probability per step; the dense cases make many
# coincident steps and several spikes between partners' spikes, where the schemes differ most
STDP_CASES = [
    (0, 1.0, 600, 0.05, 0.04),
    (1, 0.5, 800, 0.2, 0.15),
    (2, 0.25, 600, 0.4, 0.3),
    (3, 0.1, 2000, 0.01, 0.02),
    (4, 1.0, 400, 0.6, 0.5),
]
STDP_PARAMETERS = {"tau_pre": 16.8, "tau_post": 33.7, "amplitude_pre": 1.0, "amplitude_post": 0.7}


@pytest.fixture(scope="module", params=STDP_CASES, ids=lambda case: f"seed{case[0]}-dt{case[1]}")
def stdp_run(request):
    seed, dt, steps, probability_pre, probability_post = request.param
    spikes_pre = random_trains(seed, steps, 6, probability_pre)
    spikes_post = random_trains(seed + 1000, steps, 5, probability_post)
    p = STDP_PARAMETERS
    namespace = {
        "taupre": p["tau_pre"] * ms, "taupost": p["tau_post"] * ms,
        "Apre": p["amplitude_pre"], "Apost": p["amplitude_post"],
    }  # fmt: skip
    return spikes_pre, spikes_post, dt, brian2_pair_stdp(spikes_pre, spikes_post, dt, namespace)


@pytest.mark.parametrize("pairing", list(SCHEMES))
def test_pair_stdp_schemes_match_brian2(stdp_run, pairing):
    spikes_pre, spikes_post, dt, reference = stdp_run
    potentiation, depression = plastic_pair_stdp(spikes_pre, spikes_post, dt, pairing, **STDP_PARAMETERS)
    expected_potentiation, expected_depression = reference[pairing]
    print(pairing, "potentiation", max_difference(potentiation, expected_potentiation),
          "depression", max_difference(depression, expected_depression))  # fmt: skip
    assert expected_potentiation.max() > 0 and expected_depression.max() > 0
    np.testing.assert_allclose(potentiation, expected_potentiation, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(depression, expected_depression, rtol=RTOL, atol=ATOL)
    if pairing == "nearest":  # plastic's other name for the symmetric scheme
        symmetric = plastic_pair_stdp(spikes_pre, spikes_post, dt, "symmetric", **STDP_PARAMETERS)
        np.testing.assert_array_equal(symmetric[0], potentiation)
        np.testing.assert_array_equal(symmetric[1], depression)


def test_the_schemes_differ_on_these_trains(stdp_run):
    """The comparison above could not pass by accident of trains where the schemes coincide."""
    reference = stdp_run[3]
    for a in SCHEMES:
        for b in SCHEMES:
            if a < b:
                assert not np.allclose(reference[a][0], reference[b][0]) or not np.allclose(
                    reference[a][1], reference[b][1]
                ), (a, b)


def test_brian2_docs_ordering_differs_only_at_coincident_spikes(stdp_run):
    """With the docs' two pathways, a pre spike reads the postsynaptic trace before the post spike of its
    step: the depression lacks exactly ``A_post`` per coincident step; the potentiation is the same."""
    spikes_pre, spikes_post, dt, reference = stdp_run
    potentiation, depression = plastic_pair_stdp(spikes_pre, spikes_post, dt, "all", **STDP_PARAMETERS)
    coincident = spikes_post.astype(float).T @ spikes_pre.astype(float)  # [N_post, N_pre] coincident steps
    assert coincident.sum() > 0
    docs_potentiation, docs_depression = reference["docs_ordering"]
    np.testing.assert_allclose(potentiation, docs_potentiation, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        depression - STDP_PARAMETERS["amplitude_post"] * coincident, docs_depression, rtol=RTOL, atol=ATOL
    )


def trainer_change(trainer, spikes_pre, spikes_post, dt, pairing=None):
    """The weight change the trainer's updater holds after the trains, called in uneven chunks
    (the carried traces and scheme state cross the chunk edges)."""
    cell = make_cell(None, 1, dt, n_in=spikes_pre.shape[1], n_out=spikes_post.shape[1])
    trainer.register_cell("cell", cell, **({} if pairing is None else {"pairing": pairing}))
    trains = (torch.from_numpy(spikes_pre)[:, None], torch.from_numpy(spikes_post)[:, None])
    drive(cell, trainer, trains, chunking=range(0, spikes_pre.shape[0], 173))
    return net_pending(cell).detach().numpy()


@pytest.mark.parametrize("pairing", list(SCHEMES))
def test_stdp_trainer_weight_change_matches_brian2(stdp_run, pairing):
    """The trainer's total weight change per synapse, ``eta_post * potentiation - eta_pre * depression``
    (additive: no weight dependence), against Brian2's accumulated pairs."""
    spikes_pre, spikes_post, dt, reference = stdp_run
    eta_post, eta_pre = 0.01, 0.006
    trainer = STDP(eta_post=eta_post, eta_pre=eta_pre, window=200, **STDP_PARAMETERS)
    change = trainer_change(trainer, spikes_pre, spikes_post, dt, pairing)
    expected = eta_post * reference[pairing][0] - eta_pre * reference[pairing][1]
    print(pairing, "trainer", max_difference(change, expected))
    np.testing.assert_allclose(change, expected, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ inhibitory STDP (Vogels et al. 2011)

VOGELS = {"eta": 1e-2, "tau": 20.0, "target_rate": 5.0}


@pytest.fixture(scope="module", params=[(10, 1.0), (11, 0.1)], ids=lambda case: f"seed{case[0]}-dt{case[1]}")
def vogels_run(request):
    seed, dt = request.param
    steps = round(400 / dt)
    spikes_pre = random_trains(seed, steps, 4, 40.0 * dt / 1000)  # 40 Hz
    spikes_post = random_trains(seed + 1000, steps, 3, 60.0 * dt / 1000)  # 60 Hz
    defaultclock.dt = dt * ms
    pre, post = spike_generator(spikes_pre, dt), spike_generator(spikes_post, dt)
    # the paper's rule (as in Brian2's example of it: traces +1 at a spike, alpha = 2 rho_0 tau),
    # potentiation and depression kept apart, traces updated before the reads (module docstring)
    synapses = Synapses(
        pre, post,
        """
        potentiation : 1
        depression : 1
        dapre/dt = -apre / tau : 1 (event-driven)
        dapost/dt = -apost / tau : 1 (event-driven)
        """,
        on_pre={"pre_trace": "apre += 1", "pre": "potentiation += eta * apost\ndepression += eta * alpha"},
        on_post={"post_trace": "apost += 1", "post": "potentiation += eta * apre"},
        namespace={"tau": VOGELS["tau"] * ms, "eta": VOGELS["eta"],
                   "alpha": 2 * VOGELS["target_rate"] * Hz * VOGELS["tau"] * ms},
    )  # fmt: skip
    synapses.connect()
    traces_first(synapses)
    Network(pre, post, synapses).run(steps * dt * ms, namespace={})
    shape = (spikes_post.shape[1], spikes_pre.shape[1])
    expected = synaptic_matrix(synapses, "potentiation", shape), synaptic_matrix(synapses, "depression", shape)
    assert (spikes_post[:, :, None] & spikes_pre[:, None, :]).any()  # coincident steps occur
    return spikes_pre, spikes_post, dt, expected


def test_vogels_inhibitory_stdp_matches_brian2(vogels_run):
    spikes_pre, spikes_post, dt, (expected_potentiation, expected_depression) = vogels_run
    with default_dtype(F64):
        out = inhibitory_stdp_window(
            torch.from_numpy(spikes_pre)[:, None], torch.from_numpy(spikes_post)[:, None], dt=dt, **VOGELS
        )
    potentiation, depression = out.potentiation[0].numpy(), out.depression[0].numpy()
    print("vogels potentiation", max_difference(potentiation, expected_potentiation),
          "depression", max_difference(depression, expected_depression))  # fmt: skip
    np.testing.assert_allclose(potentiation, expected_potentiation, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(depression, expected_depression, rtol=RTOL, atol=ATOL)


def test_vogels_trainer_weight_change_matches_brian2(vogels_run):
    spikes_pre, spikes_post, dt, (expected_potentiation, expected_depression) = vogels_run
    change = trainer_change(InhibitorySTDP(**VOGELS, window=200), spikes_pre, spikes_post, dt)
    expected = expected_potentiation - expected_depression
    print("vogels trainer", max_difference(change, expected))
    np.testing.assert_allclose(change, expected, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ Tsodyks-Markram short-term plasticity

SHORT_TERM = {
    # zoo_docs/short_term.md's two sets; tau: the current's decay (ms), amplitude A
    "depressing": {"utilisation_increment": 0.5, "tau_recovery": 800.0, "tau_facilitation": None},
    "facilitating": {"utilisation_increment": 0.03, "tau_recovery": 130.0, "tau_facilitation": 530.0},
}


def regular_trains(steps: int, dt: float) -> np.ndarray:
    """``[steps, 4]``: regular trains at 10, 20 and 50 Hz, and 8 spikes at 20 Hz then one 500 ms later."""
    spikes = np.zeros((steps, 4), dtype=bool)
    for column, rate in enumerate((10.0, 20.0, 50.0)):
        interval = round(1000.0 / rate / dt)
        spikes[round(5 / dt) :: interval, column] = True
    burst = [round((5 + 50 * k) / dt) for k in range(8)]
    spikes[[*burst, burst[-1] + round(500 / dt)], 3] = True
    return spikes


@pytest.mark.parametrize("kind", list(SHORT_TERM))
def test_tsodyks_markram_matches_brian2(kind):
    dt, tau, amplitude = 0.25, 3.0, 2.0
    steps = round(1000 / dt)
    spikes = regular_trains(steps, dt)
    parameters = SHORT_TERM[kind]
    defaultclock.dt = dt * ms
    source = spike_generator(spikes, dt)
    target = NeuronGroup(spikes.shape[1], "dcurrent/dt = -current / tau : 1", method="exact",
                         namespace={"tau": tau * ms})  # fmt: skip
    namespace = {"U": parameters["utilisation_increment"], "tau_recovery": parameters["tau_recovery"] * ms,
                 "amplitude": amplitude}  # fmt: skip
    if parameters["tau_facilitation"] is None:  # Tsodyks & Markram (1997): u = U at every spike
        model = "dx/dt = (1 - x) / tau_recovery : 1 (event-driven)\nu : 1\nreleased : 1"
        on_pre = "u = U\nreleased = U * x\nx -= released\ncurrent_post += amplitude * released"
    else:  # Tsodyks, Pawelzik & Markram (1998)
        namespace["tau_facilitation"] = parameters["tau_facilitation"] * ms
        model = (
            "dx/dt = (1 - x) / tau_recovery : 1 (event-driven)\n"
            "du/dt = -u / tau_facilitation : 1 (event-driven)\nreleased : 1"
        )
        on_pre = "u += U * (1 - u)\nreleased = u * x\nx -= released\ncurrent_post += amplitude * released"
    synapses = Synapses(source, target, model, on_pre=on_pre, namespace=namespace)
    synapses.connect(j="i")
    synapses.x = 1.0
    synapses.u = 0.0
    synaptic_state = StateMonitor(synapses, ["u", "x", "released"], record=True, when="end")
    current = StateMonitor(target, "current", record=True, when="end")
    Network(source, target, synapses, synaptic_state, current).run(steps * dt * ms, namespace={})

    synapse = TsodyksMarkramCurrent(spikes.shape[1], **parameters, tau=tau, amplitude=amplitude, dt=dt, dtype=F64)
    values = torch.from_numpy(spikes).to(F64)[:, None]
    currents, resources, utilisation = [], [], []
    for t in range(steps):
        currents.append(synapse(values[t])[0].numpy())
        resources.append(synapse.resources[0].numpy().copy())
        utilisation.append(synapse.utilisation[0].numpy().copy())
    currents, resources, utilisation = np.array(currents), np.array(resources), np.array(utilisation)
    # Brian2's event-driven u, x are brought up to date only at spikes: compare them there
    at_spikes = spikes.T  # [N, T] like the monitors
    expected_u, expected_x = synaptic_state.u[:][at_spikes], synaptic_state.x[:][at_spikes]
    expected_released = synaptic_state.released[:][at_spikes]
    expected_current = current.current[:].T
    # the released fraction of a spike: the current's jump at that step
    decay = math.exp(-dt / tau)
    previous = np.vstack([np.zeros((1, spikes.shape[1])), currents[:-1]])
    released = ((currents - decay * previous) / amplitude).T[at_spikes]
    print(kind, "u", max_difference(utilisation.T[at_spikes], expected_u),
          "x", max_difference(resources.T[at_spikes], expected_x),
          "released", max_difference(released, expected_released),
          "current", max_difference(currents, expected_current))  # fmt: skip
    np.testing.assert_allclose(utilisation.T[at_spikes], expected_u, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(resources.T[at_spikes], expected_x, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(released, expected_released, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(currents, expected_current, rtol=RTOL, atol=ATOL)
    # the regime each set is for: the burst's 8th efficacy below (depressing) or above (facilitating) its first
    burst = expected_released[-9:]  # the masked values run input by input: the last 9 are input 3's
    assert (burst[7] < burst[0]) if kind == "depressing" else (burst[7] > burst[0])


# ------------------------------------------------------------------ LIF membrane


@pytest.mark.parametrize("seed, dt, tau, steps", [(20, 1.0, 5.0, 500), (21, 0.1, 10.0, 3000)])
def test_lif_membrane_matches_brian2_euler(seed, dt, tau, steps):
    neurons = 6
    inputs = np.random.default_rng(seed).normal(0.6, 1.0, size=(steps, neurons)) + np.linspace(0, 1.2, neurons)
    defaultclock.dt = dt * ms
    drive = TimedArray(inputs, dt=dt * ms)  # the step's input, held over the step
    group = NeuronGroup(
        neurons, "dv/dt = (drive(t, i) - (v - v_reset)) / tau : 1",
        threshold="v >= v_threshold", reset="v = v_reset", method="euler",
        namespace={"drive": drive, "tau": tau * ms, "v_reset": -0.1, "v_threshold": 1.0},
    )  # fmt: skip
    group.v = -0.1
    voltage = StateMonitor(group, "v", record=True, when="end")
    spikes = SpikeMonitor(group)
    Network(group, voltage, spikes).run(steps * dt * ms, namespace={})
    expected_spikes = np.zeros((steps, neurons), dtype=bool)
    expected_spikes[np.round(spikes.t[:] / (dt * ms)).astype(int), spikes.i[:]] = True

    neuron = LIF(neurons, tau=tau, v_threshold=1.0, v_reset=-0.1, dt=dt, dtype=F64)
    values = torch.from_numpy(inputs)[:, None]
    fired, voltages = [], []
    for t in range(steps):
        fired.append(neuron(values[t])[0].numpy().astype(bool))
        voltages.append(neuron.voltage[0].numpy().copy())
    fired, voltages = np.array(fired), np.array(voltages)
    print("lif spikes", int(expected_spikes.sum()), "voltage", max_difference(voltages, voltage.v[:].T))
    assert expected_spikes.sum() > 20
    np.testing.assert_array_equal(fired, expected_spikes)
    np.testing.assert_allclose(voltages, voltage.v[:].T, rtol=RTOL, atol=ATOL)
