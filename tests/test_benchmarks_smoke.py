"""Smoke test of the benchmark harness: ``benchmarks/run.py --quick`` on our rows only.

Runs the script as a user would (a subprocess, tiny sizes, no peer libraries)
and checks that it prints the table and writes valid JSON whose functional
rows agree with the reference. Independent check of the harness's helper
``event_times`` against a per-element loop.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_prints_table_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-peers", "--repeats", "2",
         "--threads", "1", "--cases", "B1,B2,B3,B4", "--json", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    stdout = completed.stdout
    assert "| case | implementation | median ms |" in stdout
    for case in ("B1 B=1", "B1 B=4", "B2", "B3 B=4", "B4 B=1", "B4 B=2"):
        assert f"| {case} |" in stdout, case
    assert "not available" not in stdout  # every row of ours is written

    payload = json.loads(output.read_text())
    assert payload["environment"]["quick"] is True
    assert payload["environment"]["eager_op_us"] > 0  # the machine's per-op dispatch cost, in the header too
    assert "one eager op" in stdout
    rows = payload["rows"]
    cases = {row["case"] for row in rows}
    assert cases == {"B1 B=1", "B1 B=4", "B2", "B3 B=4", "B4 B=1", "B4 B=2"}
    assert not any(row["kind"] == "peer" for row in rows)
    ours = [row for row in rows if row["kind"] == "ours"]
    assert all(row["status"] == "ok" for row in ours), [row for row in ours if row["status"] != "ok"]
    compared = [row for row in ours if not row["case"].startswith("B4")]
    assert len(compared) >= 21
    trainer_rows = [row for row in compared if "trainer" in row["implementation"]]
    assert len(trainer_rows) == 7  # B1 x2 at both sizes, B2, B3 x2
    for row in compared:
        assert row["median_ms"] > 0 and row["repeats"] >= 1
        # every path (functional and through the trainer API) computes the same window as the reference
        assert row["max_abs_diff"] is not None and row["max_abs_diff"] < 1e-4 * max(1.0, row["max_abs_dw"])
    demo = [row for row in ours if row["case"].startswith("B4")]
    assert len(demo) == 2 and all(row["samples_per_s"] > 0 for row in demo)
    bounds = [row for row in rows if row["kind"] == "bound"]
    assert len(bounds) == 3 and all(row["median_ms"] > 0 for row in bounds)


def test_quick_speed_cases(tmp_path: Path) -> None:
    """The issue-15 cases (S1, S2, scaling) at tiny sizes, timed in turns (--interleave): every row runs,
    the trainer rows agree."""
    output = tmp_path / "speed.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-peers", "--repeats", "2",
         "--threads", "1", "--cases", "S1,S2,SCALING", "--interleave", "--json", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = json.loads(output.read_text())["rows"]
    cases = {row["case"] for row in rows}
    assert {"S1 p=0.02 forward", "S1 p=0.02 update", "S1 p=0.005 update", "S2 B=1", "S2 B=64"} <= cases
    ours = [row for row in rows if row["kind"] == "ours"]
    assert all(row["status"] == "ok" and row["median_ms"] > 0 for row in ours), ours
    updates = [row for row in ours if row["max_abs_dw"] is not None]
    assert len(updates) >= 3
    for row in updates:  # trainer() + update() applies exactly the window's pair-STDP change
        assert row["max_abs_diff"] < 1e-4 * max(1.0, row["max_abs_dw"])
    assert all(row["extra"]["us_per_step"] > 0 for row in ours if row["case"].startswith("S2"))
    bounds = [row for row in rows if row["kind"] == "bound"]
    assert len(bounds) == 4 and all(row["median_ms"] > 0 and row["repeats"] == 2 for row in bounds)
    for row in ours:  # ratios to the case's own bound, timed in the same rounds
        bound = next((b for b in bounds if b["case"] == row["case"]), None)
        if bound is not None:
            assert math.isclose(row["ratio_to_bound"], row["median_ms"] / bound["median_ms"])


def test_time_interleaved_takes_turns_and_drops_rows_over_budget() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import time_interleaved

    order: list[str] = []

    def call(name: str, seconds: float = 0.0):
        def run() -> None:
            order.append(name)
            if seconds:
                time.sleep(seconds)

        return run

    def setup() -> None:
        order.append("setup b")

    calls_left = [2]

    def fails_on_third_call() -> None:
        order.append("fails")
        calls_left[0] -= 1
        if calls_left[0] < 0:
            raise RuntimeError("peer broke")

    times, errors = time_interleaved(
        [(call("a"), None), (call("b"), setup), (call("slow", 0.02), None), (fails_on_third_call, None)],
        warmup=1, repeats=3, device=torch.device("cpu"), budget_s=0.01,
    )  # fmt: skip
    # one warm-up round (setups too), then rounds a, b, slow, fails; slow's first timed call passed the
    # budget, the failing pair raised in the second timed round and dropped out, the others went on
    assert order == (
        ["a", "setup b", "b", "slow", "fails"] * 2 + ["a", "setup b", "b", "fails"] + ["a", "setup b", "b"]
    )
    assert [len(row) for row in times] == [3, 3, 1, 1]
    assert times[2][0] >= 0.02
    assert errors[:3] == [None, None, None] and isinstance(errors[3], RuntimeError)


def test_event_times_against_a_loop() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import event_times

    generator = torch.Generator().manual_seed(3)
    spikes = (torch.rand(7, 2, 5, generator=generator) < 0.2).float()
    times = event_times(spikes, dt=0.5)
    for b in range(2):
        for n in range(5):
            last = None
            for t in range(7):
                if spikes[t, b, n] > 0:
                    last = t
            expected = math.nan if last is None else (6 - last) * 0.5
            value = float(times[b, n])
            assert (math.isnan(value) and math.isnan(expected)) or value == expected
