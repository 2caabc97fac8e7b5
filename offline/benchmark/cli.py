"""Command line of the benchmark: which datasets, candidates and baselines; where results go."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from config.settings import load_settings
from offline.benchmark.config import DEFAULT_FILE, REPO_ROOT, load_benchmarks
from offline.benchmark.run import ensure_file, run_dataset
from offline.benchmark.tables import format_tables, write_tables
from offline.errors import BaselineUnavailable, HistoryError, UnknownBaselineError

__all__ = ["main"]

RESULTS = REPO_ROOT / "data" / "bench"
DOC = REPO_ROOT / "docs" / "model-quality.md"


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m offline.benchmark",
        description="Run every online candidate and batch baseline on every benchmark dataset "
        "(offline/benchmarks.toml) and write docs/model-quality.md's tables.",
    )
    p.add_argument("--config", default=str(DEFAULT_FILE), help="benchmark file (offline/benchmarks.toml)")
    p.add_argument("--dataset", type=_names, help="only these datasets (comma-separated); default all")
    p.add_argument("--candidates", type=_names, help="online candidates instead of the file's")
    p.add_argument("--baselines", type=_names, help="batch baselines instead of the file's ('' for none)")
    p.add_argument(
        "--reuse-baselines",
        action="store_true",
        help="keep the batch rows of the saved result (they depend on the features only) and run the online "
        "candidates alone",
    )
    p.add_argument("--results", default=str(RESULTS), help="directory of the per-dataset JSON results (data/bench)")
    p.add_argument("--doc", default=str(DOC), help="Markdown file whose tables are rewritten")
    p.add_argument("--no-doc", action="store_true", help="do not rewrite the Markdown tables")
    p.add_argument("--tables-only", action="store_true", help="rewrite the tables from saved results, run nothing")
    return p


def _load_saved(results: Path, order: list[str]) -> list[dict[str, Any]]:
    saved = {}
    for name in order:
        path = results / f"benchmark-{name}.json"
        if path.exists():
            saved[name] = orjson.loads(path.read_bytes())
    return [saved[n] for n in order if n in saved]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:
        bench = load_benchmarks(args.config)
        names = args.dataset or list(bench.datasets)
        unknown = [n for n in names if n not in bench.datasets]
        if unknown:
            raise HistoryError(f"unknown dataset(s) {unknown}; the file has {list(bench.datasets)}")
        results_dir = Path(args.results)
        settings = load_settings(env={})
        if not args.tables_only:
            results_dir.mkdir(parents=True, exist_ok=True)
            for name in names:
                ds = bench.datasets[name]
                if not ensure_file(ds, log):
                    continue
                saved = results_dir / f"benchmark-{name}.json"
                reuse = args.reuse_baselines and saved.exists()
                baselines = [] if reuse else args.baselines
                res = run_dataset(ds, bench, settings, log, candidates=args.candidates, baselines=baselines)
                if reuse:
                    old = orjson.loads(saved.read_bytes())
                    res["rows"] += [r for r in old["rows"] if r["kind"] == "batch"]
                    res["baselines_run_at"] = old.get("baselines_run_at", old.get("run_at"))
                res["run_at"] = datetime.now(tz=UTC).isoformat(timespec="minutes")
                res["command"] = "python -m offline.benchmark " + " ".join(argv if argv is not None else sys.argv[1:])
                (results_dir / f"benchmark-{name}.json").write_bytes(
                    orjson.dumps(res, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
                )
        results = _load_saved(results_dir, list(bench.datasets))
    except (HistoryError, BaselineUnavailable, UnknownBaselineError) as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    print(format_tables(results))
    if not args.no_doc and results:
        write_tables(Path(args.doc), results)
        log(f"tables written to {args.doc}")
    return 0
