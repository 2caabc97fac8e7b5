"""Passthrough ceilings per Faust transport and fetch setting, against the raw client, in one run.

Every variant reads the same pre-produced topic from the beginning in a fresh consumer
group and writes each message to a topic of its own:

* **raw confluent-kafka**: ``Consumer.consume(10000)`` + ``orjson.loads`` of every value,
  in this process (the floor of what Python can read: no Faust, no asyncio); and the
  same loop also producing every message to a sink (a plain-client passthrough);
* **Faust passthrough** (``bench.passthrough``: one agent, one ``send`` per message) with
  Faust's default aiokafka driver and the worker's tuning; with the direct-delivery
  patch (off in the worker: ``stream/faust_patches.py``); with larger fetches and buffers
  (``broker_max_poll_records``, ``consumer_max_fetch_size``, ``stream_buffer_maxsize``);
  and with Faust's ``confluent://`` driver (librdkafka under Faust).

After each run the first messages of its sink are read back and checked: key = the
account id, value = the transaction. A variant that never gets partitions, stalls or
writes corrupt records is reported as such, not as a rate.

    python -m bench.transports --transactions 60000
    python -m bench.transports --quick --variants raw,aiokafka,confluent
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.common import (
    Context,
    bench_parser,
    envelope,
    load_average,
    overrides_from_args,
    save,
    size_from_args,
    table,
)
from bench.throughput import create_topic, run_passthrough

LARGE_FETCH = ("--max-poll-records", "10000", "--max-fetch-bytes", str(8 * 1024 * 1024), "--buffer-maxsize", "16384")

#: name -> (label, bench.passthrough arguments); "raw" and "raw+produce" run in process.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "raw": ("raw confluent-kafka consume + orjson decode", ()),
    "raw+produce": ("raw confluent-kafka consume + decode + produce", ()),
    "aiokafka": ("Faust aiokafka (worker's settings)", ()),
    "aiokafka-direct": ("Faust aiokafka, direct delivery", ("--delivery", "direct")),
    "aiokafka-large": ("Faust aiokafka, large fetch/buffers", LARGE_FETCH),
    "confluent": ("Faust confluent:// (librdkafka)", ("--transport", "confluent")),
    "confluent-large": ("Faust confluent://, large fetch/buffers", ("--transport", "confluent", *LARGE_FETCH)),
}

#: Seconds a Faust variant may take to get its partitions, or stay without progress.
READY_S, STALL_S = 45.0, 20.0


def reader(ctx: Context, topic: str) -> Consumer:
    """A consumer assigned every partition of ``topic`` from the beginning (no group join)."""
    consumer = Consumer(
        {
            "bootstrap.servers": ctx.bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(ctx.size.partitions)])
    return consumer


def raw_consume(ctx: Context, produce_to: str | None = None) -> dict[str, Any]:
    """The raw client over the pre-produced topic: consume in batches of 2,000, decode every
    value (and produce it to ``produce_to``); events/s from the call that returned the
    first batch to the last event."""
    source = ctx.ensure_source()
    expected = ctx.source_counts["transactions"]
    load = load_average()
    producer = Producer({"bootstrap.servers": ctx.bootstrap, "linger.ms": 10}) if produce_to else None
    if produce_to:
        create_topic(ctx, produce_to)
    consumer = reader(ctx, source.topic_transactions)
    n, began, cpu0 = 0, 0.0, 0.0
    deadline = time.monotonic() + 300
    try:
        while n < expected and time.monotonic() < deadline:
            called, cpu = time.monotonic(), time.process_time()
            batch = consumer.consume(2_000, 0.5)
            if batch and not began:
                began, cpu0 = called, cpu
            for msg in batch:
                if msg.error() is not None:
                    continue
                value = msg.value() or b"null"
                orjson.loads(value)
                if producer is not None and produce_to:
                    producer.produce(produce_to, value, msg.key())
                n += 1
            if producer is not None:
                producer.poll(0)
        if producer is not None:
            producer.flush(30)
        ended, cpu = time.monotonic(), time.process_time() - cpu0
    finally:
        consumer.close()
    rate = n / (ended - began) if began and ended > began else None
    return {
        "processed": n,
        "events_per_s": round(rate, 1) if rate else None,
        "cpu_us_per_event": round(cpu * 1e6 / max(1, n), 1),
        "load_average": load,
        "sink": produce_to,
    }


def check_sink(ctx: Context, topic: str | None, sample: int = 50) -> str:
    """'intact' if the sink's first records carry the account id as key and the transaction
    as value; otherwise what is wrong with them."""
    if topic is None:
        return "-"
    consumer = reader(ctx, topic)
    seen: list[Any] = []
    deadline = time.monotonic() + 15
    try:
        while len(seen) < sample and time.monotonic() < deadline:
            seen += [m for m in consumer.consume(sample, 1.0) if m.error() is None]
    finally:
        consumer.close()
    if not seen:
        return "empty"
    good = swapped = 0
    for msg in seen:
        try:
            value = orjson.loads(msg.value() or b"null")
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict) and msg.key() == str(value.get("account_id", "")).encode():
            good += 1
        elif msg.key() is not None and msg.key().startswith(b"{"):
            swapped += 1
    if good == len(seen):
        return "intact"
    if swapped:
        return f"corrupt: key and value swapped in {swapped} of {len(seen)}"
    return f"corrupt: {len(seen) - good} of {len(seen)} records are not the transaction under its account key"


def run_variant(ctx: Context, name: str) -> dict[str, Any]:
    label, extra = VARIANTS[name]
    ctx.say(f"transports: {label} ...")
    sink = f"{ctx.settings('sink').topic_transactions}-{name}"
    try:
        if name.startswith("raw"):
            out = raw_consume(ctx, sink if name == "raw+produce" else None)
        else:
            out = run_passthrough(ctx, extra, sink, STALL_S, READY_S)
    except RuntimeError as exc:  # never ready, or exited
        first = str(exc).splitlines()[0]
        ctx.say(f"  failed: {first}")
        return {"label": label, "processed": 0, "events_per_s": None, "failed": first, "sink_check": "-"}
    out["sink_check"] = check_sink(ctx, out.get("sink"))
    expected = ctx.source_counts["transactions"]
    if out["processed"] < expected:
        out["failed"] = f"stalled at {out['processed']:,} of {expected:,}"
    ctx.say(f"  {out['events_per_s']} ev/s, sink {out['sink_check']}")
    return {"label": label, **out}


def run(ctx: Context, variants: Sequence[str] = tuple(VARIANTS)) -> dict[str, Any]:
    ctx.ensure_source()
    rows = {name: run_variant(ctx, name) for name in VARIANTS if name in variants}
    base = (rows.get("aiokafka") or {}).get("events_per_s")
    raw = (rows.get("raw") or {}).get("events_per_s")
    for r in rows.values():
        rate = r.get("events_per_s") if not r.get("failed") else None
        r["vs_aiokafka"] = round(rate / base, 3) if rate and base else None
        r["vs_raw"] = round(rate / raw, 4) if rate and raw else None
    result = {"source": ctx.source_counts, "variants": rows}
    ctx.results["transports"] = result
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            r["label"],
            r.get("events_per_s") if not r.get("failed") else None,
            r.get("vs_aiokafka"),
            r.get("vs_raw"),
            r.get("cpu_us_per_event"),
            (r.get("load_average") or [None])[0],
            r.get("failed") or r.get("sink_check"),
        ]
        for r in result["variants"].values()
    ]
    return table(
        f"Transports — passthrough ceilings, {result['source']['transactions']:,} pre-produced transactions",
        ["consumer", "events/s", "x aiokafka", "x raw", "CPU µs/event", "load 1m", "output"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.transports", __doc__)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    args = p.parse_args(argv)
    size = size_from_args(args)
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        head = envelope(size)
        result = run(ctx, args.variants.split(","))
    print(render(result))
    if not args.no_save:
        print(f"saved {save('transports', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
