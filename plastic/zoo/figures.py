"""Regenerate every figure of ``zoo_docs/``: ``python -m plastic figures``."""

from __future__ import annotations

import importlib
from pathlib import Path

#: figure modules, each with ``main(out_dir)``
FIGURE_MODULES = (
    "plastic.zoo.figures_neurons",
    "plastic.zoo.figures_conductance",
    "plastic.zoo.figures_layers",
    "plastic.zoo.figures_connections",
    "plastic.zoo.figures_bounding",
    "plastic.zoo.figures_observe",
    "plastic.zoo.figures_stdp",
    "plastic.zoo.figures_pairing",
    "plastic.zoo.figures_rmax",
    "plastic.zoo.figures_kernel_stdp",
    "plastic.zoo.figures_rules",
    "plastic.zoo.figures_online",
    "plastic.zoo.figures_power_law",
    "plastic.zoo.figures_inhibitory",
    "plastic.zoo.figures_short_term",
    "plastic.zoo.figures_rate_rules",
    "plastic.zoo.figures_clopath",
)


def make_all(out_dir: str | Path = "zoo_docs/figures") -> list[Path]:
    """Run every figure script, then draw each built-in rule's STDP window."""
    from plastic.zoo.windows import RULES, plot_window

    paths: list[Path] = []
    for name in FIGURE_MODULES:
        result = importlib.import_module(name).main(out_dir)
        paths.extend(result if isinstance(result, (list, tuple)) else [result])
    for rule in RULES:
        paths.append(plot_window(rule, out_dir))
    return [Path(p) for p in paths]
