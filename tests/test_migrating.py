"""Every ```python block of zoo_docs/migrating.md runs, each in a fresh namespace, with
plastic.GradModeWarning as an error (a translated plasticity loop steps under torch.no_grad()).

The blocks check themselves: each writes out the peer library's equations in
plain torch and asserts that plastic's translation agrees. The peers' own code
is in ```py blocks on the page, shown but not run (they are not installed here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FENCE, python_blocks

PAGE = Path(__file__).resolve().parents[1] / "zoo_docs" / "migrating.md"

BLOCKS = python_blocks(PAGE.read_text())


def test_the_page_has_translations_and_shows_the_peers_code():
    text = PAGE.read_text()
    assert len(BLOCKS) >= 8
    peers = [match for match in FENCE.finditer(text) if match.group("info").strip() == "py"]
    assert len(peers) >= 7
    for block in ("spikingjelly", "bindsnet", "inferno"):
        assert any(block in match.group("body") for match in peers), block
    for _, code in BLOCKS:
        assert "assert" in code  # every translation checks something


@pytest.mark.filterwarnings("error::plastic.GradModeWarning")
@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_translation_runs(line, code):
    namespace = {"__name__": f"migrating_md_line_{line}"}
    # blank lines first, so that a traceback names the page's own line numbers
    exec(compile("\n" * line + code, str(PAGE), "exec"), namespace)  # the page's own examples


def test_block_extraction_keeps_only_python_fences():
    text = "```py\nperr = 1\n```\n\ntext\n\n```python\nx = 1\nassert x\n```\n```text\ny\n```\n"
    assert python_blocks(text) == [(7, "x = 1\nassert x\n")]
