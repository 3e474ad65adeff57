"""Unsupervised digit learning in the style of Diehl & Cook (2015).

The network, built from plastic's own components:

* input: scikit-learn's handwritten digits (1,797 images of 8x8 pixels,
  shipped with scikit-learn), each image rescaled so that its pixels sum to
  ``pixel_sum`` (every digit then drives the same total input rate, whatever
  its amount of ink), each pixel a Poisson train (Bernoulli per 1 ms step) at
  ``intensity/16 * max_rate`` Hz (:func:`plastic.functional.encoders.poisson_encode`);
* a :class:`~plastic.neural.cell.Cell`: :class:`~plastic.neural.connections.LinearDense`
  64 -> N onto :class:`~plastic.neural.neurons.AdaptiveLIF` excitatory
  neurons (adaptive threshold, refractory period);
* lateral inhibition: a fixed :class:`~plastic.neural.connections.LinearDense`
  connection N -> N with weight ``-w_inh`` between all excitatory neurons and
  none onto themselves (a zero diagonal), driven by the previous step's spikes
  and added to the cell's input current (a
  :class:`~plastic.neural.connections.LinearLateral` gives the same products,
  but multiplies its weight by its mask at every step, which only matters for
  a weight that changes);
* learning: pair STDP with all-to-all traces (:class:`~plastic.learn.stdp.STDP`),
  summed over each mini-batch; the cell's updater normalises each neuron's
  incoming weights to ``w_norm`` and clamps them to ``[0, 1]`` after every
  update (Diehl & Cook's 78.4 for 784 inputs is 0.1 per input);
* evaluation: learning and threshold adaptation off; a digit that drew fewer
  than 5 spikes is shown again with the input rate raised by half its maximum
  (Diehl & Cook's rule: 32 Hz on their 63.75 Hz maximum); each neuron is labelled
  with the class it responds to most on the training split
  (:class:`~plastic.neural.classifiers.MaxRateClassifier`), and a test digit
  gets the class whose neurons fire most.

Reference: P. U. Diehl and M. Cook (2015), "Unsupervised learning of digit
recognition using spike-timing-dependent plasticity", Front. Comput.
Neurosci. 9:99.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import attrs
import torch
from torch import Tensor

from plastic.functional.encoders import poisson_encode
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.classifiers import MaxRateClassifier
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import AdaptiveLIF

__all__ = ["DemoConfig", "DigitNetwork", "load_digit_splits", "run_demo"]


@attrs.define
class DemoConfig:
    """Settings of the demo; ``None`` fields take the defaults below."""

    neurons: int | None = None
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "cpu"
    output: str = "runs/demo"
    threads: int | None = None
    progress: bool = True
    # network and learning (times in ms, dt = 1 ms)
    max_rate: float = 300.0
    tau: float = 30.0
    v_threshold: float = 0.3
    refractory: float = 5.0
    theta_plus: float = 0.02
    tau_theta: float = 1e7
    w_inh: float = 10.0
    w_init: float = 0.3
    eta_post: float = 0.01
    eta_pre: float = 1e-4
    tau_pre: float = 5.0
    tau_post: float = 20.0
    pairing: str = "all"
    w_norm: float = 6.4
    test_fraction: float = 0.25
    split_seed: int = 0
    eval_batch_size: int = 128
    # each image's pixels rescaled to this sum (the digits' mean is 312.6 of at most
    # 64 * 16); None presents the raw images
    pixel_sum: float | None = 312.0
    # Diehl & Cook: a digit that drew fewer than `min_spikes` spikes is shown
    # again with the input rate raised by `rate_step` Hz (up to `retries` times;
    # their 32 Hz on a 63.75 Hz maximum is half of it: 150 Hz on 300 Hz)
    min_spikes: int = 5
    rate_step: float = 150.0
    retries: int = 5
    train_samples: int | None = None  # subset of the training split (tests)

    def resolved(self) -> DemoConfig:
        def given_or(value: int | None, default: int) -> int:
            return default if value is None else value

        return attrs.evolve(
            self, neurons=given_or(self.neurons, 1000), epochs=given_or(self.epochs, 3),
            steps=given_or(self.steps, 150), batch_size=given_or(self.batch_size, 64),
        )  # fmt: skip


def load_digit_splits(test_fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's digits as ``(train_images, train_labels, test_images, test_labels)``.

    Images are ``[N, 64]`` floats in ``[0, 16]``; the split is stratified.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        digits.data, digits.target, test_size=test_fraction, stratify=digits.target, random_state=seed
    )
    return (
        torch.tensor(train_x, dtype=torch.float32),
        torch.tensor(train_y),
        torch.tensor(test_x, dtype=torch.float32),
        torch.tensor(test_y),
    )


class DigitNetwork:
    """The excitatory cell, its lateral inhibition and its STDP trainer."""

    def __init__(self, config: DemoConfig, device: torch.device, generator: torch.Generator) -> None:
        self.config = config
        self.device = device
        self.generator = generator
        neurons, batch = config.neurons, config.batch_size
        assert neurons is not None and batch is not None
        # input-major weights: a step's current sums the rows of the inputs that spiked
        # (plastic.functional.event_forward.gather_linear), the same values as the dense product
        connection = LinearDense(
            64, neurons, batch_size=batch, weight_init=lambda w: None, device=device, weight_layout="input_major"
        )
        with torch.no_grad():
            connection.weight.copy_(torch.rand(neurons, 64, generator=generator, device=device) * config.w_init)
        neuron = AdaptiveLIF(
            neurons, tau=config.tau, v_threshold=config.v_threshold, v_reset=0.0,
            refractory=config.refractory, theta_plus=config.theta_plus, tau_theta=config.tau_theta,
            batch_size=batch, device=device,
        )  # fmt: skip
        self.cell = Cell(connection, neuron)
        updater = self.cell.make_updater(
            params=["weight"], normalize=config.w_norm, clamp=(0.0, 1.0), normalize_first=True
        )
        updater.constrain()  # start from normalised weights
        self.lateral = LinearDense(
            neurons, neurons, batch_size=batch, weight_init=(0.0, 0.0), device=device, weight_layout="input_major"
        )
        with torch.no_grad():
            # -w_inh off the diagonal, (-)0 on it: bit for bit the masked weight a LinearLateral uses
            no_self = 1.0 - torch.eye(neurons, dtype=self.lateral.weight.dtype, device=device)
            self.lateral.weight.fill_(-config.w_inh)
            self.lateral.weight.mul_(no_self)
        self.trainer = STDP(
            eta_post=config.eta_post, eta_pre=config.eta_pre, tau_pre=config.tau_pre,
            tau_post=config.tau_post, pairing=config.pairing, batch_reduction="sum",
            window=config.steps,
        )  # fmt: skip
        self.trainer.register_cell("excitatory", self.cell)

    def set_batch(self, batch: int) -> None:
        if self.cell.batch_size != batch:
            self.cell.batch_size = batch
            self.lateral.batch_size = batch

    def present(
        self, images: Tensor, *, learn: bool, record: bool = False, max_rate: float | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Present ``[B, 64]`` images for ``steps`` steps; spike counts ``[B, N]``.

        With ``learn`` the trainer consumes the presentation and the updater
        applies it (normalised, clamped); without, thresholds stay fixed.
        """
        # plasticity needs no autograd: without this every step would extend one graph
        # through the whole presentation (the weights are parameters, the neuron trains)
        with torch.no_grad():
            return self._present(images, learn=learn, record=record, max_rate=max_rate)

    def _present(
        self, images: Tensor, *, learn: bool, record: bool, max_rate: float | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        steps, neurons = config.steps, config.neurons
        assert steps is not None and neurons is not None  # a resolved() config
        batch = images.shape[0]
        self.set_batch(batch)
        rates = self.input_rates(images, config.max_rate if max_rate is None else max_rate)
        # bool trains: spikes that need no value check at each step (a float copy would be checked
        # for {0, 1} values every step), the same currents in the connection
        inputs = poisson_encode(rates, steps, 1.0, generator=self.generator)
        self.cell.reset()
        self.lateral.reset()
        neuron = cast(AdaptiveLIF, self.cell.neuron)  # the neuron built in __init__
        saved_params = neuron.params
        if not learn:  # Diehl & Cook fix the adaptive thresholds while testing
            neuron.params = attrs.evolve(saved_params, theta_plus=0.0, theta_decay=1.0)
        counts = torch.zeros(batch, neurons, device=self.device)
        raster: list[Tensor] | None = [] if record else None
        try:
            # the steps' views in one call (indexing each step is an operation of its own)
            for step_input in inputs.unbind(0):
                # the inhibition is driven by the previous step's spikes, read as the neuron's
                # bool ``spike`` (all False after the reset)
                spikes = self.cell(step_input, self.lateral(neuron.spike))
                counts += spikes
                if raster is not None:
                    raster.append(spikes[0].bool().cpu())
        finally:
            neuron.params = saved_params
        if learn:
            self.trainer()
            self.trainer.update()
        extra = {}
        if raster is not None:
            extra = {"input": inputs[:, 0].cpu(), "output": torch.stack(raster)}
        return counts, extra

    def input_rates(self, images: Tensor, max_rate: float) -> Tensor:
        """Poisson rates (Hz) of ``[B, 64]`` images in ``[0, 16]``: ``pixel / 16 * max_rate``.

        With ``pixel_sum`` set each image is first rescaled so its pixels sum to
        it. A rate is capped at 1,000 Hz (one spike per 1 ms step), which only
        the brightest pixels of a digit shown again several times reach.
        """
        images = images.to(self.device)
        if self.config.pixel_sum is not None:
            images = images * (self.config.pixel_sum / images.sum(dim=1, keepdim=True).clamp(min=1.0))
        return (images / 16.0 * max_rate).clamp(max=1000.0)

    def responses(self, images: Tensor, progress: Any = None) -> Tensor:
        """Spike counts ``[N_images, N]`` without learning."""
        self.trainer.eval()
        self.cell.eval()
        out = []
        size = self.config.eval_batch_size
        for start in range(0, images.shape[0], size):
            chunk = images[start : start + size]
            counts, _ = self.present(chunk, learn=False)
            rate = self.config.max_rate
            for _ in range(self.config.retries):
                weak = counts.sum(1) < self.config.min_spikes
                if not bool(weak.any()):
                    break
                rate += self.config.rate_step
                counts[weak], _ = self.present(chunk[weak.cpu()], learn=False, max_rate=rate)
            out.append(counts.cpu())
            if progress is not None:
                progress.update(min(size, images.shape[0] - start))
        self.trainer.train()
        self.cell.train()
        return torch.cat(out)


def _progress(total: int, description: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="digit", disable=not enabled, leave=True)


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Train, label, test, draw; returns the run summary (also in ``run.json``)."""
    config = config.resolved()
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    torch.manual_seed(config.seed)
    train_x, train_y, test_x, test_y = load_digit_splits(config.test_fraction, config.split_seed)
    if config.train_samples is not None:
        train_x, train_y = train_x[: config.train_samples], train_y[: config.train_samples]
    network = DigitNetwork(config, device, generator)
    initial_weight = network.cell.connection.weight.detach().clone()

    with torch.no_grad():
        # training: full mini-batches of a new permutation each epoch
        batch, epochs = config.batch_size, config.epochs
        assert batch is not None and epochs is not None  # a resolved() config
        per_epoch = (train_x.shape[0] // batch) * batch
        bar = _progress(per_epoch * epochs, "training", config.progress)
        shuffle = torch.Generator().manual_seed(config.seed)
        for _ in range(epochs):
            order = torch.randperm(train_x.shape[0], generator=shuffle)
            for start in range(0, per_epoch, batch):
                network.present(train_x[order[start : start + batch]], learn=True)
                bar.update(batch)
        bar.close()
        trained = time.perf_counter()

        bar = _progress(train_x.shape[0] + test_x.shape[0], "evaluating", config.progress)
        train_counts = network.responses(train_x, bar)
        test_counts = network.responses(test_x, bar)
        bar.close()
        _, sample = network.present(test_x[:1], learn=False, record=True)

    assert config.neurons is not None  # a resolved() config
    classifier = MaxRateClassifier(config.neurons, 10).fit(train_counts, train_y)
    predicted = classifier.predict(test_counts)
    accuracy = float((predicted == test_y).float().mean())
    train_accuracy = float((classifier.predict(train_counts) == train_y).float().mean())
    finished = time.perf_counter()
    weight = network.cell.connection.weight.detach().cpu()
    summary: dict[str, Any] = {
        "test_accuracy": accuracy,
        "train_accuracy": train_accuracy,
        "seconds": finished - started,
        "train_seconds": trained - started,
        "weight_change": float((weight - initial_weight.cpu()).abs().mean()),
        "mean_test_spikes": float(test_counts.sum(1).mean()),
        "silent_test_digits": int((test_counts.sum(1) == 0).sum()),
        "train_digits": int(train_x.shape[0]),
        "test_digits": int(test_x.shape[0]),
        "config": attrs.asdict(config),
    }
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    from plastic.zoo.demo_figures import draw_demo_figures

    summary["figures"] = [
        str(p) for p in draw_demo_figures(output, weight, classifier, test_y, predicted, sample, config)
    ]
    (output / "run.json").write_text(json.dumps(summary, indent=2))
    return summary
