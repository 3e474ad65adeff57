"""The documentation site builds with ``mkdocs --strict`` (issue 16): every zoo_docs page,
the architecture page and one API page per public module, each in the navigation, no broken
link or reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules_on_disk() -> set[str]:
    """Dotted names of the public modules of plastic/, read from the files (not from the build script):
    every ``.py`` file and package with no path part starting with ``_``."""
    names = set()
    for path in (ROOT / "plastic").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            names.add(".".join(parts))
    return names


def navigation_sources() -> set[str]:
    """The staged pages (paths under the docs directory) that mkdocs puts in the site's navigation."""
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files
    from mkdocs.structure.nav import get_navigation

    config = load_config(str(ROOT / "mkdocs.yml"))
    return {page.file.src_uri for page in get_navigation(get_files(config), config).pages}


def test_modules_on_disk_sees_the_split_modules() -> None:
    modules = modules_on_disk()
    for name in (
        "plastic",
        "plastic.functional.stdp_engine",
        "plastic.functional.pair_products",
        "plastic.neural.connection_base",
        "plastic.neural.updater_checks",
        "plastic.observe.reducers",
        "plastic.observe.reducers.event_times",
        "plastic.testing.invariants",
        "plastic.testing.invariants.checks",
    ):
        assert name in modules, name
    assert "plastic.__main__" not in modules


def test_site_builds_strictly_with_every_page(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings", reason="the docs extra (make test installs it)")
    site = tmp_path / "site"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_site.py"), "--site", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    navigation = navigation_sources()

    zoo_pages = sorted(page.name for page in (ROOT / "zoo_docs").glob("*.md"))
    assert "stdp.md" in zoo_pages and "index.md" in zoo_pages
    for name in zoo_pages:
        stem = name.removesuffix(".md")
        built = site / ("index.html" if stem == "index" else f"{stem}/index.html")
        assert built.exists(), name
        assert name in navigation, f"{name} is not in the site's navigation"
    assert (site / "architecture" / "index.html").exists()
    assert "architecture.md" in navigation

    # every public module found on disk has its API page, in the navigation
    sys.path.insert(0, str(ROOT / "docs"))
    from build_site import public_modules

    modules = modules_on_disk()
    assert set(public_modules()) == modules
    for name in sorted(modules):
        assert (site / "api" / name / "index.html").exists(), name
        assert f"api/{name}.md" in navigation, f"the API page of {name} is not in the site's navigation"
    # the reference is rendered from the docstrings, not an empty page
    reference = (site / "api" / "plastic.learn.stdp" / "index.html").read_text()
    assert "STDPParams" in reference and "weight_dependence_post" in reference
    engine = (site / "api" / "plastic.functional.stdp_engine" / "index.html").read_text()
    assert "filtered_presynaptic" in engine
