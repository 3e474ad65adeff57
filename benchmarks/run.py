"""Benchmark of issue 9: our STDP paths against the matmul bound and the peer libraries.

Usage (from the repository root)::

    python benchmarks/run.py                          # every case, table on stdout
    python benchmarks/run.py --cases B1,B2 --repeats 7 --json benchmarks/results/latest.json
    python benchmarks/run.py --quick --no-peers       # tiny sizes, seconds (the smoke test)

Cases (``benchmarks/common.py`` holds the sizes):

* B1 dense pair STDP 784 -> 400, T = 100, B in {1, 64}, pre p = 0.05, post
  p = 0.02, tau = 20 steps; bound = 2 GEMMs ``[400 x T*B] @ [T*B x 784]``.
* B2 conv2d pair STDP, 1x28x28, B = 16, 1 -> 32 channels 5x5, T = 50; bound
  = 2 GEMMs ``[32 x T*B*576] @ [T*B*576 x 25]``.
* B3 event-time kernel STDP and delay-adjusted STDP per batch call (B1's
  B = 64 trains, their last spike times).
* B4 one training step of a Diehl & Cook network (samples per second) at the
  demo's sizes, batch 1 and the demo's batch.

The spikes are generated once per case with a fixed seed and fed to every
implementation as recorded trains. Columns: median wall time over the
repeats; ``x bound`` = median / matmul bound of the same run; ``x ours`` =
median / the fastest of our rows in the case; peak memory (see
``benchmarks/common.py``: torch tensors allocated during one call); ``max abs Δdw``
= max |dw_row - dw_reference| with the reference of matching conventions
(``benchmarks/cases_ours.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from benchmarks import cases_ours, cases_speed  # noqa: E402
from benchmarks.common import (  # noqa: E402
    ConvCase,
    DenseCase,
    NetworkCase,
    PeerUnavailable,
    Prepared,
    Row,
    bernoulli_trains,
    conv_case,
    dense_case,
    eager_op_us,
    event_times,
    max_abs_difference,
    median_ms,
    network_case,
    peak_memory,
    time_callable,
    time_interleaved,
)
from plastic.neural.fused_step import fused_step_available  # noqa: E402

ALL_CASES = ("B1", "B2", "B3", "B4", "S1", "S2", "SCALING")


# ----------------------------------------------------------------------- data


def dense_data(case: DenseCase, device: torch.device) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(case.seed)
    pre = bernoulli_trains((case.steps, case.batch, case.n_in), case.p_pre, generator)
    post = bernoulli_trains((case.steps, case.batch, case.n_out), case.p_post, generator)
    delay = torch.randint(0, int(case.max_delay) + 1, (case.n_out, case.n_in), generator=generator).float()
    data = {"pre": pre, "post": post, "delay": delay}
    data["e_pre"], data["e_post"] = event_times(pre), event_times(post)
    return {key: value.to(device) for key, value in data.items()}


def conv_data(case: ConvCase, device: torch.device) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(case.seed)
    pre = bernoulli_trains((case.steps, case.batch, case.in_channels, case.height, case.width), case.p_pre, generator)
    post = bernoulli_trains(
        (case.steps, case.batch, case.out_channels, case.out_height, case.out_width), case.p_post, generator
    )
    return {"pre": pre.to(device), "post": post.to(device)}


def network_data(case: NetworkCase, device: torch.device) -> dict[str, Tensor]:
    """Digits of the demo's data set ``[B, 64]`` and their Poisson trains ``[T, B, 64]`` (as the demo encodes)."""
    from plastic.functional.encoders import poisson_encode
    from plastic.zoo.demo import load_digit_splits

    generator = torch.Generator().manual_seed(case.seed)
    images = load_digit_splits(0.25, 0)[0]
    images = images[torch.randperm(images.shape[0], generator=generator)[: case.batch]]
    trains = poisson_encode(images / 16.0 * case.max_rate, case.steps, 1.0, generator=generator).to(torch.float32)
    return {"images": images.to(device), "input": trains.to(device)}


# --------------------------------------------------------------------- bound


@dataclass(frozen=True)
class Bound:
    """``products`` float32 GEMMs ``[rows x inner] @ [inner x columns]`` (two: the floor of a
    two-product window; one: a forward), timed beside a case's rows."""

    rows: int
    inner: int
    columns: int
    products: int = 2

    def prepare(self, device: torch.device) -> Prepared:
        generator = torch.Generator().manual_seed(0)
        left = torch.randn(self.rows, self.inner, generator=generator).to(device)
        right = torch.randn(self.inner, self.columns, generator=generator).to(device)
        out = torch.empty(self.rows, self.columns, device=device)
        return Prepared(lambda: torch.mm(left, right, out=out))

    def row(self, label: str, times: list[float], device: torch.device) -> Row:
        one = median_ms(times)
        flops = 2.0 * self.rows * self.inner * self.columns
        rate = flops / (one / 1e3) / 1e9
        products = self.products
        plural = "s" if products > 1 else ""
        shape = f"[{self.rows}x{self.inner}]@[{self.inner}x{self.columns}]"
        return Row(
            case=label, implementation=f"matmul bound ({products} GEMM{plural})", kind="bound",
            median_ms=products * one, min_ms=products * min(times) * 1e3, repeats=len(times), ratio_to_bound=1.0,
            note=f"{products} x {shape} float32 on {device}, {rate:.1f} GFLOP/s measured",
            extra={"gflops_per_s": rate, "flops": products * flops},
        )  # fmt: skip


def gemm_bound(label: str, bound: Bound, args: argparse.Namespace, device: torch.device) -> Row:
    """The bound's row, timed alone (at least 2 warm-up and 5 timed calls)."""
    prepared = bound.prepare(device)
    times = time_callable(
        prepared.run, warmup=max(args.warmup, 2), repeats=max(args.repeats, 5), device=device, clock=args.clock
    )
    return bound.row(label, times, device)


# ----------------------------------------------------------------------- rows


def failure_status(kind: str, error: BaseException) -> str:
    """A row's status after ``error``: ``"<kind>: <exception type>: <first line>"`` (200 characters at most)."""
    return f"{kind}: {type(error).__name__}: {error}".splitlines()[0][:200]


def prepare_row(
    label: str, name: str, kind: str, function: Callable[..., Prepared], case: object, data: dict[str, Tensor]
) -> tuple[Row, Prepared | None]:
    """The row and its prepared implementation, or the row saying why there is none."""
    row = Row(case=label, implementation=name, kind=kind)
    # each row gets its own copy: a library that keeps the step tensors as state may write into them
    data = {key: value.clone() for key, value in data.items()}
    try:
        prepared = function(case, data)
    except NotImplementedError as error:
        row.status, row.note = "not available", str(error)
        return row, None
    except PeerUnavailable as error:
        row.status = f"unavailable: {error}"
        return row, None
    except Exception as error:  # a peer whose API differs: show why, keep going
        row.status = failure_status("unavailable", error)
        return row, None
    row.note = prepared.note
    return row, prepared


def time_row(prepared: Prepared, args: argparse.Namespace, device: torch.device) -> list[float]:
    return time_callable(
        prepared.run, warmup=args.warmup, repeats=args.repeats, device=device, budget_s=args.budget,
        setup=prepared.setup, clock=args.clock,
    )  # fmt: skip


def finish_row(
    row: Row,
    prepared: Prepared,
    times: list[float],
    references: dict[str, Callable[[], Tensor]],
    reference_cache: dict[str, Tensor],
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """The row's times, then its memory pass and its comparison with the reference."""
    row.median_ms, row.min_ms, row.repeats = median_ms(times), min(times) * 1e3, len(times)
    if prepared.samples:
        row.samples_per_s = prepared.samples / (row.median_ms / 1e3)
    if prepared.steps:
        row.extra["us_per_step"] = row.median_ms * 1e3 / prepared.steps
    if not args.no_memory:
        row.peak_memory_bytes = peak_memory(prepared.run, device, prepared.setup)
    if prepared.reference is not None:
        with torch.no_grad():
            if prepared.setup is not None:
                prepared.setup()
            value = prepared.run()
        if prepared.reference not in reference_cache:
            reference_cache[prepared.reference] = references[prepared.reference]()
        reference = reference_cache[prepared.reference]
        row.max_abs_diff = max_abs_difference(value, reference)
        row.max_abs_dw = float(reference.abs().max())
        row.extra["reference"] = prepared.reference


def run_case(
    label: str,
    case: object,
    data: dict[str, Tensor],
    bound: Bound | None,
    args: argparse.Namespace,
    device: torch.device,
    family_key: str | None = None,
) -> list[Row]:
    """The case's rows: the bound (if any), ours, then the peers'; with ``--interleave`` timed in turns
    (:func:`~benchmarks.common.time_interleaved`), else each row's calls back to back."""
    from benchmarks.cases_peers import PEERS

    family = label.split()[0] if family_key is None else family_key
    references = cases_ours.references(case, data) if not isinstance(case, NetworkCase) else {}
    cache: dict[str, Tensor] = {}
    ours_rows = cases_ours.OURS.get(family) or cases_speed.OURS_SPEED[family]
    implementations = [(name, "ours", function) for name, function in ours_rows]
    if not args.no_peers:
        implementations += [(name, "peer", function) for name, function in PEERS.get(family, [])]
    rows: list[Row] = []
    if args.interleave:
        prepared_rows = [
            prepare_row(label, name, kind, function, case, data) for name, kind, function in implementations
        ]
        timed = [(row, prepared) for row, prepared in prepared_rows if prepared is not None]
        bound_prepared = bound.prepare(device) if bound is not None else None
        calls = [(prepared.run, prepared.setup) for _, prepared in timed]
        if bound_prepared is not None:
            calls.insert(0, (bound_prepared.run, None))
        times, errors = time_interleaved(
            calls, warmup=args.warmup, repeats=args.repeats, device=device, budget_s=args.budget, clock=args.clock
        )
        if bound is not None:
            bound_error = errors.pop(0)
            bound_times = times.pop(0)
            if bound_error is not None:
                raise bound_error  # the machine's own GEMM failed: nothing to compare with
            rows.append(bound.row(label, bound_times, device))
        for index, (row, prepared) in enumerate(timed):
            error = errors[index]
            if error is not None:
                row.status = failure_status("error", error)
            else:
                try:
                    finish_row(row, prepared, times[index], references, cache, args, device)
                except Exception as failure:
                    row.status = failure_status("error", failure)
        rows += [row for row, _ in prepared_rows]
    else:
        if bound is not None:
            rows.append(gemm_bound(label, bound, args, device))
        for name, kind, function in implementations:
            row, prepared = prepare_row(label, name, kind, function, case, data)
            if prepared is not None:
                try:
                    finish_row(row, prepared, time_row(prepared, args, device), references, cache, args, device)
                except Exception as error:
                    row.status = failure_status("error", error)
            rows.append(row)
    if not args.no_peers:
        for row in rows:
            if row.kind == "peer":
                print(f"  {label}: {row.implementation}: {row.status} {fmt_ms(row.median_ms)}", file=sys.stderr)
    bound_row = rows[0] if rows and rows[0].kind == "bound" else None
    ours = [row.median_ms for row in rows if row.kind == "ours" and row.status == "ok" and row.median_ms]
    for row in rows:
        if row.median_ms is None:
            continue
        if bound_row is not None and bound_row.median_ms:
            row.ratio_to_bound = row.median_ms / bound_row.median_ms
        if ours:
            row.ratio_to_ours = row.median_ms / min(ours)
    return rows


# --------------------------------------------------------------------- output


def fmt_ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if value < 1 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def fmt_bytes(value: int | None) -> str:
    return "" if value is None else f"{value / 2**20:.1f}"


def fmt_diff(row: Row) -> str:
    if row.max_abs_diff is None:
        return ""
    return f"{row.max_abs_diff:.1e}"


def table(rows: list[Row]) -> str:
    """A Markdown table (also readable on a terminal)."""
    header = ["case", "implementation", "median ms", "x bound", "x ours", "peak MiB", "max abs Δdw", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        if row.status != "ok":
            cells = [row.case, row.implementation, row.status, "", "", "", "", row.note]
        else:
            note = row.note
            if "us_per_step" in row.extra:
                note = f"{row.extra['us_per_step']:.1f} us/step; " + note
            if row.samples_per_s is not None:
                note = f"{row.samples_per_s:.1f} samples/s; " + note
            if row.max_abs_dw is not None:
                note = f"dw up to {row.max_abs_dw:.3g} (ref {row.extra.get('reference')}); " + note
            cells = [
                row.case, row.implementation, fmt_ms(row.median_ms), fmt_ratio(row.ratio_to_bound),
                fmt_ratio(row.ratio_to_ours), fmt_bytes(row.peak_memory_bytes), fmt_diff(row), note,
            ]  # fmt: skip
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def environment(args: argparse.Namespace, device: torch.device, peers: dict[str, str]) -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "device": str(device) if device.type != "cuda" else f"{device} ({torch.cuda.get_device_name(device)})",
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "eager_op_us": round(eager_op_us(device, args.clock), 2),
        "fused_step": fused_step_available(),
        "peers": peers,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "clock": args.clock,
        "quick": args.quick,
        "interleave": args.interleave,
        "memory_column": (
            "peak torch-tensor bytes allocated during one call above those live before it "
            + ("(torch.cuda.max_memory_allocated)" if device.type == "cuda" else "(torch.profiler CPU memory events)")
        ),
    }


# ------------------------------------------------------------------------ main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", default=",".join(ALL_CASES), help="comma-separated subset of B1,B2,B3,B4,S1,S2,SCALING"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds of timed calls per row before cutting repeats"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the rows and the environment here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="only our rows and the bound")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="time a case's rows (and its bound) one call each in turn, for ratios that hold on a shared machine",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: time.perf_counter; "
        "cpu: the process's CPU time (a machine shared with other work; needs --threads 1)",
    )
    args = parser.parse_args(argv)
    cases = [name.strip().upper() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in cases if name not in ALL_CASES]
    if unknown:
        parser.error(f"--cases: unknown {unknown}, expected a subset of {list(ALL_CASES)}")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.clock == "cpu" and (torch.device(args.device).type != "cpu" or args.threads != 1):
        # a GPU's time is not the process's CPU time, and idle OpenMP workers spin on CPU time
        parser.error("--clock cpu: only with --device cpu and --threads 1")
    args.case_list = cases
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    peers: dict[str, str] = {}
    if not args.no_peers:
        from benchmarks.cases_peers import import_status

        peers = import_status()
    rows: list[Row] = []
    for family in args.case_list:
        print(f"running {family} ...", file=sys.stderr, flush=True)
        if family == "B1":
            for batch in (1, 64):
                case = dense_case(batch, args.quick)
                bound = Bound(case.n_out, case.steps * case.batch, case.n_in)
                rows += run_case(case.name, case, dense_data(case, device), bound, args, device)
        elif family == "B2":
            case = conv_case(args.quick)
            positions = case.out_height * case.out_width
            inner = case.steps * case.batch * positions
            kernel = case.in_channels * case.kernel**2
            bound = Bound(case.out_channels, inner, kernel)
            rows += run_case(case.name, case, conv_data(case, device), bound, args, device)
        elif family == "B3":
            case = dense_case(64, args.quick)
            case = DenseCase(**{**case.__dict__, "name": case.name.replace("B1", "B3")})
            rows += run_case(case.name, case, dense_data(case, device), None, args, device)
        elif family == "B4":
            for batch in (1, None):  # one sample, and the demo's training batch
                case = network_case(batch, args.quick)
                rows += run_case(case.name, case, network_data(case, device), None, args, device)
        elif family == "S1":
            for p_pre in (0.02, 0.005):
                case = cases_speed.s1_case(p_pre, quick=args.quick)
                data = dense_data(case, device)
                label = f"{case.name} forward"
                bound = Bound(case.steps * case.batch, case.n_in, case.n_out, products=1)
                rows += run_case(label, case, data, bound, args, device, family_key="S1 forward")
                label = f"{case.name} update"
                bound = Bound(case.n_out, case.steps * case.batch, case.n_in)
                rows += run_case(label, case, data, bound, args, device, family_key="S1 update")
        elif family == "S2":
            for batch in (1, 64):
                case = cases_speed.stepping_case(batch, quick=args.quick)
                rows += run_case(case.name, case, dense_data(case, device), None, args, device, family_key="S2")
        else:
            for _, case in cases_speed.scaling_cases(args.quick):
                rows += run_case(case.name, case, dense_data(case, device), None, args, device, family_key="SCALING")
    info = environment(args, device, peers)
    print(
        f"\n{info['date']}  device {info['device']}  cpu {info['cpu']} x{info['cpu_count']}  "
        f"torch {info['torch']} ({info['torch_threads']} threads), {info['clock']} clock, "
        f"one eager op {info['eager_op_us']} us, fused step {'on' if info['fused_step'] else 'unavailable'}"
    )
    print(table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": info, "rows": [row.to_json() for row in rows]}
        args.json.write_text(json.dumps(payload, indent=2, allow_nan=False, default=_json_default) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
