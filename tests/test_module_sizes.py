"""No module in plastic/ grows past 650 lines (issue 16: one concept a reader can name per file).

A module that passes the limit is split by idea (as neural/synapses.py into the kinds and
neural/synapse_base.py, functional/stdp.py into the rule, stdp_checks.py and stdp_engine.py),
with its public names re-exported from where they were.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plastic"
MAX_LINES = 650


def modules_over(root: Path, limit: int) -> dict[str, int]:
    """``{path from root's parent: line count}`` of the ``.py`` files under ``root`` longer than ``limit`` lines."""
    counts = {}
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            counts[str(path.relative_to(root.parent))] = lines
    return counts


def test_no_module_in_plastic_is_over_the_limit():
    assert len(list(PACKAGE.rglob("*.py"))) > 50  # the package itself, not an empty folder
    over = modules_over(PACKAGE, MAX_LINES)
    listed = ", ".join(f"{path} ({lines} lines)" for path, lines in over.items())
    assert not over, f"modules over {MAX_LINES} lines (split them by idea, re-exporting moved names): {listed}"


def test_the_count_finds_a_long_module(tmp_path):
    package = tmp_path / "package"
    (package / "inner").mkdir(parents=True)
    (package / "short.py").write_text("x = 1\n" * MAX_LINES)
    (package / "inner" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (package / "inner" / "notes.txt").write_text("x\n" * (MAX_LINES + 10))
    assert modules_over(package, MAX_LINES) == {"package/inner/long.py": MAX_LINES + 1}
