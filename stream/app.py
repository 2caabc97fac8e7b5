"""The Faust application: topics, tables, and the agents, timers and views wired to them.

Flow (every hop partitioned so that state stays local to one partition)::

    transactions (key account) ─ accounts ─▶ <app>-by-merchant-v3 (merchant's partition) ─ merchants ─▶
    <app>-to-score-v3 (the transaction's own partition) ─ scoring ─▶ alerts / scores
    labels (key account) ─ labels ─▶ learner; confirmed fraud ─▶ <app>-by-merchant-v3 (fraud rate)
        and ─▶ <app>-by-account-v3 (the account's partition) ─ account-frauds ─▶ account state

The scoring and labels agents read co-partitioned topics: a transaction is scored on the
partition it arrived on, where its account's labels arrive too, so a label reaches the
worker that scored its transaction and holds its features.

The per-batch logic lives in :class:`stream.agents.Handlers` (no Faust needed); the
loops here only turn events into messages and route what a handler returns. Agents work
in batches (:func:`stream.batching.batches`): sends happen once per batch, one message
per destination partition on the internal topics (:mod:`stream.wire`), and each entity
written in a batch gets one changelog record. docs/performance.md has the measurements.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import faust

from config.settings import Settings
from features.account import AccountState
from features.account import is_expired as account_expired
from features.merchant import MerchantState
from features.merchant import is_expired as merchant_expired
from models.shared import SharedModel
from stream.agents import Handlers, Sends
from stream.batching import app_options, batches, freeze_heap
from stream.health import EXIT_BROKER_UNREACHABLE, BrokerWatch, install_repeat_filter
from stream.kafka.security import broker_credentials
from stream.learning import TRAINING_IDLE_POLL_S, SnapshotPublisher, TrainingReader, training_topic
from stream.metrics import Metrics
from stream.offsets import GapReader, OffsetGuard
from stream.pipeline.deferred import DeferredLabels
from stream.pipeline.emits import Stage
from stream.pipeline.stages import Pipeline
from stream.producer import Emitter
from stream.score_api import add_score_views
from stream.tables import ChangelogTable, ExpiringTable, SendFailures, changelog_table, expiring_table
from stream.tasks import Checkpointer, Gauges
from stream.web import add_views
from stream.wire import WIRE_VERSION

log = logging.getLogger("kuntur")

#: Longest the shutdown waits for the changelogs to flush (the broker may be gone).
SHUTDOWN_FLUSH_S = 5.0


@dataclass
class Kuntur:
    """The Faust app plus the handles the agents share."""

    app: faust.App
    settings: Settings
    pipeline: Pipeline
    metrics: Metrics
    checkpoint_path: str
    checkpointer: Checkpointer
    watch: BrokerWatch
    shared: SharedModel | None = None


def create_app(
    settings: Settings, pipeline: Pipeline, metrics: Metrics, partitions: int, key: bytes,
    shared: SharedModel | None = None,
) -> Kuntur:
    """Build the Faust app. ``partitions`` must equal the transactions topic's count;
    ``key`` signs the model checkpoints; ``shared``: the shared model (already caught up
    with the training log, :mod:`stream.learning`), or None for a model learned locally."""
    s = settings
    app = faust.App(
        s.app_id,
        **app_options(s),
        broker_credentials=broker_credentials(s),
        datadir=f"{s.data_dir}/faust",
        topic_partitions=partitions,
        topic_replication_factor=s.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=0,
        web_enabled=True,
        web_host=s.web_advertised_host or s.web_host,  # the URL other workers forward /score to
        web_port=s.web_port,
        web_bind=s.web_host,
        # Faust's /table/ and /router/ views would serve any account's raw state unauthenticated.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    transactions = app.topic(s.topic_transactions, **raw)
    labels = app.topic(s.topic_labels, **raw)
    # Internal topics carry batches of entries (stream/wire.py); the suffix names their format.
    internal = {
        stage: app.topic(f"{s.app_id}-{name}-{WIRE_VERSION}", partitions=partitions, internal=True, **raw)
        for stage, name in ((Stage.MERCHANT, "by-merchant"), (Stage.SCORE, "to-score"), (Stage.ACCOUNT, "by-account"))
    }
    internal_names = {stage: topic.get_topic_name() for stage, topic in internal.items()}
    # The version suffix changes whenever the state layout does: old state is never misread.
    tables: dict[str, ExpiringTable] = {
        "accounts": expiring_table(app, "accounts-v4", partitions, AccountState.from_bytes, account_expired),
        "merchants": expiring_table(app, "merchants-v1", partitions, MerchantState.from_bytes, merchant_expired),
    }
    # The score stage's learning state, on the account's partition (co-partitioned with the
    # labels topic): it moves with its partition and is restored after a crash.
    learning: dict[str, ChangelogTable] = {
        "pending": changelog_table(app, "pending-v1", partitions),
        "deferred": changelog_table(app, "deferred-labels-v1", partitions),
    }
    dropped = pipeline.detector.use_store(learning["pending"].states)
    if dropped:
        log.info("%d pending transactions from the local checkpoint ignored: table pending-v1 holds them", dropped)
    pipeline.score.deferred = DeferredLabels(learning["deferred"].states, track_changes=True)
    changelogged: dict[str, ChangelogTable] = {**tables, **learning}
    handlers = Handlers(s, pipeline, metrics, partitions, shared, training_topic(s))
    failures = SendFailures(metrics.send_failures)
    for table in changelogged.values():
        table.send_failures = failures
    emitter = Emitter(app, failures)

    async def route(sends: Sends) -> None:
        for stage, outbox in sends.internal.items():
            await emitter.send_batches(internal_names[stage], outbox)
        for topic, messages in sends.messages.items():
            await emitter.send_many(topic, messages)
        for key, value, timestamp in sends.rekeyed:
            await transactions.send(key=key, value=value, timestamp=timestamp)
        for key, value, timestamp in sends.relabeled:
            await labels.send(key=key, value=value, timestamp=timestamp)
        for name, written in sends.written.items():
            await changelogged[name].write_changelog(written)

    for topic in (s.topic_transactions, s.topic_labels, *internal_names.values()):
        for outcome in ("repaired", "lost"):  # exposed at 0 from the start, so rules and panels see them
            metrics.input_gaps.labels(topic=topic, outcome=outcome)

    def guard() -> OffsetGuard:
        """Each agent's own: messages Faust skips in a rebalance are read back (stream/offsets.py)."""
        return OffsetGuard(app, GapReader(s), on_gap=lambda topic, outcome, n: metrics.input_gaps.labels(
            topic=topic, outcome=outcome).inc(n))

    @app.agent(transactions, name="accounts")
    async def account_agent(stream: Any) -> None:
        async for batch in batches(stream, guard()):
            await route(handlers.accounts(batch, tables["accounts"].states))

    @app.agent(internal[Stage.ACCOUNT], name="account-frauds")
    async def account_fraud_agent(stream: Any) -> None:
        async for batch in batches(stream, guard()):
            await route(handlers.account_frauds(batch, tables["accounts"].states))

    @app.agent(internal[Stage.MERCHANT], name="merchants")
    async def merchant_agent(stream: Any) -> None:
        async for batch in batches(stream, guard()):
            await route(handlers.merchants(batch, tables["merchants"].states))

    @app.agent(internal[Stage.SCORE], name="scoring")
    async def scoring_agent(stream: Any) -> None:
        async for batch in batches(stream, guard()):
            sends, _ = handlers.scoring(batch)
            await route(sends)

    @app.agent(labels, name="labels")
    async def label_agent(stream: Any) -> None:
        async for batch in batches(stream, guard()):
            await route(handlers.labels(batch))

    async def reindex_learning_state() -> None:
        """After a rebalance's recovery: the tables hold this worker's partitions now."""
        for table in learning.values():
            table.forget_revoked()
        pipeline.detector.pending.reindex()
        pipeline.score.deferred.reindex()
        sends = Sends()
        handlers.learning_writes(sends, 0)  # evictions only: keys recovered, partitions known
        await route(sends)
        log.info(
            "learning state: %d pending transactions, %d deferred labels on partitions %s",
            len(pipeline.detector.pending),
            len(pipeline.score.deferred),
            sorted({tp.partition for tp in app.consumer.assignment()}),
        )

    learning["pending"].on_recover(reindex_learning_state)

    gauges = Gauges(pipeline, metrics, {name: t.data for name, t in tables.items()}, shared)
    checkpoint_path = f"{s.data_dir}/model.ckpt"
    checkpointer = Checkpointer(pipeline, metrics, checkpoint_path, key, on_saved=gauges.refresh, shared=shared)
    publisher = SnapshotPublisher(s) if shared is not None else None

    def checkpoint(force: bool = False) -> None:
        """The local checkpoint and, with a shared model, its snapshot on the model topic."""
        if checkpointer.checkpoint(force) and publisher is not None:
            publisher.publish(checkpointer.snapshot())

    if shared is not None:
        reader = TrainingReader(s, shared)

        @app.task
        async def read_training_log() -> None:
            """Every worker reads the whole training log into its agreed model."""
            while True:  # never holds the event loop: a backlog is read 5,000 records per turn
                await asyncio.sleep(TRAINING_IDLE_POLL_S if reader.poll() == 0 else 0)

    @app.task
    async def freeze_startup_heap() -> None:
        log.info("froze %d start-up objects out of cyclic GC", freeze_heap())

    @app.timer(interval=1.0)
    async def refresh_gauges() -> None:
        gauges.refresh()

    @app.timer(interval=max(1.0, s.checkpoint_interval_s))
    async def periodic_checkpoint() -> None:
        checkpoint()

    @app.timer(interval=max(0.5, s.state_sweep_interval_s))
    async def expire_state() -> None:
        now = pipeline.detector.watermark
        if now > 0:
            n = sum(table.expire(now, s.state_ttl_s) for table in tables.values())
            if n:
                log.info("expired %d idle entities", n)

    async def seal_changelogs() -> None:
        await app.producer.flush()
        if s.changelog_seal:  # a broker-compatibility switch: see ChangelogTable.seal
            for table in changelogged.values():
                await table.seal(partitions)
            await app.producer.flush()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust's stub wants a keyword-only ``signal``
    async def final_checkpoint(sender: Any, **kwargs: Any) -> None:
        checkpoint(force=True)
        if publisher is not None:
            publisher.flush(SHUTDOWN_FLUSH_S)
        try:
            await asyncio.wait_for(seal_changelogs(), timeout=SHUTDOWN_FLUSH_S)
        except TimeoutError:
            log.warning("changelogs not flushed within %.0fs (broker unreachable?): stopping anyway", SHUTDOWN_FLUSH_S)

    loop_box: list[asyncio.AbstractEventLoop] = []

    def give_up(waited: float) -> None:
        """From the watch's thread: checkpoint on the event loop, then exit (Faust's own
        shutdown would wait for the broker)."""
        done = threading.Event()

        def on_loop() -> None:
            try:
                checkpointer.checkpoint(force=True)
            finally:
                done.set()

        if loop_box:
            loop_box[0].call_soon_threadsafe(on_loop)
            done.wait(10.0)
        logging.shutdown()
        os._exit(EXIT_BROKER_UNREACHABLE)

    watch = BrokerWatch(s, on_change=lambda up: metrics.broker_up.set(1 if up else 0), on_give_up=give_up)

    @app.task
    async def watch_broker() -> None:
        loop_box.append(asyncio.get_running_loop())
        install_repeat_filter()  # Faust has set up its log handlers by now
        watch.start()

    add_views(app, metrics, gauges.refresh, lambda: watch.up)
    add_score_views(app, s, pipeline, tables, lambda: watch.up)
    return Kuntur(
        app=app, settings=s, pipeline=pipeline, metrics=metrics, checkpoint_path=checkpoint_path,
        checkpointer=checkpointer, watch=watch, shared=shared,
    )
