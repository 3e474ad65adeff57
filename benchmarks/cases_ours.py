"""Our rows of the benchmark, and the references every row is compared with.

Each row function takes ``(case, data)`` (``data``: a dict of tensors on the
benchmark device, see ``run.py``) and returns a :class:`Prepared` whose
``run()`` is timed. A function that raises ``NotImplementedError`` shows as
"not available" in the table.

Functional rows call ``plastic.functional.stdp`` directly. The trainer rows
(``ours_trainer_*``) go through the toolkit's public API: a window-mode
:class:`~plastic.neural.cell.Cell` whose neuron is scripted to fire the
recorded postsynaptic trains, the trainer's monitors (forward hooks), the
trainer call and the updater's apply. The demo row (``ours_demo_b4``) times
one training presentation of :class:`plastic.zoo.demo.DigitNetwork`.

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

import torch
from torch import Tensor

from benchmarks.common import ConvCase, DenseCase, NetworkCase, Prepared
from plastic.functional.kernel_stdp import kernel_pair_sums, kernel_split
from plastic.functional.kernels import exp_post, exp_pre, split_kernel_values
from plastic.functional.receptive import ConvGeometry, grouped_to_weight
from plastic.functional.stdp import stdp_window, stdp_window_net
from plastic.learn.kernel_stdp import DelayAdjustedSTDP, KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Connection, Conv2d, LinearDense
from plastic.testing.strategies import ScriptedNeuron

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
    update = stdp_window(data["pre"], data["post"], tau_pre=case.tau, tau_post=case.tau, exact=exact, method="dense")
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
        pre, post = data["pre"].bool(), data["post"].bool()  # as cells record them (see _window_run)

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
        pre, post = data["pre"].bool(), data["post"].bool()  # as cells record them (see _window_run)

        def run() -> Tensor:
            update = stdp_window_net(pre, post, tau_pre=case.tau, tau_post=case.tau, view=view, method=method)
            return grouped_to_weight(update.delta_weight, shape)

        return Prepared(run, reference="exact", note=f"stdp_window_net, one product, method={method}")

    return prepare


def functional_kernel(delayed: bool) -> RowFunction:
    """B3 event-time kernel STDP through :func:`plastic.functional.kernel_stdp.kernel_pair_sums`.

    The kernels are passed as plain callables (:func:`kernel_split` of
    ``exp_post``/``exp_pre``), the way a user's own kernels are: no
    exponential fast path; ``method="auto"`` (grouped by postsynaptic time
    without delays, direct with them).
    """

    def prepare(case: DenseCase, data: Data) -> Prepared:
        name = "delay" if delayed else "kernel"
        times_pre = data["e_pre"].view(case.batch, 1, 1, case.n_in, 1)
        times_post = data["e_post"].view(case.batch, 1, case.n_out, 1)
        delay = data["delay"].unsqueeze(0) if delayed else None
        split = kernel_split(
            exp_post, exp_pre, {"eta_post": KERNEL_ETA_POST, "tau_post": case.tau},
            {"eta_pre": KERNEL_ETA_PRE, "tau_pre": case.tau},
        )  # fmt: skip

        def run() -> Tensor:
            potentiation, depression = kernel_pair_sums(times_pre, times_post, split, delay=delay)
            return (potentiation - depression)[0] / case.batch

        return Prepared(
            run, reference=name,
            note="kernel_pair_sums with kernel_split(exp_post, exp_pre) (user-kernel path), batch mean"
            + (", minus per-synapse delays (direct)" if delayed else " (grouped by post time)"),
        )  # fmt: skip

    return prepare


# ---------------------------------------------------------- public-API rows


def _replaying(connection_class: type) -> type:
    """``connection_class`` whose forward computes no postsynaptic current (zeros of the output shape).

    The neuron of a benchmark cell is scripted (it emits the recorded
    postsynaptic trains whatever its input), so the current would be computed
    and thrown away; the synapse still runs and ``synspike`` is set as usual,
    so the monitors and the trainer see exactly what a real cell gives them.
    The same holds for the BindsNET row (no current computation). A real
    forward adds one product of the forward's size (the bound row's half).
    """

    class Replaying(connection_class):  # type: ignore[misc, valid-type]
        # one zero broadcast to the output's shape (a stride-0 view): the scripted neuron
        # only checks its shape, and a window-sized zero tensor would cost its page faults
        def _propagate(self, currents: Tensor) -> Tensor:
            lead = currents.shape[: currents.ndim - len(self.in_shape)]
            return currents.new_zeros(()).expand(*lead, *self.out_shape)

        def _propagate_delayed(self, currents: Tensor) -> Tensor:
            lead = currents.shape[: currents.ndim - self.weight.ndim]
            return currents.new_zeros(()).expand(*lead, *self.out_shape)

        def _propagate_spikes(self, spikes: Tensor, currents: Tensor) -> Tensor:
            return self._propagate(currents)  # no event-driven current either

    Replaying.__name__ = Replaying.__qualname__ = f"Replaying{connection_class.__name__}"
    return Replaying


def _scripted_cell(connection: Connection, data: Data, batch: int) -> Cell:
    """A window-mode cell over ``connection`` whose neuron fires the recorded ``data["post"]``."""
    device = data["pre"].device
    neuron = ScriptedNeuron(tuple(connection.out_shape), batch_size=batch, step_mode="window", device=device)
    cell = Cell(connection, neuron)
    cell.make_updater(params=["weight"])  # sum over calls, no bounding: weight += pos - neg
    return cell


def _dense_cell(case: DenseCase, data: Data, *, delays: bool = False, weight_layout: str = "output_major") -> Cell:
    device = data["pre"].device
    extra: dict[str, object] = {"weight_layout": weight_layout}
    if delays:
        extra.update(delay=case.max_delay, learn_delay=False, learn_delay_init=data["delay"])
    connection = _replaying(LinearDense)(
        case.n_in, case.n_out, batch_size=case.batch, step_mode="window", weight_init=(0.0, 0.0),
        device=device, **extra,
    )  # fmt: skip
    return _scripted_cell(connection, data, case.batch)


def _window_run(cell: Cell, trainer: STDP, data: Data) -> Callable[[], Tensor]:
    """One window through the public API: cell forward (monitor hooks), ``trainer()``, ``trainer.update()``."""
    weight = cell.connection.weight
    # the recorded trains as bool, the dtype encoders and neurons give spikes in (a float {0, 1}
    # train is checked value by value at the cell's input: validation.check_spikes, 3 passes)
    pre, post = data["pre"].bool(), data["post"].bool()

    def run() -> Tensor:
        with torch.no_grad():
            weight.zero_()  # the applied change is then the weight itself
        trainer.clear()  # a fresh recording and zero carried traces: one window from zero, as every row
        cell.reset()
        cell.neuron.script(post)
        cell(pre)
        trainer()
        trainer.update()
        # no copy: the harness compares the returned change before the next call (the
        # clone was a weight-sized pass of benchmark code inside the timed call)
        return weight.detach()

    return run


def _trainer_row(method: str) -> RowFunction:
    """B1 / B2 through the trainer API (pair STDP, one product per window, ``method``)."""

    def prepare(case: DenseCase | ConvCase, data: Data) -> Prepared:
        if isinstance(case, ConvCase):
            connection = _replaying(Conv2d)(
                case.in_channels, case.out_channels, case.kernel, in_size=(case.height, case.width),
                batch_size=case.batch, step_mode="window", weight_init=(0.0, 0.0), device=data["pre"].device,
            )  # fmt: skip
            cell = _scripted_cell(connection, data, case.batch)
        else:
            cell = _dense_cell(case, data)
        trainer = STDP(tau_pre=case.tau, tau_post=case.tau, batch_reduction="sum", window=case.steps, method=method)
        trainer.register_cell("cell", cell)
        unit = trainer.get_unit("cell")
        form = "one product" if trainer.uses_one_product(unit) else "two products"
        return Prepared(
            _window_run(cell, trainer, data), reference="exact",
            note=f"{type(cell.connection).__name__[9:]} cell (scripted neuron, no current) + STDP("
            f"method={method!r}) monitors + trainer() + update(); {form}",
        )  # fmt: skip

    return prepare


def ours_trainer_b1(case: DenseCase, data: Data) -> Prepared:
    """B1 through the trainer API: a ``LinearDense`` cell, monitors + ``STDP`` + updater apply, dense product.

    ``run()``: zero the weight, clear the trainer's recording, run the window
    ``data["pre"]`` through the cell (window mode, neuron scripted to fire
    ``data["post"]``), ``trainer()``, ``trainer.update()``; returns the weight
    (= the change) ``[n_out, n_in]``, reference ``"exact"``.
    """
    return _trainer_row("dense")(case, data)


def ours_trainer_b1_event(case: DenseCase, data: Data) -> Prepared:
    """As :func:`ours_trainer_b1` with ``method="auto"`` (the event-driven product chosen by spike density)."""
    return _trainer_row("auto")(case, data)


def ours_trainer_b2(case: ConvCase, data: Data) -> Prepared:
    """B2 through the trainer API on a ``Conv2d`` cell, ``method="auto"`` (see :func:`ours_trainer_b1`)."""
    return _trainer_row("auto")(case, data)


def _kernel_row(case: DenseCase, data: Data, *, delayed: bool) -> Prepared:
    """B3: the event-time monitors are filled by one untimed window; ``run()`` = trainer call + update."""
    cell = _dense_cell(case, data, delays=delayed)
    if delayed:
        trainer: KernelSTDP = DelayAdjustedSTDP(
            lr_post=KERNEL_ETA_POST, lr_pre=KERNEL_ETA_PRE, tau_post=case.tau, tau_pre=case.tau,
            batch_reduction="mean",
        )  # fmt: skip
    else:
        trainer = KernelSTDP(
            kernel_post_kwargs={"eta_post": KERNEL_ETA_POST, "tau_post": case.tau},
            kernel_pre_kwargs={"eta_pre": KERNEL_ETA_PRE, "tau_pre": case.tau},
            batch_reduction="mean",
        )  # fmt: skip
    trainer.register_cell("cell", cell)
    cell.neuron.script(data["post"].bool())
    with torch.no_grad():
        cell(data["pre"].bool())  # fills the event-time monitors (untimed, as the inferno rows)
    weight = cell.connection.weight

    def run() -> Tensor:
        with torch.no_grad():
            weight.zero_()
        trainer()
        trainer.update()
        return weight.detach().clone()

    name = "DelayAdjustedSTDP" if delayed else "KernelSTDP"
    return Prepared(
        run, reference="delay" if delayed else "kernel",
        note=f"{name} trainer call + update on a LinearDense cell, exponential kernels, batch mean",
    )  # fmt: skip


def ours_trainer_b3_kernel(case: DenseCase, data: Data) -> Prepared:
    """B3 ``KernelSTDP`` trainer call per batch (exponential kernels, eta 1 / -1, tau of the case)."""
    return _kernel_row(case, data, delayed=False)


def ours_trainer_b3_delay(case: DenseCase, data: Data) -> Prepared:
    """B3 ``DelayAdjustedSTDP`` per batch, fixed delays ``data["delay"]`` ``[n_out, n_in]``."""
    return _kernel_row(case, data, delayed=True)


def ours_demo_b4(case: NetworkCase, data: Data) -> Prepared:
    """One training step of the demo network (:class:`plastic.zoo.demo.DigitNetwork`) at B4 size.

    ``run()`` = ``network.present(images, learn=True)``: Poisson encoding,
    ``steps`` single steps of the cell with lateral inhibition (monitors
    recording), the STDP trainer, the updater's apply with normalisation and
    clamping. ``samples = case.batch``.
    """
    from plastic.zoo.demo import DemoConfig, DigitNetwork

    device = data["images"].device
    config = DemoConfig(
        neurons=case.n_neurons, steps=case.steps, batch_size=case.batch, max_rate=case.max_rate, progress=False
    ).resolved()
    generator = torch.Generator(device=device).manual_seed(case.seed)
    network = DigitNetwork(config, device, generator)
    images = data["images"]

    def run() -> None:
        network.present(images, learn=True)

    return Prepared(
        run, reference=None, samples=case.batch,
        note=f"DigitNetwork.present(learn=True): {case.steps} single steps, STDP + normalising updater",
    )  # fmt: skip


# ------------------------------------------------------------------ registry

#: per case: (implementation name, row function)
OURS: dict[str, list[tuple[str, RowFunction]]] = {
    "B1": [
        ("ours: trainer API (monitors+trainer+updater, dense)", ours_trainer_b1),
        ("ours: trainer API, event-driven auto", ours_trainer_b1_event),
        ("ours: stdp_window (2 products, auto)", functional_window("auto")),
        ("ours: stdp_window (2 GEMMs, dense)", functional_window("dense")),
        ("ours: stdp_window_net (1 product, auto)", functional_window_net("auto")),
        ("ours: stdp_window_net (1 GEMM, dense)", functional_window_net("dense")),
        ("ours: stdp_window_net (event-driven, sparse)", functional_window_net("sparse")),
    ],
    "B2": [
        ("ours: trainer API (Conv2d cell, auto)", ours_trainer_b2),
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
