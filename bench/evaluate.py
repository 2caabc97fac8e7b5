"""In-process backtest speed: transactions per CPU second of ``kuntur evaluate`` (goal: 25,000
with the default model), on the simulator's history and on the external histories the
model-quality benchmarks use (offline/benchmarks.toml; a file that is absent is skipped).

Each history is evaluated by a child ``python -m stream.cli evaluate FILE --json ...`` with
the default model and nothing else (no baselines, no report); its CPU time is the child's
user + system seconds. The baseline, measured in the same run on the same file, is a child
that only reads and validates the history (``load_history``: what every backtest pays before
the first transaction is scored). Printed per history:

* stream tx per CPU second: the scoring loop alone (what ``evaluate`` reports as
  ``cpu_throughput_tx_s``: features, score, learning, label bookkeeping);
* command tx per CPU second: the whole command, reading the file included;
* read-only tx per CPU second (the baseline) and the command's rate as a share of it.

    python -m bench.evaluate                 # simulator 200k + Sparkov (857k) if present
    python -m bench.evaluate --quick         # simulator 20k only
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, Size, bench_parser, envelope, load_average, save, size_from_args, table

#: What goal 4 of the performance issue asks of the default model.
GOAL_TX_PER_CPU_S = 25_000
#: External histories timed by default (PaySim's 3.5 M rows take minutes: ``--datasets``).
DEFAULT_DATASETS = ("sparkov",)


def _child_cpu(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``cmd``; its CPU seconds (user + system) and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return cpu, wall, done


def _read_only(path: Path, columns: dict[str, str] | None) -> tuple[float, int]:
    """CPU seconds of a child that only reads and validates the history; rows read."""
    script = (
        "import sys, json\n"
        "from offline.backtest.history import load_history\n"
        "h = load_history(sys.argv[1], columns=json.loads(sys.argv[2]) or None)\n"
        "print(len(h.transactions))\n"
    )
    cpu, _, done = _child_cpu([sys.executable, "-c", script, str(path), json.dumps(columns or {})])
    return cpu, int(done.stdout.strip().splitlines()[-1])


def time_history(name: str, path: Path, extra: Sequence[str], columns: dict[str, str] | None) -> dict[str, Any]:
    """Evaluate one history with the default model and read it alone; the figures of one row."""
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [sys.executable, "-m", "stream.cli", "evaluate", str(path), "--no-progress", "--json", str(summary)]
        cpu, wall, _ = _child_cpu([*cmd, *extra])
        run = json.loads(summary.read_text())["runs"][0]
    read_cpu, rows = _read_only(path, columns)
    n = int(run["transactions"])
    command_rate = n / cpu if cpu else None
    read_rate = rows / read_cpu if read_cpu else None
    return {
        "history": name,
        "transactions": n,
        "stream_tx_per_cpu_s": run.get("cpu_throughput_tx_s"),
        "command_tx_per_cpu_s": round(command_rate) if command_rate else None,
        "command_cpu_s": round(cpu, 2),
        "command_wall_s": round(wall, 2),
        "read_only_tx_per_cpu_s": round(read_rate) if read_rate else None,
        "command_vs_read_only": round(command_rate / read_rate, 3) if command_rate and read_rate else None,
        "stream_vs_goal": round(run["cpu_throughput_tx_s"] / GOAL_TX_PER_CPU_S, 3)
        if run.get("cpu_throughput_tx_s")
        else None,
        "model": run.get("name"),
        "load_average_before": load,
    }


def _external(name: str) -> tuple[Path, list[str], dict[str, str]] | None:
    """A dataset of offline/benchmarks.toml as (file, evaluate options, column map); None if absent."""
    spec = tomllib.loads((ROOT / "offline" / "benchmarks.toml").read_text())["datasets"].get(name)
    if spec is None or "file" not in spec or "columns" not in spec or "values" in spec:
        return None  # value maps (PaySim's actions) are offline.benchmark's, not evaluate's
    path = (ROOT / spec["file"]).resolve()
    if not path.exists():
        return None
    columns = dict(spec["columns"])
    extra = ["--columns", ",".join(f"{k}={v}" for k, v in columns.items())]
    if "label_delay" in spec:
        extra += ["--label-delay", spec["label_delay"]]
    return path, extra, columns


def run(size: Size, datasets: Sequence[str] = DEFAULT_DATASETS) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "history.csv"
        print(f"evaluate: simulating {size.transactions:,} transactions ...", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", "stream.cli", "simulate", "--out", str(sim), "--no-progress",
             "--transactions", str(size.transactions), "--accounts", str(size.accounts), "--seed", str(size.seed)],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        print("evaluate: simulator history ...", file=sys.stderr, flush=True)
        rows.append(time_history(f"simulator {size.transactions:,} tx", sim, [], None))
    for name in datasets:
        found = _external(name)
        if found is None:
            skipped.append(f"{name}: file absent, or not a plain column mapping (offline/benchmarks.toml)")
            continue
        print(f"evaluate: {name} ...", file=sys.stderr, flush=True)
        path, extra, columns = found
        rows.append(time_history(name, path, extra, columns))
    return {"goal_tx_per_cpu_s": GOAL_TX_PER_CPU_S, "histories": rows, "skipped": skipped}


def render(result: dict[str, Any]) -> str:
    headers = (
        "history", "transactions", "stream tx/CPU-s", "× goal", "command tx/CPU-s",
        "read-only tx/CPU-s", "command ÷ read-only", "load 1m",
    )  # fmt: skip
    rows = [
        (
            r["history"],
            r["transactions"],
            r["stream_tx_per_cpu_s"],
            r["stream_vs_goal"],
            r["command_tx_per_cpu_s"],
            r["read_only_tx_per_cpu_s"],
            r["command_vs_read_only"],
            r["load_average_before"][0],
        )  # fmt: skip
        for r in result["histories"]
    ]
    title = (
        f"Backtest speed — kuntur evaluate, default model, per CPU second (goal {result['goal_tx_per_cpu_s']:,}; "
        "baseline: reading the same history only)"
    )
    text = table(title, headers, rows)
    for line in result["skipped"]:
        text += f"\nskipped {line}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.evaluate", __doc__)
    p.add_argument(
        "--datasets",
        default=",".join(DEFAULT_DATASETS),
        help="external histories of offline/benchmarks.toml to time (default sparkov; '' for none)",
    )
    args = p.parse_args(argv)
    size = size_from_args(args)
    datasets = () if args.quick else tuple(d for d in args.datasets.split(",") if d)
    result = run(size, datasets)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('evaluate', {**envelope(size), **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
