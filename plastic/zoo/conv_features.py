"""Convolutional STDP features in the style of Kheradpisheh, Ganjtabesh, Thorpe
& Masquelier (2018): a Conv2d layer of integrate-and-fire neurons learns
features from scikit-learn's 8x8 digits without labels, and a linear readout
on its first spikes is compared with the same readout on the raw pixels and on
the same layer with random weights.

Input. Pixels / 16, filtered by a fixed on/off-centre difference of Gaussians
(:func:`~plastic.functional.encoders.on_off_centre`, 3x3, ``sigma`` 0.5 and 1
pixel: the paper's 7x7 DoG with ``sigma`` 1 and 2 on 28x28 MNIST, shrunk for
8x8 images), each image scaled to a maximum of 1, then latency coded
(:func:`~plastic.functional.encoders.latency_encode`, ``steps`` steps: the
strongest response first, a zero response never).

Layer. :class:`~plastic.neural.connections.Conv2d` (2 -> ``maps`` channels,
``kernel`` x ``kernel``, no padding) onto non-leaky IF neurons (threshold
``threshold``) wrapped in :class:`~plastic.neural.competition.WinnerTakeAll`:

* learning: at most ``k`` winners per image, one per map, each inhibiting
  every map within ``radius`` positions (the paper's k-WTA with local
  inter-map inhibition); the layer learns from the winners only;
* features: per-position inhibition (one map fires at each position), each
  neuron at most once (the paper's inference-time inhibition).

Learning. The paper's simplified STDP, on first spikes only::

    dw = +a_plus  w (1 - w)   if t_pre <= t_post   (an input that fired before the winner or with it)
    dw = -a_minus w (1 - w)   otherwise            (fired after it, or not at all)

expressed with the library's pieces: :class:`~plastic.learn.kernel_stdp.KernelSTDP`
with two rectangular kernels (``+a_plus`` on ``[0, inf)``, ``-a_minus`` on
``(-inf, 0)``), ``unfired_pre="late"`` (an input that did not fire counts as
firing after the winner), and the updater's ``Bounding("logistic")`` for the
factor ``w (1 - w)``. Weights start at ``N(0.8, 0.05)`` clamped to ``[0, 1]``
(the paper's). One update per image, ``epochs`` passes over the training
split in a seeded random order.

Readout. Per map and position the first spike's earliness ``(steps - t) /
steps`` (0 without a spike), max-pooled over 2x2 positions (the paper's
pooling of first spikes), standardised, then scikit-learn's multinomial
logistic regression (``C = readout_c``). Baselines in the same run: the same
readout on the 64 raw pixels, and on the same layer and competition with
random weights (uniform in ``[0, 1]``; and, for reference, the untrained
initial weights).

Reference: S. R. Kheradpisheh, M. Ganjtabesh, S. J. Thorpe, T. Masquelier
(2018), "STDP-based spiking deep convolutional neural networks for object
recognition", Neural Networks 99:56-67.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from plastic.functional.attrs_validators import int_at_least, positive
from plastic.functional.bounding import Bounding
from plastic.functional.encoders import difference_of_gaussians, latency_encode, on_off_centre
from plastic.functional.kernels import rectangular
from plastic.learn.kernel_stdp import KernelSTDP
from plastic.neural.cell import Cell
from plastic.neural.competition import Competition, WinnerTakeAll
from plastic.neural.connections import Conv2d
from plastic.neural.neurons import IF
from plastic.zoo.plotting import pyplot, save_figure

__all__ = ["ConvFeaturesConfig", "run_and_save", "run_conv_features", "run_seed"]

#: the side of scikit-learn's digits
IMAGE = 8


_count = int_at_least(1)


@attrs.frozen
class ConvFeaturesConfig:
    """Settings (time in steps; weights in ``[0, 1]``)."""

    maps: int = attrs.field(default=30, validator=_count)
    kernel: int = attrs.field(default=3, validator=_count)
    threshold: float = attrs.field(default=4.0, validator=positive)
    steps: int = attrs.field(default=10, validator=_count)
    k: int = attrs.field(default=8, validator=_count)
    radius: int = attrs.field(default=1, validator=int_at_least(0))
    a_plus: float = attrs.field(default=0.04, validator=positive)
    a_minus: float = attrs.field(default=0.03, validator=positive)
    w_mean: float = attrs.field(default=0.8, validator=positive)
    w_std: float = attrs.field(default=0.05, validator=positive)
    epochs: int = attrs.field(default=1, validator=_count)
    dog_size: int = attrs.field(default=3, validator=_count)
    dog_sigma_centre: float = attrs.field(default=0.5, validator=positive)
    dog_sigma_surround: float = attrs.field(default=1.0, validator=positive)
    pool: int = attrs.field(default=2, validator=_count)
    readout_c: float = attrs.field(default=0.1, validator=positive)
    readout_iterations: int = attrs.field(default=2000, validator=_count)
    test_fraction: float = 0.25
    split_seed: int = 0
    train_samples: int | None = attrs.field(default=None, validator=attrs.validators.optional(_count))  # tests
    device: str = "cpu"

    def __attrs_post_init__(self) -> None:
        if self.kernel > IMAGE:
            raise ValueError(f"kernel: expected at most {IMAGE} (the digits are {IMAGE}x{IMAGE}), got {self.kernel}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction: expected a value in (0, 1), got {self.test_fraction}")


def load_digits_split(config: ConvFeaturesConfig) -> dict[str, Any]:
    """Images ``[N, 8, 8]`` in ``[0, 1]``, labels, and a stratified train/test index split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    index = np.arange(len(digits.target))
    train, test = train_test_split(
        index, test_size=config.test_fraction, stratify=digits.target, random_state=config.split_seed
    )
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
    return {"images": images, "labels": digits.target, "train": train, "test": test}


def encode(images: Tensor, config: ConvFeaturesConfig) -> Tensor:
    """On/off-centre DoG responses, each image scaled to a maximum of 1, latency coded: bool ``[T, N, 2, 8, 8]``."""
    kernel = difference_of_gaussians(
        config.dog_size, config.dog_sigma_centre, config.dog_sigma_surround, dtype=images.dtype
    ).to(images.device)
    responses = on_off_centre(images, kernel)
    peak = responses.amax(dim=(1, 2, 3), keepdim=True)
    return latency_encode(responses / peak.clamp_min(torch.finfo(images.dtype).tiny), config.steps)


def _layer(config: ConvFeaturesConfig, weight: Tensor, batch_size: int, competition: Competition) -> Cell:
    device = weight.device
    connection = Conv2d(
        2, config.maps, config.kernel, in_size=(IMAGE, IMAGE), batch_size=batch_size, step_mode="window",
        weight_init=lambda w: None, device=device,
    )  # fmt: skip
    with torch.no_grad():
        connection.weight.copy_(weight)
    side = IMAGE - config.kernel + 1
    neuron = IF((config.maps, side, side), v_threshold=config.threshold, batch_size=batch_size, device=device)
    return Cell(connection, WinnerTakeAll(neuron, competition, step_mode="window"))


def learning_competition(config: ConvFeaturesConfig) -> Competition:
    return Competition(k=config.k, radius=config.radius)


def feature_competition() -> Competition:
    return Competition(per_position=True, once=True)


def train_layer(
    config: ConvFeaturesConfig, initial: Tensor, spikes: Tensor, order: np.ndarray, *, progress: bool, label: str
) -> tuple[Tensor, dict[str, float]]:
    """STDP on the training images (one at a time, in ``order``); returns the learned weight and counts."""
    cell = _layer(config, initial, 1, learning_competition(config))
    cell.make_updater(params=["weight"], bounding=Bounding("logistic", w_min=0.0, w_max=1.0))
    trainer = KernelSTDP(
        kernel_post=rectangular,
        kernel_post_kwargs={"amplitude": config.a_plus, "start": 0.0, "stop": math.inf},
        kernel_pre=rectangular,
        kernel_pre_kwargs={"amplitude": -config.a_minus, "start": -math.inf, "stop": 0.0},
        unfired_pre="late",
        batch_reduction="sum",
    )
    trainer.register_cell("conv", cell)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc=label, unit="image")
    winners = 0
    with torch.no_grad():
        for image in order:
            cell.reset()
            trainer.clear()
            winners += int(cell(spikes[:, image : image + 1]).sum())
            trainer()
            trainer.update()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return cell.connection.weight.detach().clone(), {"winners_per_image": winners / max(1, len(order))}


def first_spike_features(config: ConvFeaturesConfig, weight: Tensor, spikes: Tensor) -> tuple[np.ndarray, float]:
    """Readout features ``[N, maps * pooled positions]`` and the fraction of neurons that fired."""
    cell = _layer(config, weight, spikes.shape[1], feature_competition())
    cell.eval()
    with torch.no_grad():
        out = cell(spikes) != 0  # [T, N, maps, side, side]
    fired = out.any(dim=0)
    first = out.to(torch.int64).argmax(dim=0)
    earliness = torch.where(fired, (config.steps - first).to(weight.dtype) / config.steps, 0.0)
    if config.pool > 1:
        earliness = F.max_pool2d(earliness, config.pool, ceil_mode=True)
    return earliness.flatten(1).cpu().numpy(), float(fired.to(torch.float32).mean())


def readout_accuracy(config: ConvFeaturesConfig, features: np.ndarray, data: dict[str, Any]) -> float:
    """Test accuracy of standardised features -> multinomial logistic regression (trained on the train split)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=config.readout_c, max_iter=config.readout_iterations)
    )  # fmt: skip
    labels = data["labels"]
    model.fit(features[data["train"]], labels[data["train"]])
    return float(model.score(features[data["test"]], labels[data["test"]]))


def run_seed(
    config: ConvFeaturesConfig, seed: int, data: dict[str, Any] | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """One seed: learn the layer, then the three readouts. The split is the same for every seed
    (``split_seed``); the seed draws the initial and the random weights and the presentation order."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    device = torch.device(config.device)
    data = load_digits_split(config) if data is None else data
    spikes = encode(data["images"].to(device), config)
    generator = torch.Generator().manual_seed(seed)
    shape = (config.maps, 2, config.kernel, config.kernel)
    initial = (config.w_mean + config.w_std * torch.randn(shape, generator=generator)).clamp(0.0, 1.0).to(device)
    random = torch.rand(shape, generator=generator).to(device)
    rng = np.random.default_rng(seed)
    train = data["train"] if config.train_samples is None else data["train"][: config.train_samples]
    order = np.concatenate([rng.permutation(train) for _ in range(config.epochs)])
    learned, counts = train_layer(config, initial, spikes, order, progress=progress, label=f"seed {seed}")
    trained_s = time.perf_counter() - start
    result: dict[str, Any] = {"seed": seed, **counts, "train_seconds": trained_s}
    features = {
        "learned": learned,
        "random": random,
        "initial": initial,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, weight in features.items():
            values, fired = first_spike_features(config, weight, spikes)
            result[f"{name}_accuracy"] = readout_accuracy(config, values, data)
            result[f"{name}_fired"] = fired
        result["pixels_accuracy"] = readout_accuracy(config, data["images"].flatten(1).numpy(), data)
    bounded = ((learned < 0.05) | (learned > 0.95)).to(torch.float32).mean()
    result["learned_near_bounds"] = float(bounded)
    result["seconds"] = time.perf_counter() - start
    result["weights"] = {"learned": learned.cpu(), "random": random.cpu(), "initial": initial.cpu()}
    return result


def run_conv_features(config: ConvFeaturesConfig, seeds: list[int], *, progress: bool = True) -> dict[str, Any]:
    """Every seed, with the means and the learned-minus-random gap (in accuracy points)."""
    start = time.perf_counter()
    data = load_digits_split(config)
    runs = [run_seed(config, seed, data, progress=progress) for seed in seeds]
    means = {
        name: float(np.mean([run[f"{name}_accuracy"] for run in runs]))
        for name in ("learned", "random", "initial", "pixels")
    }
    return {
        "runs": runs,
        "means": means,
        "gap_points": 100.0 * (means["learned"] - means["random"]),
        "seconds": time.perf_counter() - start,
        "train_images": len(data["train"]) if config.train_samples is None else config.train_samples,
        "test_images": len(data["test"]),
    }


def _filter_grid(weight: Tensor) -> np.ndarray:
    """Each map's on minus off weights, tiled in rows of 6 maps with a 1-pixel gap (NaN)."""
    contrast = (weight[:, 0] - weight[:, 1]).numpy()
    maps, size = contrast.shape[0], contrast.shape[-1]
    columns = min(6, maps)
    rows = math.ceil(maps / columns)
    grid = np.full((rows * (size + 1) - 1, columns * (size + 1) - 1), np.nan)
    for index in range(maps):
        row, column = divmod(index, columns)
        grid[row * (size + 1) : row * (size + 1) + size, column * (size + 1) : column * (size + 1) + size] = contrast[
            index
        ]
    return grid


def draw_conv_features(result: dict[str, Any], output: Path) -> list[Path]:
    """Learned vs random filters (the first seed) and the accuracies per seed: ``conv_features.png``."""
    plt = pyplot()

    first = result["runs"][0]
    figure = plt.figure(figsize=(11, 4.2))
    grid = figure.add_gridspec(1, 3, width_ratios=[1.0, 1.0, 1.2])
    colours = plt.get_cmap("RdBu_r").with_extremes(bad="0.8")
    for column, name in enumerate(("learned", "random")):
        axes = figure.add_subplot(grid[0, column])
        image = axes.imshow(_filter_grid(first["weights"][name]), cmap=colours, vmin=-1, vmax=1)
        axes.set_title(f"{name} filters, seed {first['seed']}\n(on-centre minus off-centre weight)", fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, shrink=0.8)
    bars = figure.add_subplot(grid[0, 2])
    names = ("learned", "random", "pixels")
    width = 0.8 / len(result["runs"])
    for index, run in enumerate(result["runs"]):
        values = [100 * run[f"{name}_accuracy"] for name in names]
        bars.bar(np.arange(len(names)) + index * width, values, width, label=f"seed {run['seed']}")
    bars.set_xticks(np.arange(len(names)) + width * (len(result["runs"]) - 1) / 2)
    bars.set_xticklabels(["STDP\nfeatures", "random\nweights", "raw\npixels"])
    bars.set_ylabel("test accuracy (%)")
    low = min(100 * run[f"{name}_accuracy"] for run in result["runs"] for name in names)
    bars.set_ylim(max(0.0, low - 10), 100)
    bars.set_title("logistic readout", fontsize=9)
    bars.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    path = output / "conv_features.png"
    save_figure(figure, path, dpi=120)
    return [path]


def run_and_save(
    config: ConvFeaturesConfig, seeds: list[int], output: str | Path, *, progress: bool = True
) -> dict[str, Any]:
    """:func:`run_conv_features`, its figure and ``run.json`` (with the machine's load) in ``output``."""
    output = Path(output)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = run_conv_features(config, seeds, progress=progress)
    figures = draw_conv_features(result, output)
    runs = [{key: value for key, value in run.items() if key != "weights"} for run in result["runs"]]
    summary = {
        "config": attrs.asdict(config),
        "seeds": seeds,
        "runs": runs,
        "means": result["means"],
        "gap_points": result["gap_points"],
        "acceptance_gap_at_least_2_points": result["gap_points"] >= 2.0,
        "train_images": result["train_images"],
        "test_images": result["test_images"],
        "seconds": result["seconds"],
        "conditions": {
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "figures": [str(path) for path in figures],
    }
    (output / "run.json").write_text(json.dumps(summary, indent=2))
    return summary
