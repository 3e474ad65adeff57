"""Figures of the digit demo: receptive fields, the STDP window of the rule
used, a raster of one presentation and the confusion matrix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from plastic.zoo.plotting import pyplot, save_figure

__all__ = ["draw_demo_figures"]


def receptive_fields(weight: Tensor, assignments: Tensor, path: Path) -> Path:
    """Each neuron's 64 incoming weights as an 8x8 tile, labelled with its class.

    One image of all tiles (each scaled to its own maximum, its label in a
    blank band above it) instead of one axis per neuron: hundreds of axes
    take matplotlib tens of seconds.
    """
    plt = pyplot()
    neurons = weight.shape[0]
    columns = math.ceil(math.sqrt(neurons))
    rows = math.ceil(neurons / columns)
    tiles = weight / weight.amax(dim=1, keepdim=True).clamp(min=1e-12)
    # blank (NaN): the empty slots of the last row, a band of `head` pixels above each tile
    # for its label and one pixel right of it
    head, height, width = 3, 11, 9
    padded = torch.full((rows * columns, height, width), float("nan"))
    padded[:neurons, head:, :8] = tiles.reshape(neurons, 8, 8)
    mosaic = rearrange(padded, "(row column) h w -> (row h) (column w)", row=rows)
    figure, axis = plt.subplots(figsize=(max(4.0, columns * 0.5), max(4.0, rows * 0.6)))
    axis.imshow(mosaic.numpy(), cmap="hot_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    for index in range(neurons):
        label = int(assignments[index])
        row, column = divmod(index, columns)
        axis.text(column * width + 3.5, row * height + 1.0, "-" if label < 0 else str(label),
                  fontsize=6, ha="center", va="center")  # fmt: skip
    axis.axis("off")
    axis.set_title("learned receptive fields (label assigned to each neuron)", fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)


def stdp_window(config: Any, path: Path) -> Path:
    """The window of the demo's rule, measured by running the trainer on spike pairs."""
    from plastic.learn.stdp import STDP
    from plastic.zoo.windows import draw_window, measure_window

    lags = torch.arange(-60, 61)
    factory = lambda: STDP(  # noqa: E731
        eta_post=config.eta_post, eta_pre=config.eta_pre, tau_pre=config.tau_pre,
        tau_post=config.tau_post, pairing=config.pairing,
    )  # fmt: skip
    changes = measure_window(factory, lags)
    return draw_window(lags, changes, f"pair STDP ({config.pairing} traces) as trained in the demo", path)


def raster(sample: dict[str, Tensor], path: Path) -> Path:
    """Input and excitatory spikes of one test digit."""
    plt = pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    for axis, key, title in ((top, "input", "input (64 pixels)"), (bottom, "output", "excitatory neurons")):
        times, neurons = sample[key].nonzero(as_tuple=True)
        axis.scatter(times.numpy(), neurons.numpy(), s=2, marker="|", color="black")
        axis.set_ylim(-0.5, sample[key].shape[1] - 0.5)
        axis.set_xlim(-0.5, sample[key].shape[0] - 0.5)
        axis.set_ylabel("neuron")
        axis.set_title(title, fontsize=9)
    bottom.set_xlabel("time (ms)")
    figure.tight_layout()
    return save_figure(figure, path)


def confusion(labels: Tensor, predicted: Tensor, path: Path) -> Path:
    """Counts of (true, predicted) classes on the test split."""
    plt = pyplot()
    matrix = torch.zeros(10, 10, dtype=torch.long)
    matrix.index_put_(
        (labels.long(), predicted.long().clamp(min=0)), torch.ones_like(labels, dtype=torch.long), accumulate=True
    )
    figure, axis = plt.subplots(figsize=(4.5, 4))
    image = axis.imshow(matrix.numpy(), cmap="Blues")
    for i in range(10):
        for j in range(10):
            if matrix[i, j]:
                axis.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_xticks(range(10))
    axis.set_yticks(range(10))
    accuracy = float((labels == predicted).float().mean())
    axis.set_title(f"test confusion matrix (accuracy {100 * accuracy:.1f}%)", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return save_figure(figure, path)


def draw_demo_figures(
    output: Path,
    weight: Tensor,
    classifier: Any,
    labels: Tensor,
    predicted: Tensor,
    sample: dict[str, Tensor],
    config: Any,
) -> list[Path]:
    return [
        receptive_fields(weight, classifier.assignments.cpu(), output / "receptive_fields.png"),
        stdp_window(config, output / "stdp_window.png"),
        raster(sample, output / "raster.png"),
        confusion(labels, predicted, output / "confusion_matrix.png"),
    ]
