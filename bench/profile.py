"""Where a worker's time goes, per stage: a real worker under cProfile on pre-produced traffic.

The worker (``python -m cProfile -m stream.cli worker``) consumes the pre-produced topic
until it has scored ``--profile-transactions`` transactions, then stops gracefully and
cProfile writes its statistics. Reported:

* per stage: the time inside each agent (its body, the core steps it calls, its sends
  and the Faust stream iteration that feeds it; an ``async for`` resumes inside the
  agent's frame) and inside the core steps, in µs per scored transaction;
* the top functions by own time and by cumulative time.

cProfile sees the thread that runs the agents (Faust's event loop); aiokafka's fetcher
runs in a thread of its own and is not in these figures. cProfile roughly doubles the
cost of Python calls, so compare shares, not absolute rates. For a sampling profile of
every thread use py-spy (``pip install py-spy`` into the venv; not a Kuntur dependency)::

    py-spy record -o worker.svg --pid <worker pid>

    python -m bench.profile                  # 50k transactions
    python -m bench.profile --quick --top 30
"""

from __future__ import annotations

import pstats
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    Context,
    bench_parser,
    envelope,
    follow,
    overrides_from_args,
    save,
    size_from_args,
    start_worker,
    table,
)

#: (stage, file suffix, function name): what the per-stage table adds up.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("accounts agent", "stream/agents.py", "accounts"),
    ("merchants agent", "stream/agents.py", "merchants"),
    ("scoring agent", "stream/agents.py", "scoring"),
    ("labels agent", "stream/agents.py", "labels"),
    ("  validate (parse_transaction)", "stream/pipeline/validation.py", "parse_transaction"),
    ("  account state (AccountStage)", "features/account/update.py", "update_account"),
    ("  merchant state (MerchantStage)", "features/merchant.py", "update_merchant"),
    ("  score (Detector.score)", "models/detector.py", "score"),
    ("  alert (build_alert)", "stream/pipeline/alerts.py", "build_alert"),
)


def run(ctx: Context, transactions: int | None = None, top: int = 20) -> dict[str, Any]:
    ctx.ensure_source()
    n = min(transactions or ctx.size.profile_transactions, ctx.source_counts["transactions"])
    settings = ctx.settings("profile")
    prof = ctx.tmp / "worker.prof"
    ctx.say(f"profile: worker under cProfile for {n:,} transactions ...")
    worker = ctx.track(start_worker(settings, ctx.log_path("profile"), profile_to=prof))
    try:
        worker.wait_ready()
        progress = follow(worker.count, n, worker.alive)
    finally:
        worker.stop()
    if not prof.exists():
        raise RuntimeError(f"the profiled worker wrote no statistics:\n{worker.log()}")
    result = analyse(prof, int(progress.done), top)
    result["transactions_per_s_under_profiler"] = progress.summary()["events_per_s"]
    ctx.results["profile"] = result
    return result


def analyse(path: Path, scored: int, top: int = 20) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    # cProfile measures wall time: the event loop's wait in epoll is idle, not work.
    idle = sum(tt for (_, _, name), (_, _, tt, _, _) in raw.items() if name in _IDLE)
    startup = sum(ct for (file, _, name), (_, _, _, ct, _) in raw.items() if name == "build_worker")
    total = sum(tt for (_, _, tt, _, _) in raw.values()) - idle - startup
    per_tx = 1e6 / max(1, scored)
    stages = []
    for label, suffix, func in STAGES:
        cum = sum(ct for (file, _, name), (_, _, _, ct, _) in raw.items() if name == func and file.endswith(suffix))
        stages.append(
            {"stage": label, "seconds": round(cum, 3), "us_per_tx": round(cum * per_tx, 1), "share": _share(cum, total)}
        )
    entries = [
        {
            "function": f"{_short(file)}:{line}({name})",
            "calls": nc,
            "own_s": round(tt, 3),
            "cum_s": round(ct, 3),
            "own_us_per_tx": round(tt * per_tx, 2),
        }
        for (file, line, name), (_, nc, tt, ct, _) in raw.items()
    ]
    entries = [e for e in entries if not any(name in e["function"] for name in _IDLE)]
    by_own = sorted(entries, key=lambda e: -e["own_s"])[:top]
    by_cum = sorted((e for e in entries if not any(s in e["function"] for s in _WRAPPERS)), key=lambda e: -e["cum_s"])[
        :top
    ]
    return {
        "scored": scored,
        "idle_seconds": round(idle, 2),
        "startup_seconds": round(startup, 2),
        "profiled_seconds": round(total, 2),
        "us_per_tx": round(total * per_tx, 1),
        "stages": stages,
        "top_own": by_own,
        "top_cumulative": by_cum,
    }


#: Waiting for I/O (wall time cProfile counts as a call's own time).
_IDLE = ("<method 'poll' of 'select.epoll' objects>",)

#: Entry points whose cumulative time is "everything": left out of the cumulative ranking.
_WRAPPERS = (
    "run_until_complete",
    "run_forever",
    "_run_once",
    "events.py:78(_run)",
    "'run' of '_contextvars.Context'",
    "<module>",
    "execute_from_commandline",
    "(<built-in method builtins.exec>)",
    "importlib",
    "_find_and_load",
    "_load_unlocked",
    "_call_with_frames_removed",
    "__import__",
    "_handle_fromlist",
    "build_parser",
    "build_worker",
    "select.py",
    "selectors.py",
)


def _share(part: float, total: float) -> float:
    return round(part / total, 3) if total else 0.0


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def render(result: dict[str, Any], top: int = 15) -> str:
    out = table(
        f"Profile — one worker, {result['scored']:,} transactions: {result['us_per_tx']} µs of busy main-thread "
        f"time per transaction under cProfile (idle epoll wait and start-up left out)",
        ["stage (cumulative, includes sends and stream iteration)", "seconds", "µs/tx", "share"],
        [[s["stage"], s["seconds"], s["us_per_tx"], s["share"]] for s in result["stages"]],
    )
    out += "\n\n" + table(
        f"Top {top} functions by own time",
        ["function", "calls", "own s", "cum s", "own µs/tx"],
        [[e["function"], e["calls"], e["own_s"], e["cum_s"], e["own_us_per_tx"]] for e in result["top_own"][:top]],
    )
    out += "\n\n" + table(
        f"Top {top} functions by cumulative time",
        ["function", "calls", "own s", "cum s"],
        [[e["function"], e["calls"], e["own_s"], e["cum_s"]] for e in result["top_cumulative"][:top]],
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.profile", __doc__)
    p.add_argument("--profile-transactions", type=int, help="transactions to profile (default 50000, quick 5000)")
    p.add_argument("--top", type=int, default=20, help="functions listed (default 20)")
    args = p.parse_args(argv)
    size = size_from_args(args)
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        head = envelope(size)
        result = run(ctx, args.profile_transactions, args.top)
    print(render(result, args.top))
    if not args.no_save:
        print(f"saved {save('profile', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
