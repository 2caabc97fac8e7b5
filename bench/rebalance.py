"""Rebalance: workers joining over a backlog on Apache Kafka — is every transaction scored?

Each run starts ``--workers`` Kuntur workers at once in a fresh consumer group over the
same pre-produced backlog (they rebalance while it drains), waits until they stop making
progress, then reads every topic back and reports per run: transactions never scored and
the hop that lost them (never reached ``<app>-by-merchant-v3``, reached it but not
``<app>-to-score-v3``, reached that but no score), duplicates, messages the workers' offset
guards read back after the consumer skipped them (``kuntur_input_gap_messages_total``), and
the input partitions whose committed offset stopped short of their end. ``--busy K`` keeps
K processes spinning on the CPU during the runs: the losses this measures showed up on a
busy machine. A correctness probe, not a speed figure.

    python -m bench.rebalance --runs 8 --busy 2
    python -m bench.rebalance --quick --runs 2
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench.common import Context, bench_parser, envelope, overrides_from_args, save, size_from_args, table
from bench.throughput import run_pipeline
from stream.wire import MerchantEntry, decode_merchant_entries, decode_score_entries


def read_topic(bootstrap: str, topic: str) -> list[tuple[int, int, bytes]]:
    """Every message of ``topic``: (partition, offset, value)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-rebalance-reader", "enable.auto.commit": False})
    out: list[tuple[int, int, bytes]] = []
    try:
        meta = c.list_topics(topic, timeout=30).topics[topic]
        for p in sorted(meta.partitions):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, low)])
            n = 0
            while n < high - low:
                for m in c.consume(1000, 5):
                    if not m.error():
                        out.append((p, m.offset(), m.value()))
                        n += 1
    finally:
        c.close()
    return out


def committed_short(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Input partitions whose committed offset is short of their end: partition -> messages."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        short = {}
        for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30):
            _, high = c.get_watermark_offsets(tp, timeout=30)
            if tp.offset < high:
                short[tp.partition] = high - max(tp.offset, 0)
        return short
    finally:
        c.close()


def one_run(ctx: Context, workers: int, n: int) -> dict[str, Any]:
    result = run_pipeline(ctx, workers=workers, name=f"rebalance{n}", emit_scores=True)
    source = ctx.ensure_source()
    app = result["app_id"]
    bootstrap = ctx.bootstrap
    ids = {orjson.loads(v)["transaction_id"] for _, _, v in read_topic(bootstrap, source.topic_transactions)}
    by_merchant: Counter[str] = Counter()
    for _, _, v in read_topic(bootstrap, f"{app}-by-merchant-v3"):
        by_merchant.update(e.emit.tx.transaction_id for e in decode_merchant_entries(v) if isinstance(e, MerchantEntry))
    to_score: Counter[str] = Counter()
    for _, _, v in read_topic(bootstrap, f"{app}-to-score-v3"):
        to_score.update(e.emit.tx.transaction_id for e in decode_score_entries(v))
    scored = Counter(orjson.loads(v)["transaction_id"] for _, _, v in read_topic(bootstrap, result["topic_scores"]))
    return {
        "transactions": len(ids),
        "never_scored": len(ids - scored.keys()),
        "lost_at_account_hop": len(ids - by_merchant.keys()),
        "lost_at_merchant_hop": len(by_merchant.keys() - to_score.keys()),
        "lost_at_scoring_hop": len(to_score.keys() - scored.keys()),
        "scored_more_than_once": sum(1 for c in scored.values() if c > 1),
        "gap_messages_repaired": result["gaps_repaired"],
        "gap_messages_lost": result["gaps_lost"],
        "committed_short": committed_short(bootstrap, app, source.topic_transactions, ctx.size.partitions),
        "per_worker_transactions": result["per_worker_transactions"],
    }


def run(ctx: Context, runs: int, workers: int = 2, busy: int = 0) -> dict[str, Any]:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        rows = []
        for n in range(runs):
            ctx.say(f"rebalance: run {n + 1} of {runs} ({workers} workers joining, {busy} busy processes) ...")
            rows.append(one_run(ctx, workers, n))
            ctx.say(f"  never scored {rows[-1]['never_scored']}, repaired {rows[-1]['gap_messages_repaired']}")
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    return {
        "workers": workers,
        "busy_processes": busy,
        "runs": rows,
        "runs_with_loss": sum(1 for r in rows if r["never_scored"]),
        "source": ctx.source_counts,
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        [i + 1, r["transactions"], r["never_scored"],
         f"{r['lost_at_account_hop']} / {r['lost_at_merchant_hop']} / {r['lost_at_scoring_hop']}",
         r["scored_more_than_once"], r["gap_messages_repaired"], r["gap_messages_lost"],
         ", ".join(f"p{p}: {m}" for p, m in r["committed_short"].items()) or "none"]
        for i, r in enumerate(result["runs"])
    ]
    return table(
        f"Rebalance — {result['workers']} workers joining over a backlog, {result['busy_processes']} busy "
        f"processes: {result['runs_with_loss']} of {len(result['runs'])} runs left a transaction unscored",
        ["run", "transactions", "never scored", "lost at account / merchant / scoring hop", "scored twice",
         "gap messages read back", "gap messages lost", "commits short of the end"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.rebalance", __doc__)
    p.add_argument("--runs", type=int, default=4, help="runs, each with a fresh consumer group (default 4)")
    p.add_argument("--workers", type=int, default=2, help="workers starting together (default 2)")
    p.add_argument("--busy", type=int, default=0, help="CPU-spinning processes during the runs (default 0)")
    args = p.parse_args(argv)
    size = size_from_args(args)
    if args.quick and args.transactions is None:
        size = replace(size, transactions=3_000, accounts=300)
    from stream.dev.kafka import KafkaCluster

    with KafkaCluster(nodes=1) as cluster:
        with Context(size, cluster.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
            head = envelope(size)
            result = run(ctx, args.runs, args.workers, args.busy)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('rebalance', {**head, **result})}")
    return 1 if result["runs_with_loss"] else 0


if __name__ == "__main__":
    sys.exit(main())
