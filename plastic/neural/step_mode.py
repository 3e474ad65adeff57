"""The ``step_mode`` of the modules that advance in time: one step or a window per call.

``"single"``: ``forward`` takes one step ``[B, *shape]``; ``"window"``: it
takes ``[T, B, *shape]``, time first. :class:`StepModeMixin` holds the
checked setting for the neuron modules, the competition and the layers.
"""

from __future__ import annotations

from plastic.functional.validation import check_choice

__all__ = ["STEP_MODES", "StepModeMixin"]

STEP_MODES = ("single", "window")


class StepModeMixin:
    """``step_mode``, checked against :data:`STEP_MODES` when set (kept as ``_step_mode``)."""

    _step_mode: str

    @property
    def step_mode(self) -> str:
        """``"single"`` (``[B, *shape]`` per call) or ``"window"`` (``[T, B, *shape]``)."""
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self._step_mode = str(check_choice(value, "step_mode", STEP_MODES))
