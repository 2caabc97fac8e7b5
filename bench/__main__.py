"""``python -m bench`` (``make bench``): every benchmark in one session, one broker.

Order: pre-produce the simulator's traffic once; throughput (passthrough ceiling, the
worker with and without the shared model, the plain confluent-kafka peer and the Quix
Streams peer); transports (passthrough ceilings per Faust driver and fetch setting,
raw client); scale-out (1, 2, 4 workers on Apache Kafka; ``--scale-broker tansu`` on the embedded one);
profile (cProfile of a worker); latency at fixed rates (pipeline, then the passthrough
for reference; on Tansu, each rate on a fresh broker, then on one Apache Kafka node);
POST /score latency while two workers stream (bench/score_api.py);
state size and RSS; backtest speed (``kuntur evaluate`` per CPU second,
bench/evaluate.py). Tables go to stdout, progress to stderr, and everything to
``bench/results/bench-<UTC time>.json`` (and ``bench-latest.json``).

    python -m bench                     # ~10 min on 2 cores
    python -m bench --quick             # ~2 min smoke run
    python -m bench --only throughput,latency
    python -m bench --transactions 1000000 --latency-seconds 60 --rates 500,1000,2000,3000
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from bench import evaluate, latency, profile, scaleout, score_api, state, throughput, transports
from bench.common import (
    Context,
    Size,
    bench_parser,
    envelope,
    load_average,
    overrides_from_args,
    save,
    size_from_args,
)

BENCHMARKS = ("throughput", "transports", "scaleout", "profile", "latency", "score_api", "state", "evaluate")


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench", __doc__)
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--rates", help="latency: comma-separated offered rates, tx/s (default 500,1000,2000)")
    p.add_argument("--latency-seconds", type=float, help="latency: traffic per rate, seconds (default 20)")
    p.add_argument("--profile-transactions", type=int, help="profile: transactions (default 50000)")
    p.add_argument("--state-accounts", type=int, help="state: distinct accounts for RSS (default 1000000)")
    p.add_argument(
        "--scale-broker", choices=("tansu", "kafka"), default="kafka", help="scale-out: broker (default kafka)"
    )
    p.add_argument(
        "--latency-brokers",
        default="tansu,kafka",
        help="latency: brokers, each with the pipeline and the passthrough (default tansu,kafka)",
    )
    p.add_argument("--scale-workers", default="1,2,4", help="scale-out: worker counts (default 1,2,4)")
    p.add_argument("--quix-python", help="throughput: a Python with quixstreams (bench/peer_quix.py)")
    args = p.parse_args(argv)
    size = size_from_args(args)
    changes: dict[str, object] = {}
    if args.rates:
        changes["latency_rates"] = tuple(float(r) for r in args.rates.split(","))
    if args.latency_seconds:
        changes["latency_seconds"] = args.latency_seconds
    if args.profile_transactions:
        changes["profile_transactions"] = args.profile_transactions
    if args.state_accounts:
        changes["state_accounts"] = args.state_accounts
    size = Size(**{**size.__dict__, **changes})
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    head = envelope(size)
    began = time.monotonic()
    printed: list[str] = []

    def show(text: str) -> None:
        printed.append(text)
        print(text + "\n", flush=True)

    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        if "throughput" in chosen:
            show(throughput.render(throughput.run(ctx, quix_python=args.quix_python)))
        if "transports" in chosen:
            show(transports.render(transports.run(ctx)))
        if "scaleout" in chosen:
            workers = [int(w) for w in args.scale_workers.split(",")]
            show(scaleout.render(scaleout.run(ctx, workers, args.scale_broker)))
        if "profile" in chosen:
            show(profile.render(profile.run(ctx), top=15))
        if "latency" in chosen:
            for broker in args.latency_brokers.split(","):
                show(latency.render(latency.run(ctx, broker=broker)))
                show(latency.render(latency.run(ctx, target="passthrough", broker=broker)))
        if "score_api" in chosen:
            with ctx.fresh() as own:
                ctx.results["score_api"] = score_api.run(own, seconds=ctx.size.latency_seconds)
            show(score_api.render(ctx.results["score_api"]))
        results = ctx.results
    if "state" in chosen:
        show(state.render(state.run(size, results)))
    if "evaluate" in chosen:
        results["evaluate"] = evaluate.run(size, () if args.quick else evaluate.DEFAULT_DATASETS)
        show(evaluate.render(results["evaluate"]))
    data = {
        **head,
        "load_average_after": load_average(),
        "wall_seconds": round(time.monotonic() - began, 1),
        **results,
    }
    print(
        f"total {data['wall_seconds']:.0f} s; load average before {head['load_average_before']}, "
        f"after {data['load_average_after']}"
    )
    if not args.no_save:
        print(f"saved {save('bench', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
