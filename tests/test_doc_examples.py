"""The ```python blocks of the zoo_docs pages run as written, with plastic.GradModeWarning as an error.

A page's blocks run in order in one namespace, as a reader would paste them, so a
documented plasticity loop must step its cells under ``torch.no_grad()``
(zoo_docs/trainers.md). Every page with a python block runs unless ``NOT_RUN``
names it with the reason: its blocks are fragments of the reader's experiment
(``cell``, ``spikes``, ... are not defined on the page), or its own test module runs it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from helpers import python_blocks

from plastic import GradModeWarning

ZOO_DOCS = Path(__file__).resolve().parents[1] / "zoo_docs"

NOT_RUN = {
    "kernel_stdp.md": "fragment: hidden_cell and output_cell are the reader's",
    "learners.md": "fragment (the reader's spikes) and the API's signatures",
    "migrating.md": "tests/test_migrating.py runs it, block by block, with the same warning as an error",
    "observe.md": "fragment: cell and x are the reader's",
    "online_stdp.md": "fragment: cell is the reader's",
    "reliability.md": "fragments of the reader's experiment; the second needs a torch.distributed process group",
    "rmax.md": "fragment: spikes and reward are the reader's",
    "testing.md": "tests/test_testing.py runs its examples (about a minute each)",
    "trainers.md": "fragments of the trainer API: SomeTrainer, cell, spikes stand for the reader's",
}
PAGES = sorted(
    path.name for path in ZOO_DOCS.glob("*.md") if path.name not in NOT_RUN and python_blocks(path.read_text())
)

# a plasticity loop as a page would show it; {step} is where the cell steps
LOOP_PAGE = """Text.

```python
import torch
from plastic import STDP, Cell, LIF, LinearDense

cell = Cell(LinearDense(4, 2), LIF(2))
cell.make_updater()
trainer = STDP()
trainer.register_cell("layer", cell)
```

```python
{step}
trainer()
```
"""


def run_page(text: str, path: Path) -> dict:
    """Run the page's python blocks in order in one namespace; a GradModeWarning raises."""
    namespace: dict = {"__name__": f"zoo_docs_{path.stem}"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradModeWarning)
        for line, code in python_blocks(text):
            # blank lines first, so that a traceback names the page's own line numbers
            exec(compile("\n" * line + code, str(path), "exec"), namespace)  # the page's own examples
    return namespace


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_without_grad_mode_warning(page: str) -> None:
    run_page((ZOO_DOCS / page).read_text(), ZOO_DOCS / page)


def test_the_pages_left_out_exist_and_have_python_blocks() -> None:
    for page in NOT_RUN:
        assert python_blocks((ZOO_DOCS / page).read_text()), f"{page} is in NOT_RUN but has no python block"
    assert {"clopath.md", "pairing_schemes.md", "power_law_stdp.md"} <= set(PAGES)


def test_a_loop_stepped_with_grad_fails_its_page(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    with pytest.raises(GradModeWarning, match=r"cell 'layer' \(LIF neuron\) was stepped with grad enabled"):
        run_page(LOOP_PAGE.format(step="cell(torch.ones(1, 4))"), page)
    namespace = run_page(LOOP_PAGE.format(step="with torch.no_grad():\n    cell(torch.ones(1, 4))"), page)
    assert not namespace["cell"].neuron.voltage.requires_grad
