"""The documentation site builds with ``mkdocs --strict`` (issue 16): every zoo_docs page,
the architecture page and one API page per public module, no broken link or reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_strictly_with_every_page(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings", reason="the docs extra (make test installs it)")
    site = tmp_path / "site"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_site.py"), "--site", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    for page in sorted((ROOT / "zoo_docs").glob("*.md")):
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.exists(), page.name
    assert (site / "architecture" / "index.html").exists()
    sys.path.insert(0, str(ROOT / "docs"))
    from build_site import public_modules

    modules = public_modules()
    assert "plastic.learn.stdp" in modules and "plastic.functional.stdp" in modules
    for name in modules:
        page = site / "api" / name / "index.html"
        assert page.exists(), name
    # the reference is rendered from the docstrings, not an empty page
    reference = (site / "api" / "plastic.learn.stdp" / "index.html").read_text()
    assert "STDPParams" in reference and "weight_dependence_post" in reference
