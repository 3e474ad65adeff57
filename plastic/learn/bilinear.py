"""Binding the bilinear functional rules to cells: which cells fit, and the batch reduction.

The trainers of :mod:`plastic.learn.triplet`, :mod:`plastic.learn.reward`,
:mod:`plastic.learn.integer` and :mod:`plastic.learn.online` run a rule of
:mod:`plastic.functional` (``view=`` the connection, see
:data:`plastic.functional.bilinear.View`) on the spikes of a cell, and write
its ``[G, O, K]`` products, in the weight's shape, into ``cell.updater``.
The hyperparameter validators they share are in
:mod:`plastic.functional.attrs_validators`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from plastic.functional.bilinear import BatchReduction, SynapseLayout
from plastic.learn.base import reduce_batch
from plastic.neural.cell import Cell

__all__ = ["check_bilinear_cell", "functional_reduction"]


def check_bilinear_cell(name: str, cell: Cell, trainer: str) -> SynapseLayout:
    """The layout of a cell's connection; refuses weights that are not ``[N_out, ...]`` rows.

    Dense (``[N_out, N_in]``) and convolutional (``[C_out, C_in/groups,
    *kernel]``) weights fit; a one-to-one ``LinearDirect`` (weight ``[N]``,
    one group per neuron) is refused by these trainers.
    """
    connection = cell.connection
    weight = connection.weight
    if weight.ndim < 2:
        raise ValueError(
            f"cell: {trainer} needs a dense ([N_out, N_in]) or convolutional weight; {name!r} "
            f"({type(connection).__name__}) has weight shape {tuple(weight.shape)}"
        )
    return SynapseLayout.infer(connection.in_shape, connection.out_shape, connection, device=weight.device)


def functional_reduction(value: str | Callable[[Tensor], Tensor]) -> BatchReduction:
    """A trainer's ``batch_reduction`` as the functional rules take it.

    ``"sum"``/``"mean"`` fold the batch into the products; the other names of
    :data:`plastic.learn.base.BATCH_REDUCTIONS` (``"amax"``, ...) and callables
    reduce the per-sample ``[B, G, O, K]`` tensor.
    """
    if callable(value):
        return value
    # spelled out so that the result is typed as the literal the functional rules take
    if value == "sum":
        return "sum"
    if value == "mean":
        return "mean"
    return lambda per_sample: reduce_batch(per_sample, value)
