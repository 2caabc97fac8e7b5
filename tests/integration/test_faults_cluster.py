"""Faults of a running cluster (issue 13): scaling the workers 1 → 3 → 1 mid-stream, and a
three-broker Kafka cluster losing a broker mid-stream. Real ``kuntur worker`` processes,
real Apache Kafka 3.9 brokers; transactions keep streaming (a paced producer thread) while
the fault happens. Each test fails when a transaction goes unscored or a label is lost, and
prints one ``RELIABILITY {...}`` line with its figures (docs/reliability.md quotes them):

    .venv/bin/python -m pytest -s tests/integration/test_faults_cluster.py

No assertion is on speed: the figures are measured and printed.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from stream.dev.kafka import KafkaCluster

from .conftest import WorkerProcess, another_worker, produce_json
from .faultkit import AlertWatch, Streamer, fault_settings, labels_for, report, transactions

pytestmark = pytest.mark.slow

#: Enough partitions that each of three workers owns some (of every co-partitioned topic).
PARTITIONS = 6
#: Transactions per second from the producer thread: a steady stream, well under what
#: the workers sustain on 2 shared cores, so a stall shows as a gap in the alerts.
RATE = 60.0


class Workers:
    """Named ``kuntur worker`` processes of one app (same group and topics, own data dir and
    port), started concurrently; killed at teardown if still running."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.all: dict[str, WorkerProcess] = {}
        self.final: dict[str, dict[str, float]] = {}  # label outcomes scraped before a stop
        self.declare_retries = 0
        self._pool = ThreadPoolExecutor(4)

    def spawn(self, settings: Settings, *names: str) -> tuple[list[WorkerProcess], list[Future[WorkerProcess]]]:
        """Start the processes; each future resolves when its worker is /ready."""
        ws = [WorkerProcess(another_worker(settings, self.tmp_path, f"w-{n}"), self.tmp_path / f"w-{n}.log")
              for n in names]
        self.all.update(zip(names, ws, strict=True))
        return ws, [self._pool.submit(w.start) for w in ws]

    def start(self, settings: Settings, *names: str) -> list[WorkerProcess]:
        ws, futures = self.spawn(settings, *names)
        for f in futures:
            f.result(120)
        return ws

    def declare_topics(self, settings: Settings) -> None:
        """Start one worker and stop it: it declares every topic of the app (internal and
        changelog ones). Needed because a worker started on topics it has to create may come
        up without the partitions of one of them (product issue, reported with this test):
        Faust's assignor skips a topic not yet in the consumer's metadata ("Ignoring missing
        topic"), and nothing is scored until the next rebalance or metadata refresh (5 min)."""
        for attempt in range(3):
            try:
                self.start(settings, "declare")
                break
            except AssertionError as err:
                # Product issue, reported with this test: on a multi-broker cluster the first
                # start may ask a broker that does not know the just-created model-snapshot
                # topic yet for its offsets (stream/learning.py _read_to_end: "Unknown topic or
                # partition", exit 1). Only this start may fail, and for that reason only.
                if "Failed to get watermark offsets" not in str(err) or attempt == 2:
                    raise
                self.declare_retries += 1
                print(f"WORKER START RACE (declare): {str(err).splitlines()[-1]}", flush=True)
                self.all[f"declare-failed-{attempt}"] = self.all.pop("declare")
        assert self.stop("declare") == [0]

    def live(self) -> dict[str, WorkerProcess]:
        return {n: w for n, w in self.all.items() if w.proc is not None and w.proc.poll() is None}

    def stop(self, *names: str) -> list[int]:
        """SIGTERM the named workers at once (their label outcomes kept first); exit codes."""
        for n in names:
            self.final[n] = self.all[n].label_outcomes()
        procs = [self.all[n].proc for n in names]
        for proc in procs:
            assert proc is not None
            proc.terminate()  # once: a second SIGTERM cuts the graceful shutdown short
        codes = []
        for n, proc in zip(names, procs, strict=True):
            assert proc is not None
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"worker {n} did not stop within 60 s:\n{self.all[n].log()}") from None
        return codes

    def label_outcomes(self) -> dict[str, float]:
        """``kuntur_labels_total`` by outcome, summed over every worker (stopped ones as last seen)."""
        total: Counter[str] = Counter()
        for n, w in self.all.items():
            outcomes = self.final.get(n) if n not in self.live() else w.label_outcomes()
            total.update(outcomes or {})
        return dict(total)

    def deferred(self) -> float:
        return sum(w.metrics().get("kuntur_deferred_labels", 0) for w in self.live().values())

    def diagnosis(self) -> str:
        """What each live worker holds and has done: for a failure's message."""
        lines = []
        for n, w in self.live().items():
            text = w.metrics_text().splitlines()
            keep = [x for x in text if x.startswith(("kuntur_transactions_total", "kuntur_consumer_lag_messages{"))]
            lines.append(f"worker {n} ready {w.ready()}: " + "; ".join(keep))
        return "\n".join(lines)

    def close(self) -> None:
        for w in self.all.values():
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        self._pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(tmp_path)
    yield ws
    ws.close()


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[KafkaCluster]:
    """Three Kafka nodes: topics replicated 3 times, min.insync.replicas 2."""
    with KafkaCluster(nodes=3, data_dir=tmp_path / "kafka3") as kafka:
        yield kafka


def model_figures(workers: dict[str, WorkerProcess]) -> dict[str, dict[str, Any]]:
    """Each live worker's model as its /metrics report it (stream/metrics.py's model gauges).

    SHARED MODEL (docs/architecture.md, "one for all workers by design"): once built, the
    assertion "all workers report the same model version within the stated lag" belongs
    where the tests call this function (marked ``SHARED-MODEL CHECK``), on these figures.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, w in workers.items():
        m = w.metrics()
        out[name] = {
            "model_version": m.get("model_version"),
            "examples_seen": m.get("kuntur_model_examples_seen"),
            "generation": m.get("kuntur_model_generation"),
            # the shared model: training-log records the agreed model has read, own examples not yet read back
            "training_offset": m.get("kuntur_model_training_offset"),
            "examples_in_flight": m.get("kuntur_model_examples_in_flight"),
        }
    return out


def settle(live: dict[str, WorkerProcess], total: int, timeout: float,
           booting: list[Future[WorkerProcess]] | None = None) -> dict[str, float]:
    """Poll every worker's /ready until all answer ready, each holding partitions, together
    ``total`` of them (disjoint): the group's assignment is complete. Returns (monotonic
    times) when it settled, when a worker started before this call was first seen not ready
    (the rebalance began, if a poll caught it) and when the last of the ``booting`` workers
    first answered HTTP (its app is up and joins the group)."""
    started = time.monotonic()
    booting = booting or []
    before = {n for n, w in live.items() if w.ready()[0] == 200}
    figures: dict[str, float] = {}
    up: dict[str, float] = {}
    last: dict[str, tuple[int, int]] = {}
    while time.monotonic() - started < timeout:
        for name, w in live.items():
            status, body = w.ready()
            last[name] = (status, int(body.get("assigned_partitions", 0)))
        for f in booting:
            if f.done() and f.exception() is not None:
                raise AssertionError(f"a joining worker did not start: {f.exception()}")
        now = time.monotonic()
        for name, (status, _) in last.items():
            if status != 0:
                up.setdefault(name, now)
            if name in before and status != 200:
                figures.setdefault("began_at", now)
        if (all(f.done() for f in booting) and all(s == 200 and k > 0 for s, k in last.values())
                and sum(k for _, k in last.values()) == total):
            figures["settled_at"] = now
            joined = [t for n, t in up.items() if n not in before]
            if joined:
                figures["joined_at"] = max(joined)
            return figures
        time.sleep(0.2)
    raise AssertionError(f"the group did not settle within {timeout}s; last /ready: {last}")


def stall_s(watch: AlertWatch, start: float, end: float) -> float:
    """Longest gap between two consecutive alert arrivals in [start, end] (the stream is steady)."""
    times = sorted(t for t, _ in watch.received if start <= t <= end)
    edges = [start, *times, end]
    return round(max(b - a for a, b in zip(edges, edges[1:], strict=False)), 2)


def ids_of(txs: list[dict[str, Any]]) -> set[str]:
    return {t["transaction_id"] for t in txs}


@pytest.mark.parametrize("settings", [PARTITIONS], indirect=True, ids=[f"{PARTITIONS}-partitions"])
def test_scale_one_three_one_mid_stream_scores_everything_and_loses_no_label(settings, workers):
    settings = fault_settings(settings)
    txs = transactions(3600, seed=31, accounts=200)
    workers.declare_topics(settings)
    (a,) = workers.start(settings, "a")
    alone = a.ready()[1]["assigned_partitions"]
    watch = AlertWatch(settings)
    watch.start()
    stream = Streamer(settings, txs, RATE)
    stream.start()
    labels: list[dict[str, Any]] = []

    def teach(batch: list[dict[str, Any]], what: str) -> None:
        """Labels for transactions already scored; wait until each is learned or deferred."""
        try:
            watch.wait_ids(ids_of(batch), 60, f"{what}: transactions to label")
        except AssertionError as err:
            missing = ids_of(batch) - watch.ids()
            where = Counter(stream.partition.get(m) for m in missing)
            if len(missing) > 20:
                raise AssertionError(f"{err}\nmissing by partition {dict(where)}\n{workers.diagnosis()}") from None
            # the open defect reported at the end (a handful never scored across a rebalance):
            # label only what was scored, the final check accounts for the rest
            batch = [t for t in batch if t["transaction_id"] not in missing]
        labels.extend(labels_for(batch, after_s=1.0))
        produce_json(settings, settings.topic_labels, labels_for(batch, after_s=1.0))
        seen = lambda: workers.label_outcomes().get("learned", 0) + workers.deferred()  # noqa: E731
        deadline = time.monotonic() + 90
        while seen() < len(labels) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert seen() >= len(labels), f"{what}: {workers.label_outcomes()}, deferred {workers.deferred()}"

    # one worker
    stream.wait_sent(600, 60)
    teach(txs[:300], "one worker")

    # scale out to three while the stream goes on
    out_sent = stream.sent
    spawned = time.monotonic()
    (b, c), booting = workers.spawn(settings, "b", "c")
    out = settle({"a": a, "b": b, "c": c}, alone, 150, booting)
    scale_out = {"spawn_to_settled_s": round(out["settled_at"] - spawned, 1),
                 "last_joined_to_settled_s": round(out["settled_at"] - out["joined_at"], 1),
                 "a_not_ready_s": round(out["settled_at"] - out["began_at"], 1) if "began_at" in out else 0.0}
    assignment = {n: w.ready()[1]["assigned_partitions"] for n, w in workers.live().items()}
    # each of the three scores part of what streams in now
    scored0 = {n: w.metrics().get("kuntur_transactions_total", 0) for n, w in workers.live().items()}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
        w.metrics().get("kuntur_transactions_total", 0) > scored0[n] for n, w in workers.live().items()
    ):
        time.sleep(0.5)
    scored_by = {n: w.metrics().get("kuntur_transactions_total", 0) for n, w in workers.live().items()}
    assert all(scored_by[n] > scored0[n] for n in ("b", "c")), (scored0, scored_by)
    # labels for transactions a scored (their partitions moved) and for ones scored since
    teach(txs[300:stream.sent - 300], "three workers")
    three_models = model_figures(workers.live())
    # SHARED-MODEL CHECK (three workers): one model. Every worker's agreed model reads the
    # whole training log, so all three reach the same offset and the same examples (every
    # label learned anywhere) with nothing in flight within moments; the version names the
    # offset from the next checkpoint on (docs/architecture.md, "One model for all workers")
    taught = time.monotonic()
    deadline = taught + 30
    while time.monotonic() < deadline:
        figures = model_figures(workers.live())
        offsets = {(f["training_offset"], f["examples_seen"], f["examples_in_flight"]) for f in figures.values()}
        if len(offsets) == 1 and next(iter(offsets))[2] == 0:
            break
        time.sleep(0.25)
    assert len(offsets) == 1, figures
    same_model_s = round(time.monotonic() - taught, 1)
    time.sleep(settings.checkpoint_interval_s + 0.5)  # a checkpoint renames the model after its offset
    three_models_later = model_figures(workers.live())
    print("MODELS three workers", three_models, "and one checkpoint interval later", three_models_later, flush=True)
    assert len({f["generation"] for f in three_models_later.values()}) == 1, three_models_later

    # scale in to one: SIGTERM two of them, still streaming
    scored_three = {n: int(w.metrics().get("kuntur_transactions_total", 0) - scored0[n])
                    for n, w in workers.live().items()}
    in_sent = stream.sent
    assert in_sent < len(txs), "the stream ended before the scale-in: lower RATE"
    labelled = len(labels)
    stopped = time.monotonic()
    codes = workers.stop("b", "c")
    assert codes == [0, 0], codes
    back = settle({"a": a}, alone, 120)
    scale_in = {"sigterm_to_settled_s": round(back["settled_at"] - stopped, 1)}
    teach(txs[labelled:stream.sent - 300], "one worker again")

    stream.finish()
    try:
        watch.wait_ids(ids_of(txs), 120, "every transaction")
    except AssertionError as err:
        missing = ids_of(txs) - watch.ids()
        where = Counter(stream.partition[m] for m in missing)
        raise AssertionError(
            f"{err}; by partition {dict(where)}; scale-out at {out_sent}, scale-in at "
            f"{in_sent} sent; assignment with three {assignment}"
        ) from None
    # labels reported ahead of what a had scored teach once its stream reaches their time
    last = max(lbl["reported_at"] for lbl in labels)
    probe = {"transaction_id": "probe-late", "account_id": "acc-probe", "timestamp": last + 86400.0, "amount": 1.0}
    produce_json(settings, settings.topic_transactions, [probe])
    watch.wait_ids({"probe-late"}, 60, "the probe")
    deadline = time.monotonic() + 60
    while workers.label_outcomes().get("learned", 0) < len(labels) and time.monotonic() < deadline:
        time.sleep(0.25)
    outcomes = workers.label_outcomes()
    final_models = model_figures(workers.live())
    print("MODELS one worker again", final_models, flush=True)
    # SHARED-MODEL CHECK (after the scale-in): a's model holds every label sent, including those
    # b and c learned (no label teaches at a horizon here: label_horizon_s is 1e9)
    assert final_models["a"]["examples_seen"] == len(labels), final_models

    alerts = watch.alerts()
    distinct = watch.ids() - {"probe-late"}
    assert distinct == ids_of(txs)
    assert outcomes.get("unknown-transaction", 0) == 0, outcomes
    assert outcomes.get("learned", 0) == len(labels), outcomes
    watch.stop()
    report(
        "scale-1-3-1", partitions=PARTITIONS, rate_tx_s=RATE, sent=len(txs), scored=len(distinct),
        lost=len(txs) - len(distinct), redelivered=len(alerts) - len(distinct) - 1,
        scale_out_at_sent=out_sent, scale_in_at_sent=in_sent, assignment_three=assignment, assigned_alone=alone,
        scored_while_three=scored_three, scale_out=scale_out, scale_in=scale_in, same_model_s=same_model_s,
        stall_out_s=stall_s(watch, spawned, out["settled_at"] + 5),
        stall_in_s=stall_s(watch, stopped, back["settled_at"] + 5), labels_sent=len(labels), labels=outcomes,
        models_three=three_models, models_three_later=three_models_later, models_final=final_models,
    )


@pytest.mark.parametrize("settings", [PARTITIONS], indirect=True, ids=[f"{PARTITIONS}-partitions"])
def test_three_brokers_kill_a_leader_mid_stream_loses_nothing(settings, workers, cluster3):
    settings = fault_settings(settings, kafka_bootstrap=cluster3.bootstrap, replication_factor=3)
    assert len(settings.kafka_bootstrap_servers) == 3  # the workers know every broker
    txs = transactions(3000, seed=32, accounts=200)  # the stream stops 600 after the kill
    workers.declare_topics(settings)
    a, b = workers.start(settings, "a", "b")
    watch = AlertWatch(settings)
    watch.start()
    stream = Streamer(settings, txs, RATE)
    stream.start()
    stream.wait_sent(500, 60)
    watch.wait_ids(ids_of(txs[:300]), 90, "before the kill")

    leaders = cluster3.leaders(settings.topic_transactions)
    victim = Counter(leaders.values()).most_common(1)[0][0]
    kill_sent = stream.sent
    killed = time.monotonic()
    cluster3.kill(victim)
    stream.wait_sent(kill_sent + 600, 120)  # ten seconds' worth produced after the kill
    stream.stop()
    stream.finish()
    txs = txs[:stream.sent]
    # the first transaction produced after the kill to be scored, and every partition's first
    after = [t["transaction_id"] for t, at in zip(txs, stream.sent_at, strict=True) if at >= killed]
    watch.wait_ids(ids_of(txs), 150, "every transaction")
    first = {tid: watch.first_at[tid] for tid in after}
    by_partition: dict[int, float] = {}
    for tid, at in first.items():
        p = stream.partition[tid]
        by_partition[p] = min(by_partition.get(p, at), at)
    new_leaders = cluster3.leaders(settings.topic_transactions)
    assert victim not in new_leaders.values(), new_leaders
    assert all(w.proc is not None and w.proc.poll() is None for w in (a, b)), "a worker died"
    alerts = watch.alerts()
    distinct = watch.ids()
    conflicts = watch.conflicting()
    watch.stop()
    assert distinct == ids_of(txs)
    assert not conflicts, {k: [(x["score"], x["model_version"]) for x in v] for k, v in list(conflicts.items())[:3]}
    report(
        "three-brokers-kill-one", partitions=PARTITIONS, replication=3, min_isr=cluster3.min_isr, rate_tx_s=RATE,
        sent=len(txs), scored=len(distinct), lost=len(txs) - len(distinct), redelivered=len(alerts) - len(distinct),
        alert_ids_with_two_contents=len(conflicts), killed_node=victim, start_race_retries=workers.declare_retries,
        led_partitions=sorted(p for p, n in leaders.items() if n == victim), kill_at_sent=kill_sent,
        kill_to_next_scored_s=round(min(first.values()) - killed, 1),
        kill_to_every_partition_scored_s=round(max(by_partition.values()) - killed, 1),
        stall_s=stall_s(watch, killed, max(first.values())), leaders_after=new_leaders,
    )


def test_cluster_names_its_nodes_by_kafka_id(tmp_path):
    """``KafkaCluster.node``/``kill`` take Kafka's node ids (as ``leaders`` reports them); no process started."""
    cluster = KafkaCluster(nodes=3, data_dir=tmp_path / "unstarted")
    assert [cluster.node(i).node_id for i in (1, 2, 3)] == [1, 2, 3]
    assert cluster.bootstrap.count(",") == 2
    with pytest.raises(KeyError):
        cluster.node(4)
    assert cluster.kill(2) is cluster.node(2) and not cluster.running()  # killing a stopped node is a no-op
