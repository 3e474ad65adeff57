"""Our rows of the benchmark, and the references every row is compared with.

Each row function takes ``(case, data)`` (``data``: a dict of tensors on the
benchmark device, see ``run.py``) and returns a :class:`Prepared` whose
``run()`` is timed. A function that raises ``NotImplementedError`` shows as
"not available" in the table.

Functional rows call ``plastic.functional.stdp`` directly. The trainer rows
(``ours_trainer_*``) and the demo row (``ours_demo_b4``) are HOOKS for the
toolkit's public API (cells, monitors, trainers, updaters): they raise
``NotImplementedError`` until that path is written here.

References (the ``max|dw|`` column): the raw products of
:func:`plastic.functional.stdp.stdp_window` with ``method="dense"``, as the
net change ``potentiation - depression`` (learning rates 1, identity weight
dependence, batch sum), with the exact decay ``exp(-dt/tau)`` (``"exact"``)
or the Euler decay ``1 - dt/tau`` (``"euler"``, SpikingJelly's convention);
for B3 the event-time kernel form with the default exponential kernels
(``"kernel"``) and its delay-adjusted variant (``"delay"``), batch mean.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from benchmarks.common import ConvCase, DenseCase, NetworkCase, Prepared
from plastic.functional.kernels import exp_post, exp_pre, split_kernel_values
from plastic.functional.receptive import ConvGeometry, grouped_to_weight
from plastic.functional.stdp import stdp_window, stdp_window_net

Data = dict[str, Tensor]
RowFunction = Callable[..., Prepared]

#: kernel amplitudes of B3 (Hebbian: potentiation of causal pairs, depression of anti-causal ones)
KERNEL_ETA_POST = 1.0
KERNEL_ETA_PRE = -1.0


# ----------------------------------------------------------------- references


def conv_geometry(case: ConvCase) -> ConvGeometry:
    return ConvGeometry.create(2, case.in_channels, case.out_channels, case.kernel)


def conv_weight_shape(case: ConvCase) -> tuple[int, ...]:
    return (case.out_channels, case.in_channels, case.kernel, case.kernel)


def reference_dense(case: DenseCase, data: Data, *, exact: bool) -> Tensor:
    """Net pair-STDP change ``[n_out, n_in]`` of the window (dense products)."""
    update = stdp_window(
        data["pre"], data["post"], tau_pre=case.tau, tau_post=case.tau, exact=exact, method="dense"
    )
    return (update.potentiation - update.depression)[0]


def reference_conv(case: ConvCase, data: Data, *, exact: bool) -> Tensor:
    """Net pair-STDP change in the conv weight's shape ``[C_out, C_in, k, k]``."""
    update = stdp_window(
        data["pre"], data["post"], tau_pre=case.tau, tau_post=case.tau, exact=exact,
        view=conv_geometry(case), method="dense",
    )  # fmt: skip
    return grouped_to_weight(update.potentiation - update.depression, conv_weight_shape(case))


def kernel_change(case: DenseCase, data: Data, *, delayed: bool) -> Tensor:
    """Event-time kernel STDP, net ``potentiation - depression`` ``[n_out, n_in]``, batch mean.

    ``delta = e_pre - e_post`` (minus the delay when ``delayed``), default
    exponential kernels with ``tau`` of the case.
    """
    delta = data["e_pre"].unsqueeze(1) - data["e_post"].unsqueeze(2)  # [B, n_out, n_in]
    if delayed:
        delta = delta - data["delay"]
    values_post = exp_post(delta, eta_post=KERNEL_ETA_POST, tau_post=case.tau)
    values_pre = exp_pre(delta, eta_pre=KERNEL_ETA_PRE, tau_pre=case.tau)
    potentiation_post, depression_post = split_kernel_values(values_post)
    potentiation_pre, depression_pre = split_kernel_values(values_pre)
    potentiation = (potentiation_post + potentiation_pre).mean(0)
    depression = (depression_post + depression_pre).mean(0)
    return potentiation - depression


def references(case: DenseCase | ConvCase, data: Data) -> dict[str, Callable[[], Tensor]]:
    """The references a case's rows may name (computed lazily, once each)."""
    if isinstance(case, ConvCase):
        return {
            "exact": lambda: reference_conv(case, data, exact=True),
            "euler": lambda: reference_conv(case, data, exact=False),
        }
    table: dict[str, Callable[[], Tensor]] = {
        "exact": lambda: reference_dense(case, data, exact=True),
        "euler": lambda: reference_dense(case, data, exact=False),
    }
    if "e_pre" in data:
        table["kernel"] = lambda: kernel_change(case, data, delayed=False)
        table["delay"] = lambda: kernel_change(case, data, delayed=True)
    return table


# ------------------------------------------------------------ functional rows


def functional_window(method: str) -> RowFunction:
    """``stdp_window``: traces + two products (``method``: auto / dense / sparse)."""

    def prepare(case: DenseCase | ConvCase, data: Data) -> Prepared:
        view = conv_geometry(case) if isinstance(case, ConvCase) else None
        shape = conv_weight_shape(case) if isinstance(case, ConvCase) else (case.n_out, case.n_in)
        pre, post = data["pre"], data["post"]

        def run() -> Tensor:
            update = stdp_window(pre, post, tau_pre=case.tau, tau_post=case.tau, view=view, method=method)
            return grouped_to_weight(update.potentiation - update.depression, shape)

        return Prepared(run, reference="exact", note=f"stdp_window, two products, method={method}")

    return prepare


def functional_window_net(method: str) -> RowFunction:
    """``stdp_window_net``: one product per window (``method``: auto / dense / sparse)."""

    def prepare(case: DenseCase | ConvCase, data: Data) -> Prepared:
        view = conv_geometry(case) if isinstance(case, ConvCase) else None
        shape = conv_weight_shape(case) if isinstance(case, ConvCase) else (case.n_out, case.n_in)
        pre, post = data["pre"], data["post"]

        def run() -> Tensor:
            update = stdp_window_net(pre, post, tau_pre=case.tau, tau_post=case.tau, view=view, method=method)
            return grouped_to_weight(update.delta_weight, shape)

        return Prepared(run, reference="exact", note=f"stdp_window_net, one product, method={method}")

    return prepare


def functional_kernel(delayed: bool) -> RowFunction:
    """B3 event-time kernel STDP with the functional kernels (per batch call)."""

    def prepare(case: DenseCase, data: Data) -> Prepared:
        name = "delay" if delayed else "kernel"
        return Prepared(
            lambda: kernel_change(case, data, delayed=delayed),
            reference=name,
            note="exp_post/exp_pre + split_kernel_values on [B, n_out, n_in] deltas"
            + (", minus per-synapse delays" if delayed else ""),
        )

    return prepare


# ------------------------------------------------- HOOKS: the public-API rows


def ours_trainer_b1(case: DenseCase, data: Data) -> Prepared:
    """HOOK (lead): B1 through the trainer API: monitors + trainer + updater apply.

    Build a ``Cell(LinearDense(n_in, n_out), neuron)`` fed with the recorded
    trains ``data["pre"]`` / ``data["post"]`` ([T, B, n], float {0, 1}),
    register it with the pair-STDP trainer (tau = ``case.tau``, batch sum,
    identity weight dependence, learning rates 1), and return a ``Prepared``
    whose ``run()`` does one window (monitor records + trainer call +
    ``updater.apply()``) and returns ``weight_after - weight_before``
    ``[n_out, n_in]`` with ``reference="exact"``.
    """
    raise NotImplementedError("trainer row not written yet")


def ours_trainer_b1_event(case: DenseCase, data: Data) -> Prepared:
    """HOOK (lead): as :func:`ours_trainer_b1`, with the event-driven path chosen automatically."""
    raise NotImplementedError("trainer row not written yet")


def ours_trainer_b2(case: ConvCase, data: Data) -> Prepared:
    """HOOK (lead): B2 through the trainer API on a ``Conv2d`` cell (see :func:`ours_trainer_b1`)."""
    raise NotImplementedError("trainer row not written yet")


def ours_trainer_b3_kernel(case: DenseCase, data: Data) -> Prepared:
    """HOOK (lead): B3 ``KernelSTDP`` trainer call per batch (monitors hold ``data["e_pre"]``/``["e_post"]``).

    Kernels ``exp_post(eta_post=1, tau_post=case.tau)``, ``exp_pre(eta_pre=-1,
    tau_pre=case.tau)``, batch mean; ``run()`` = trainer call + updater apply,
    returns the net change ``[n_out, n_in]`` with ``reference="kernel"``.
    """
    raise NotImplementedError("trainer row not written yet")


def ours_trainer_b3_delay(case: DenseCase, data: Data) -> Prepared:
    """HOOK (lead): B3 ``DelayAdjustedSTDP`` per batch, delays ``data["delay"]`` ``[n_out, n_in]``; ``reference="delay"``."""
    raise NotImplementedError("trainer row not written yet")


def ours_demo_b4(case: NetworkCase, data: Data) -> Prepared:
    """HOOK (lead): one training step of the demo network (``plastic.zoo.demo``) at B4 size.

    ``data["input"]`` is the Poisson input ``[T, batch, n_in]``; ``run()`` =
    network forward over the window + trainer + updater apply (+ the
    normalisation the demo does); ``Prepared(samples=case.batch)``.
    """
    raise NotImplementedError("demo network row not written yet")


# ------------------------------------------------------------------ registry

#: per case: (implementation name, row function)
OURS: dict[str, list[tuple[str, RowFunction]]] = {
    "B1": [
        ("ours: trainer API (monitors+trainer+updater)", ours_trainer_b1),
        ("ours: trainer API, event-driven auto", ours_trainer_b1_event),
        ("ours: stdp_window (2 products, auto)", functional_window("auto")),
        ("ours: stdp_window (2 GEMMs, dense)", functional_window("dense")),
        ("ours: stdp_window_net (1 product, auto)", functional_window_net("auto")),
        ("ours: stdp_window_net (1 GEMM, dense)", functional_window_net("dense")),
        ("ours: stdp_window_net (event-driven, sparse)", functional_window_net("sparse")),
    ],
    "B2": [
        ("ours: trainer API (Conv2d cell)", ours_trainer_b2),
        ("ours: stdp_window conv (2 products, auto)", functional_window("auto")),
        ("ours: stdp_window conv (dense)", functional_window("dense")),
        ("ours: stdp_window_net conv (1 product, auto)", functional_window_net("auto")),
        ("ours: stdp_window_net conv (dense)", functional_window_net("dense")),
    ],
    "B3": [
        ("ours: KernelSTDP trainer call", ours_trainer_b3_kernel),
        ("ours: DelayAdjustedSTDP trainer call", ours_trainer_b3_delay),
        ("ours: functional kernel STDP", functional_kernel(delayed=False)),
        ("ours: functional delay-adjusted STDP", functional_kernel(delayed=True)),
    ],
    "B4": [
        ("ours: demo network training step", ours_demo_b4),
    ],
}
