"""Ceiling vs pipeline, same run, same broker, same pre-produced topic.

1. The simulator's transactions (and its labels) are produced once to a topic.
2. The passthrough Faust agent (``bench.passthrough``) reads that topic from the
   beginning and writes every event to another topic: the ceiling.
3. A real ``kuntur worker`` (validation, account and merchant stages, scoring, label
   learning, alerts) reads the same topic from the beginning in a new consumer group.

Rates are events/s from the first event processed to the last (group join and start-up
excluded); the ratio pipeline/ceiling is the figure to compare across machines. CPU per
event (the process's and the broker's) is reported too: unlike a rate it hardly depends
on what else the machine runs.

    python -m bench.throughput            # 200k transactions
    python -m bench.throughput --quick    # 20k, a smoke run
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from bench import peer_quix
from bench.common import (
    Context,
    Proc,
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
from stream.dev.broker import free_port
from stream.dev.process import worker_env
from stream.kafka.admin import ensure_topics


def create_topic(ctx: Context, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": ctx.bootstrap})
    for fut in admin.create_topics([NewTopic(name, num_partitions=ctx.size.partitions, replication_factor=1)]).values():
        try:
            fut.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


class CpuMeter:
    """CPU the measured processes and the broker use from now on, per event processed.

    Unlike events/s this hardly depends on what else the machine runs, so it is the
    figure to compare between runs on a busy machine.
    """

    def __init__(self, ctx: Context, procs: Sequence[Proc]) -> None:
        self.ctx, self.procs = ctx, procs
        self.start = [p.cpu_seconds() or 0.0 for p in procs]
        self.broker_start = ctx.broker_cpu_seconds()

    def per_event(self, events: float) -> dict[str, float | None]:
        used = sum((p.cpu_seconds() or 0.0) - s for p, s in zip(self.procs, self.start, strict=True))
        broker_now = self.ctx.broker_cpu_seconds()
        broker = broker_now - self.broker_start if broker_now is not None and self.broker_start is not None else None
        n = max(1.0, events)
        return {
            "cpu_us_per_event": round(used * 1e6 / n, 1),
            "broker_cpu_us_per_event": round(broker * 1e6 / n, 1) if broker is not None else None,
        }


def start_passthrough(ctx: Context, source: str, sink: str, extra: Sequence[str] = ()) -> Proc:
    """The bench passthrough app as a child process, reading ``source`` from the beginning
    (``extra``: more ``bench.passthrough`` arguments, e.g. ``--transport confluent``)."""
    create_topic(ctx, sink)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "bench.passthrough",
        "--bootstrap",
        ctx.bootstrap,
        "--app-id",
        ctx.settings("passthrough").app_id,
        "--source",
        source,
        "--sink",
        sink,
        "--web-port",
        str(port),
        "--fetch-max-wait-ms",
        str(ctx.settings("passthrough").consumer_fetch_max_wait_ms),
        "--delivery",  # as the worker's, unless extra says otherwise (argparse: the last one wins)
        "direct" if ctx.settings("passthrough").consumer_direct_delivery else "faust",
        *extra,
    ]
    return ctx.track(Proc("passthrough", cmd, dict(os.environ), port, ctx.log_path("passthrough"), "/count"))


def run_passthrough(
    ctx: Context, extra: Sequence[str] = (), sink: str | None = None, stall_s: float = 60.0, ready_s: float = 120.0
) -> dict[str, Any]:
    """The ceiling: one passthrough process over the pre-produced topic."""
    source = ctx.ensure_source()
    load = load_average()
    sink = sink or ctx.settings("sink").topic_transactions + "-copy"
    proc = start_passthrough(ctx, source.topic_transactions, sink, extra)
    return measure(ctx, proc, load, stall_s, ready_s) | {"sink": sink}


def measure(
    ctx: Context, proc: Proc, load: tuple[float, ...], stall_s: float = 60.0, ready_timeout: float = 120.0
) -> dict[str, Any]:
    """Follow one child process over the pre-produced transactions, then stop it."""
    try:
        ready_s = proc.wait_ready(ready_timeout)
        cpu = CpuMeter(ctx, [proc])
        progress = follow(proc.count, ctx.source_counts["transactions"], proc.alive, stall_s=stall_s)
        costs = cpu.per_event(progress.done)
        rss = proc.rss_mib()
    finally:
        proc.stop()
    return {**progress.summary(), **costs, "ready_s": round(ready_s, 2), "rss_mib": [rss], "load_average": load}


def run_peer(ctx: Context, quix_python: str | None = None) -> dict[str, Any]:
    """The plain confluent-kafka peer (``bench.peer``), or with ``quix_python`` the Quix
    Streams one (``bench.peer_quix``, skipped with the reason when quixstreams is absent)."""
    ctx.ensure_source()
    settings = ctx.settings("quix" if quix_python else "peer")
    ensure_topics(settings)
    port = free_port()
    if quix_python is None:
        cmd = [sys.executable, "-m", "bench.peer", "--web-port", str(port)]
        name = "peer"
    else:
        version, why_not = peer_quix.probe(quix_python)
        if why_not is not None:
            ctx.say(f"  Quix Streams peer skipped: {why_not}")
            return {**EMPTY, "skipped": why_not}
        state_dir = f"{settings.data_dir}/quix"
        cmd = [quix_python, "-m", "bench.peer_quix", "--web-port", str(port), "--state-dir", state_dir]
        name = f"quix {version}"
    load = load_average()
    proc = ctx.track(Proc(name, cmd, worker_env(settings), port, ctx.log_path(name.split()[0]), "/count"))
    return measure(ctx, proc, load)


def run_pipeline(ctx: Context, workers: int = 1, name: str = "pipeline", **changes: Any) -> dict[str, Any]:
    """``workers`` Kuntur workers in one consumer group over the pre-produced topic."""
    ctx.ensure_source()
    base = ctx.settings(name, **changes)
    procs: list[Proc] = []
    load = load_average()
    try:
        for i in range(workers):
            settings = base.replace(web_port=free_port(), data_dir=f"{base.data_dir}/w{i}") if i else base
            procs.append(ctx.track(start_worker(settings, ctx.log_path(f"{name}-w{i}"))))
        ready_s = max(p.wait_ready() for p in procs)
        cpu = CpuMeter(ctx, procs)

        def total() -> float:
            return sum(p.count() for p in procs)

        progress = follow(total, ctx.source_counts["transactions"], lambda: all(p.alive() for p in procs))
        costs = cpu.per_event(progress.done)
        per_worker = [p.metrics() for p in procs]
        rss = [p.rss_mib() for p in procs]
    finally:
        for p in procs:
            p.stop()
    m = per_worker[0] if per_worker else {}
    return {
        **progress.summary(),
        **costs,
        "workers": workers,
        "ready_s": round(ready_s, 2),
        "per_worker_transactions": [int(w.get("kuntur_transactions_total", 0)) for w in per_worker],
        "alerts": int(sum(w.get("alerts", 0) for w in per_worker)),
        "labels": int(sum(w.get("labels", 0) for w in per_worker)),
        "dead_letters": int(sum(w.get("dead_letters", 0) for w in per_worker)),
        "gaps_repaired": int(sum(w.get("gaps_repaired", 0) for w in per_worker)),
        "gaps_lost": int(sum(w.get("gaps_lost", 0) for w in per_worker)),
        "app_id": base.app_id,
        "topic_scores": base.topic_scores,
        "accounts_held": m.get("kuntur_state_entities"),
        "rss_mib": rss,
        "load_average": load,
    }


EMPTY: dict[str, Any] = {"events_per_s": None, "events_per_s_10_90": None, "processed": 0, "rss_mib": [None]}

#: Every run of this benchmark, in the order they run, and its row's name.
RUNS = {
    "ceiling": "passthrough (ceiling)",
    "pipeline": "kuntur worker",
    "unshared": "kuntur worker, KUNTUR_SHARED_MODEL=false",
    "peer": "peer: plain confluent-kafka loop",
    "quix": "peer: Quix Streams app",
}


def run(ctx: Context, runs: Sequence[str] = tuple(RUNS), quix_python: str | None = None) -> dict[str, Any]:
    """The runs named in ``runs`` (keys of :data:`RUNS`), one after the other on the same topic."""
    ctx.ensure_source()
    out: dict[str, dict[str, Any]] = {name: dict(EMPTY) for name in RUNS}
    for name in (n for n in RUNS if n in runs):
        ctx.say(f"throughput: {RUNS[name]} ...")
        if name == "ceiling":
            out[name] = run_passthrough(ctx)
        elif name == "pipeline":
            out[name] = run_pipeline(ctx)
        elif name == "unshared":
            out[name] = run_pipeline(ctx, name="unshared", shared_model=False)
        elif name == "peer":
            out[name] = run_peer(ctx)
        else:
            out[name] = run_peer(ctx, peer_quix.interpreter(quix_python))
        ctx.say(f"  {out[name]['events_per_s']} events/s")
    rate = {name: r["events_per_s"] for name, r in out.items()}

    def ratio(a: str, b: str) -> float | None:
        x, y = rate[a], rate[b]
        return round(x / y, 3) if x and y else None

    result = {
        "source": ctx.source_counts,
        **out,
        "ratio": ratio("pipeline", "ceiling"),
        "ratio_unshared_ceiling": ratio("unshared", "ceiling"),
        "ratio_shared_unshared": ratio("pipeline", "unshared"),
        "ratio_worker_peer": ratio("pipeline", "peer"),
        "ratio_worker_quix": ratio("pipeline", "quix"),
        "ratio_peer_ceiling": ratio("peer", "ceiling"),
    }
    ctx.results["throughput"] = result
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            label,
            r["events_per_s"],
            r["events_per_s_10_90"],
            r["processed"],
            r.get("cpu_us_per_event"),
            r.get("broker_cpu_us_per_event"),
            r["rss_mib"][0],
            r.get("load_average", [None])[0],
        ]
        for name, label in RUNS.items()
        if (r := result.get(name)) is not None and (r["processed"] or r.get("skipped"))
    ]
    out = table(
        f"Throughput — one process, {result['source']['transactions']:,} pre-produced transactions",
        ["run", "events/s", "events/s (10-90%)", "events", "CPU µs/event", "broker CPU µs/event", "RSS MiB", "load 1m"],
        rows,
    )
    lines = [
        f"ratio worker/ceiling: {result['ratio']}",
        f"ratio worker/peer (goal >= 0.5): {result.get('ratio_worker_peer')}",
        f"ratio worker/Quix peer: {result.get('ratio_worker_quix')}",
        f"ratio shared model/KUNTUR_SHARED_MODEL=false: {result.get('ratio_shared_unshared')}",
    ]
    if (skipped := result.get("quix", {}).get("skipped")) is not None:
        lines.append(f"Quix Streams peer skipped: {skipped}")
    return "\n".join([out, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.throughput", __doc__)
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of: {', '.join(RUNS)} (default all)")
    p.add_argument("--quix-python", help="a Python with quixstreams (default: .cache/quix-venv/bin/python if present)")
    args = p.parse_args(argv)
    size = size_from_args(args)
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        head = envelope(size)
        result = run(ctx, args.runs.split(","), args.quix_python)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('throughput', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
