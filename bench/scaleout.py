"""Scale-out: 1, 2, 4 Kuntur workers in one consumer group draining the same pre-produced backlog.

Each run reads the topic from the beginning in a fresh consumer group; the workers split
its partitions (4 by default, so 4 workers is the most that share the work). By default
the runs use the session's broker (the embedded Tansu); ``--broker kafka`` starts a real
Apache Kafka 3.9 node (``stream.dev.kafka``; jars from ``make kafka``) for them and
pre-produces the same transactions there. On a 2-core machine the broker, the workers
and this benchmark share two cores: the speed-up says where that stops, the load
average recorded before and after each run says how busy the machine was.

    python -m bench.scaleout --broker kafka --workers 1,2,4 --transactions 60000
    python -m bench.scaleout --quick
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from bench.common import (
    Context,
    apache_kafka,
    bench_parser,
    envelope,
    load_average,
    overrides_from_args,
    save,
    size_from_args,
    table,
)
from bench.throughput import run_pipeline


def run(ctx: Context, workers: Sequence[int] = (1, 2), broker: str = "tansu") -> dict[str, Any]:
    """``workers`` runs, one after the other; ``broker``: "tansu" (the session's broker) or "kafka"."""
    if broker == "kafka":
        with apache_kafka(ctx) as kctx:
            result = _runs(kctx, workers, reuse=None)
    else:
        result = _runs(ctx, workers, reuse=ctx.results.get("throughput", {}).get("pipeline"))
    result["broker"] = "Apache Kafka 3.9 (1 KRaft node)" if broker == "kafka" else "Tansu (embedded)"
    ctx.results["scaleout"] = result
    return result


def _runs(ctx: Context, workers: Sequence[int], reuse: dict[str, Any] | None) -> dict[str, Any]:
    ctx.ensure_source()
    runs: dict[int, dict[str, Any]] = {}
    for n in workers:
        if n == 1 and reuse is not None and reuse.get("events_per_s"):
            runs[n] = reuse
            continue
        ctx.say(f"scale-out: {n} worker(s) ...")
        runs[n] = run_pipeline(ctx, workers=n, name=f"scale{n}")
        runs[n]["load_average_after"] = load_average()
        ctx.say(f"  {runs[n]['events_per_s']} tx/s")
    base = runs.get(min(runs))["events_per_s"] if runs else None  # type: ignore[index]
    for r in runs.values():
        rate = r["events_per_s"]
        r["speedup"] = round(rate / base, 2) if rate and base else None
    return {"cores": os.cpu_count(), "source": ctx.source_counts, "runs": {str(n): r for n, r in runs.items()}}


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            int(n),
            r["events_per_s"],
            r["events_per_s_10_90"],
            r.get("speedup"),
            " / ".join(f"{x:,}" for x in r["per_worker_transactions"]),
            r.get("cpu_us_per_event"),
            r.get("broker_cpu_us_per_event"),
            (r.get("load_average") or [None])[0],
            (r.get("load_average_after") or [None])[0],
        ]
        for n, r in result["runs"].items()
    ]
    return table(
        f"Scale-out — workers in one group on {result['broker']}, "
        f"{result['source']['transactions']:,} transactions ({result['cores']} cores shared with the broker)",
        [
            "workers",
            "tx/s",
            "tx/s (10-90%)",
            "speed-up",
            "transactions per worker",
            "CPU µs/tx",
            "broker CPU µs/tx",
            "load before",
            "load after",
        ],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.scaleout", __doc__)
    p.add_argument("--broker", choices=("tansu", "kafka"), default="tansu", help="broker of the runs (default tansu)")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    args = p.parse_args(argv)
    size = size_from_args(args)
    workers = [int(w) for w in args.workers.split(",")]
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        head = envelope(size)
        result = run(ctx, workers, args.broker)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('scaleout', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
