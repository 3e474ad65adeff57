"""Build the documentation site (``make docs``): zoo_docs, the architecture page and an API reference.

Stages the pages into ``build/docs_src`` (the zoo_docs pages and figures as
they are, ``docs/ARCHITECTURE.md`` as ``architecture.md``, and one API page
per public module of ``plastic``, each rendered from the docstrings by
mkdocstrings), then runs ``mkdocs build --strict`` with ``mkdocs.yml`` into
``site/``: a broken link, a missing page or a reference mkdocstrings cannot
resolve fails the build.

    python docs/build_site.py [--site DIR] [--no-build]
"""

from __future__ import annotations

import argparse
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "docs_src"


def public_modules() -> list[str]:
    """Every module of ``plastic`` whose dotted name has no part starting with ``_`` (sorted)."""
    import plastic

    names = ["plastic"]
    for info in pkgutil.walk_packages(plastic.__path__, prefix="plastic."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def stage() -> list[str]:
    """Write the staged pages; return the API page paths (relative to the stage)."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    shutil.copytree(ROOT / "zoo_docs", STAGE)
    shutil.copy(ROOT / "docs" / "ARCHITECTURE.md", STAGE / "architecture.md")
    api = STAGE / "api"
    api.mkdir()
    pages = []
    lines = ["# API reference", "", "One page per public module, generated from the docstrings.", ""]
    for name in public_modules():
        page = f"{name}.md"
        (api / page).write_text(f"# `{name}`\n\n::: {name}\n")
        pages.append(f"api/{page}")
        lines.append(f"- [`{name}`]({page})")
    (api / "index.md").write_text("\n".join(lines) + "\n")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="output directory (default site/)")
    parser.add_argument("--no-build", action="store_true", help="only stage the pages")
    args = parser.parse_args(argv)
    stage()
    if args.no_build:
        return 0
    command = [sys.executable, "-m", "mkdocs", "build", "--strict",
               "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(args.site.resolve())]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
