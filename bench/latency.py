"""Latency at fixed offered rates: transaction produced → its score produced.

For each rate a fresh worker (``emit_scores`` on, so every transaction yields a record on
the scores topic) receives paced simulator traffic (``offline.simulator.produce``; the
simulated bank's producer lingers ``--linger-ms``, librdkafka's default 5 ms). Latency is
the score record's Kafka timestamp minus the transaction's (both CreateTime, ms: when the
bank's producer took the transaction, and when the worker's producer took the score).

Both topics are read only *after* the traffic has been scored: a consumer reading the
embedded broker at the same time slows every other client of it (measured: a Faust
passthrough's input latency went from p99 ~25 ms to ~1 s), so a live "visible to a
consumer" figure would measure the benchmark, not Kuntur. The first ``--warmup`` seconds
are left out (fetchers starting). Each rate runs on a broker of its own: the embedded
broker (Tansu, memory-only) gets slower as it holds more records, so p50/p99 per 5 s
window are in the results too. The worker's own ``kuntur_scoring_latency_seconds``
histogram (produce → scored, in-process) is reported beside it.

    python -m bench.latency                          # 500, 1000, 2000 tx/s, 20 s each
    python -m bench.latency --rates 1000,3000 --seconds 60
    python -m bench.latency --target passthrough     # the same for the passthrough ceiling
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench.common import (
    Context,
    apache_kafka,
    bench_parser,
    envelope,
    follow,
    load_average,
    overrides_from_args,
    save,
    size_from_args,
    start_worker,
    table,
)
from bench.throughput import CpuMeter, start_passthrough
from config.settings import Settings
from offline.simulator import SimConfig, generate, produce
from stream.dev.prom import histogram_quantile
from stream.kafka.admin import ensure_topics

QUANTILES = (0.5, 0.95, 0.99)
TARGET_P99_MS = 100.0


def reader(settings: Settings, topics: Sequence[str]) -> Consumer:
    """A consumer assigned to every partition of ``topics`` from the beginning (no group join)."""
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": "kuntur-bench-reader",  # never joined or committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    parts = []
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
    consumer.assign(parts)
    return consumer


#: librdkafka's default linger: the simulated bank's producer batches for at most 5 ms.
BANK_LINGER_MS = 5


def run_rate(
    ctx: Context,
    rate: float,
    seconds: float,
    warmup: float,
    linger_ms: int = BANK_LINGER_MS,
    target: str = "pipeline",
) -> dict[str, Any]:
    """Paced traffic into a fresh worker (or the passthrough, copying to the scores topic)."""
    settings = ctx.settings(f"lat{int(rate)}", emit_scores=True)
    if ctx.source is not None:  # fresh input topics: this run's traffic only
        settings = settings.replace(
            topic_transactions=f"{settings.app_id}-tx", topic_labels=f"{settings.app_id}-labels"
        )
    n = int(rate * seconds)
    events = list(generate(SimConfig(seed=ctx.size.seed, accounts=ctx.size.accounts, transactions=n)))
    if target == "passthrough":
        ensure_topics(settings)
        proc = start_passthrough(ctx, settings.topic_transactions, settings.topic_scores)
    else:
        proc = ctx.track(start_worker(settings, ctx.log_path(f"latency-{int(rate)}")))
    load = load_average()
    try:
        proc.wait_ready()
        cpu = CpuMeter(ctx, [proc])
        counts = produce(
            events,
            {**settings.kafka_client_config(), "linger.ms": str(linger_ms)},
            settings.topic_transactions,
            settings.topic_labels,
            rate=rate,
            progress=False,
        )
        done = follow(proc.count, counts["transactions"], proc.alive, stall_s=10.0, timeout=120.0)
        costs = cpu.per_event(done.done)
        m = proc.metrics() if target == "pipeline" else {}
    finally:
        proc.stop()
    sent = read_timestamps(settings, settings.topic_transactions, counts["transactions"])
    scored = read_timestamps(settings, settings.topic_scores, int(done.done))
    return {**summarise(rate, seconds, warmup, sent, scored, m, load), **costs, "target": target}


def read_timestamps(settings: Settings, topic: str, expected: int, idle_s: float = 3.0) -> dict[str, int]:
    """transaction_id → Kafka timestamp (ms) of the first record of each id in ``topic``."""
    consumer = reader(settings, [topic])
    out: dict[str, int] = {}
    seen = 0
    last = time.monotonic()
    try:
        while seen < expected and time.monotonic() - last < idle_s:
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                if msg.error():
                    continue
                seen += 1
                last = time.monotonic()
                out.setdefault(orjson.loads(msg.value())["transaction_id"], msg.timestamp()[1])
    finally:
        consumer.close()
    return out


def summarise(
    rate: float,
    seconds: float,
    warmup: float,
    sent: dict[str, int],
    scored: dict[str, int],
    metrics: dict[str, Any],
    load: tuple[float, float, float],
) -> dict[str, Any]:
    start = min(sent.values()) if sent else 0
    keep = [tid for tid, ts in sent.items() if ts - start >= warmup * 1000 and tid in scored]
    latency = np.array([scored[t] - sent[t] for t in keep], dtype=float)
    buckets = metrics.get("buckets", [])
    out: dict[str, Any] = {
        "offered_rate": rate,
        "seconds": seconds,
        "sent": len(sent),
        "scored": len(scored),
        "measured": len(keep),
        "load_average": load,
    }
    for q in QUANTILES:
        out[f"p{int(q * 100)}_ms"] = round(float(np.quantile(latency, q)), 1) if len(latency) else None
    out["max_ms"] = round(float(latency.max()), 1) if len(latency) else None
    # The embedded broker slows down as it fills: show the drift over the run.
    windows = {}
    for tid in keep:
        windows.setdefault(int((sent[tid] - start) // 5000) * 5, []).append(scored[tid] - sent[tid])
    out["p50_p99_ms_by_5s"] = {
        f"{w}-{w + 5}s": [round(float(np.quantile(v, 0.5)), 1), round(float(np.quantile(v, 0.99)), 1)]
        for w, v in sorted(windows.items())
    }
    for q in QUANTILES:
        v = histogram_quantile(q, buckets)
        out[f"worker_p{int(q * 100)}_ms"] = round(v * 1000, 1) if v is not None else None
    if sent:
        span = (max(sent.values()) - start) / 1000.0
        out["achieved_rate"] = round(len(sent) / span, 1) if span > 0 else None
    return out


def run(
    ctx: Context,
    rates: Sequence[float] | None = None,
    seconds: float | None = None,
    warmup: float = 2.0,
    linger_ms: int = BANK_LINGER_MS,
    target: str = "pipeline",
    broker: str = "tansu",
) -> dict:
    """Every rate on a fresh broker (``broker`` "tansu": the embedded one, or the session's
    ``--bootstrap``), or with ``broker`` "kafka" on fresh topics of one Apache Kafka node."""
    if broker == "kafka":
        with apache_kafka(ctx) as kctx:
            rows = [
                _rate(kctx, rate, seconds, warmup, linger_ms, target, fresh=False)
                for rate in rates or ctx.size.latency_rates
            ]
    else:
        rows = [
            _rate(ctx, rate, seconds, warmup, linger_ms, target, fresh=True) for rate in rates or ctx.size.latency_rates
        ]
    ok = [r["offered_rate"] for r in rows if r["p99_ms"] is not None and r["p99_ms"] < TARGET_P99_MS]
    result = {
        "target": target,
        "broker": "Apache Kafka 3.9 (1 KRaft node)" if broker == "kafka" else "Tansu (embedded)",
        "bank_linger_ms": linger_ms,
        "rates": rows,
        "highest_rate_p99_under_100ms": max(ok) if ok else None,
    }
    key = "latency" if target == "pipeline" else "latency_passthrough"
    ctx.results[key if broker == "tansu" else f"{key}_{broker}"] = result
    return result


def _rate(
    ctx: Context, rate: float, seconds: float | None, warmup: float, linger_ms: int, target: str, fresh: bool
) -> dict[str, Any]:
    seconds = seconds or ctx.size.latency_seconds
    ctx.say(f"latency: {target} {rate:.0f} tx/s for {seconds:.0f} s{' (fresh broker)' if fresh else ''} ...")
    if fresh:
        with ctx.fresh() as own:
            r = run_rate(own, rate, seconds, warmup, linger_ms, target)
    else:
        r = run_rate(ctx, rate, seconds, warmup, linger_ms, target)
    ctx.say(f"  p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms")
    return r


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            r["offered_rate"],
            r["measured"],
            r["p50_ms"],
            r["p95_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["worker_p50_ms"],
            r["worker_p99_ms"],
            r.get("cpu_us_per_event"),
            r.get("broker_cpu_us_per_event"),
        ]
        for r in result["rates"]
    ]
    what = "score" if result["target"] == "pipeline" else "copy (passthrough)"
    out = table(
        f"Latency — transaction produced → {what} produced (ms), {result.get('broker', 'Tansu (embedded)')}",
        ["tx/s", "measured", "p50", "p95", "p99", "max", "worker p50", "worker p99", "CPU µs/tx", "broker µs/tx"],
        rows,
    )
    return out + f"\nhighest rate with p99 < {TARGET_P99_MS:.0f} ms: {result['highest_rate_p99_under_100ms']} tx/s"


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.latency", __doc__)
    p.add_argument("--rates", help="comma-separated offered rates, tx/s (default 500,1000,2000)")
    p.add_argument("--seconds", type=float, help="traffic per rate, seconds (default 20, quick 6)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of traffic left out at the start (default 2)")
    p.add_argument(
        "--linger-ms",
        type=int,
        default=BANK_LINGER_MS,
        help=f"linger of the simulated bank's producer (default {BANK_LINGER_MS}, librdkafka's default)",
    )
    p.add_argument(
        "--target",
        choices=["pipeline", "passthrough"],
        default="pipeline",
        help="measure the Kuntur worker (default) or the passthrough ceiling app (copies to the scores topic)",
    )
    p.add_argument(
        "--broker",
        choices=["tansu", "kafka"],
        default="tansu",
        help="tansu: a fresh embedded broker per rate (default); kafka: one Apache Kafka 3.9 node (make kafka)",
    )
    args = p.parse_args(argv)
    size = size_from_args(args)
    rates = [float(r) for r in args.rates.split(",")] if args.rates else None
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        head = envelope(size)
        result = run(ctx, rates, args.seconds, args.warmup, args.linger_ms, args.target, args.broker)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('latency', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
