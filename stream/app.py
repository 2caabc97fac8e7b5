"""The Faust application: topics, tables and the agents that wrap the pure pipeline.

Flow (every hop partitioned so that state stays local to one partition)::

    transactions (key account) ─ accounts ─▶ <app>-by-merchant-v2 (merchant's partition) ─ merchants ─▶
    <app>-to-score-v2 (the transaction's own partition) ─ scoring ─▶ alerts / scores
    labels (key account) ─ labels ─▶ learner; confirmed fraud ─▶ <app>-by-merchant-v2 (fraud rate)

The scoring and labels agents read co-partitioned topics: a transaction is scored on the
partition it arrived on, where its account's labels arrive too, so a label reaches the
worker that scored its transaction and holds its features.

Agents work in batches (``stream.tuning.batches``): per event only the pure core runs;
sends happen once per batch, one message per destination partition on the internal
topics (``stream.wire``), and each entity written in a batch gets one changelog record.
docs/performance.md has the measurements behind each of these choices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.serializers.codecs import dumps as dumps_key
from faust.types import EventT

from config.settings import Settings
from features.account import AccountState
from features.account import is_expired as account_expired
from features.merchant import MerchantState
from features.merchant import is_expired as merchant_expired
from models.checkpoint import save_checkpoint
from models.detector import LabelOutcome
from stream.errors import InvalidEvent
from stream.metrics import Metrics
from stream.pipeline.alerts import build_alert
from stream.pipeline.stages import Pipeline
from stream.pipeline.validation import dead_letter, parse_label, parse_transaction
from stream.tuning import app_options, batches, freeze_heap
from stream.wire import (
    WIRE_VERSION,
    Outbox,
    Partitioner,
    decode_batch,
    fraud_entry,
    merchant_entry,
    score_entry,
    tx_from_list,
)

log = logging.getLogger("kuntur")

#: Key of the tombstone that closes each changelog partition on shutdown (never a real entity).
SEAL_KEY = "__kuntur_seal__"


class ExpiringTable(faust.Table):
    """A table of compact entity states whose idle entities can be deleted.

    Deleting a key outside an event needs its changelog partition; Faust only knows it
    while the writing event is current, so we record it at write and at recovery.
    ``decode`` turns a stored value into a state object ``is_expired`` understands.
    """

    def __init__(
        self, *args: Any, decode: Callable[[bytes], Any], is_expired: Callable[[Any, float, float], bool], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.decode = decode
        self.is_expired = is_expired
        self.key_partitions: dict[Any, int] = {}

    def on_key_set(self, key: Any, value: Any) -> None:
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        self.key_partitions[key] = fut.message.partition
        self._sensor_on_set(self, key, value)

    @property
    def states(self) -> dict[Any, Any]:
        """The in-memory store's dict: agents read and update it per event, and write each
        key's changelog record once per batch (:meth:`write_changelog`)."""
        states: dict[Any, Any] = self.data.data  # the memory:// store keeps a plain dict
        return states

    async def write_changelog(self, written: dict[Any, int]) -> None:
        """Send the current value of each key written during a batch to its changelog partition.

        Straight to the producer: the memory store keeps no persisted offsets, so Faust's
        per-record bookkeeping (future message, sensors, offset callback) would be pure cost.
        """
        if not written:
            return
        states, topic = self.states, self.changelog_topic.get_topic_name()
        send = self.app.producer.send  # started with the app (tables need it)
        for key, partition in written.items():
            fut = await send(topic, dumps_key("json", key), states[key], partition, None, None)
            fut.add_done_callback(log_failed_send)
            self.key_partitions[key] = partition

    def apply_changelog_batch(self, batch: Any) -> None:
        events = list(batch)
        for event in events:
            if event.value is not None:
                self.key_partitions[event.key] = event.message.partition
        super().apply_changelog_batch(events)

    def expire(self, now: float, ttl: float) -> int:
        """Delete entities idle for longer than ``ttl`` of event time; returns how many."""
        gone = 0
        for key, raw in list(self.data.items()):
            if not raw or not self.is_expired(self.decode(raw), now, ttl):
                continue
            partition = self.key_partitions.pop(key, None)
            if partition is not None:
                self.send_changelog(partition, key, None, value_serializer="raw")
                self.data.pop(key, None)
                gone += 1
        return gone


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat()


def broker_credentials(settings: Settings) -> Any:
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.reveal(),
            mechanism=settings.kafka_sasl_mechanism,
        )
    if settings.kafka_security_protocol.upper() == "SSL":
        import ssl

        return faust.SSLCredentials(ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None))
    return None


@dataclass
class Kuntur:
    """The Faust app plus the handles the agents share."""

    app: faust.App
    settings: Settings
    pipeline: Pipeline
    metrics: Metrics
    checkpoint_path: str


def create_app(settings: Settings, pipeline: Pipeline, metrics: Metrics, partitions: int) -> Kuntur:
    """Build the Faust app. ``partitions`` must equal the transactions topic's count."""
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
        web_host=s.web_host,
        web_port=s.web_port,
        web_bind=s.web_host,
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    transactions = app.topic(s.topic_transactions, **raw)
    labels = app.topic(s.topic_labels, **raw)
    dlq = app.topic(s.topic_dlq, **raw)
    # Internal topics carry batches of entries (stream/wire.py); the suffix names their format.
    by_merchant = app.topic(f"{s.app_id}-by-merchant-{WIRE_VERSION}", partitions=partitions, internal=True, **raw)
    to_score = app.topic(f"{s.app_id}-to-score-{WIRE_VERSION}", partitions=partitions, internal=True, **raw)
    # The version suffix changes whenever the state layout does: old state is never misread.
    accounts_t = _table(app, "accounts-v1", partitions, AccountState.from_bytes, account_expired)
    merchants_t = _table(app, "merchants-v1", partitions, MerchantState.from_bytes, merchant_expired)
    merchant_partition = Partitioner(partitions).of
    emit = Emitter(app)
    by_merchant_topic, to_score_topic = by_merchant.get_topic_name(), to_score.get_topic_name()
    m = metrics
    checkpoint_path = f"{s.data_dir}/model.ckpt"

    def dead_letter_message(event: EventT, err: InvalidEvent) -> tuple[Any, bytes]:
        msg = event.message
        m.dead_letters.labels(topic=msg.topic, reason=err.code).inc()
        record = dead_letter(err, msg.value, msg.topic, msg.partition, msg.offset, now_iso())
        return msg.key, orjson.dumps(record)

    def apply_label(outcome: LabelOutcome, frauds: Outbox) -> None:
        m.labels.labels(outcome=outcome.reason).inc()
        # A confirmed fraud counts toward its merchant's fraud rate even when it came too late to teach.
        if outcome.is_fraud and outcome.merchant_id and outcome.event_ts is not None and outcome.reason != "duplicate":
            frauds.add(merchant_partition(outcome.merchant_id), fraud_entry(outcome.merchant_id, outcome.event_ts))

    @app.agent(transactions, name="accounts")
    async def account_agent(stream: Any) -> None:
        """decode → validate → (re-key) → update account state → forward to the merchant stage."""
        account, account_values = pipeline.account, pipeline.account_values
        async for events in batches(stream):
            states = accounts_t.states
            to_merchants, written = Outbox(), {}
            rekeyed, rejected = [], []
            for event in events:
                msg = event.message
                try:
                    tx = parse_transaction(event.value)
                except InvalidEvent as err:
                    rejected.append(dead_letter_message(event, err))
                    continue
                key = tx.account_id
                if msg.key != key.encode():  # keep each account on one partition
                    rekeyed.append((key.encode(), event.value, msg.timestamp))
                    continue
                state, update = account(states.get(key), tx)
                if state is None:
                    m.duplicates.inc()
                    continue
                if update.late:
                    m.late_events.inc()
                states[key] = state
                written[key] = msg.partition
                # Without a merchant the merchant hop is a pass-through (on the account's own
                # partition), but taking it keeps one path: on a partition, scoring order = input order.
                entry = merchant_entry(tx, account_values(update), msg.timestamp, msg.partition)
                to_merchants.add(merchant_partition(tx.merchant_id) if tx.merchant_id else msg.partition, entry)
            await emit.send_batches(by_merchant_topic, to_merchants)
            for key_bytes, value, timestamp in rekeyed:
                await transactions.send(key=key_bytes, value=value, timestamp=timestamp)
            for dlq_key, record in rejected:
                await dlq.send(key=dlq_key, value=record)
            await accounts_t.write_changelog(written)

    @app.agent(by_merchant, name="merchants")
    async def merchant_agent(stream: Any) -> None:
        """update merchant state (or its fraud count) → forward to scoring on the transaction's partition."""
        merchant, merchant_fraud = pipeline.merchant, pipeline.merchant_fraud
        no_merchant = pipeline.no_merchant_values()
        async for events in batches(stream):
            states = merchants_t.states
            to_scoring, written = Outbox(), {}
            for event in events:
                partition = event.message.partition
                for entry in decode_batch(event.value):
                    if entry[0] == "f":
                        _, merchant_id, fraud_ts = entry
                        states[merchant_id] = merchant_fraud(states.get(merchant_id), fraud_ts)
                        written[merchant_id] = partition
                        continue
                    _, tx_list, values, produced_at, source_partition = entry
                    tx = tx_from_list(tx_list)
                    if tx.merchant_id:
                        state, merchant_values = merchant(states.get(tx.merchant_id), tx)
                        states[tx.merchant_id] = state
                        written[tx.merchant_id] = partition
                        values.extend(merchant_values)
                    else:
                        values.extend(no_merchant)
                    to_scoring.add(source_partition, score_entry(tx_list, values, produced_at))
            await emit.send_batches(to_score_topic, to_scoring)
            await merchants_t.write_changelog(written)

    @app.agent(to_score, name="scoring")
    async def scoring_agent(stream: Any) -> None:
        """score → alert → count."""
        async for events in batches(stream):
            frauds, out_alerts, out_scores = Outbox(), [], []
            scored = 0
            for event in events:
                for tx_list, values, produced_at in decode_batch(event.value):
                    tx = tx_from_list(tx_list)
                    verdict = pipeline.score(tx, values)
                    now = time.time()
                    if verdict.alert:
                        alert = build_alert(
                            tx,
                            verdict.features,
                            verdict.scored,
                            s.alert_threshold,
                            pipeline.detector.model.version,
                            verdict.rules,
                            now,
                        )
                        out_alerts.append((tx.account_id.encode(), orjson.dumps(alert)))
                        m.alerts.labels(institution=tx.institution_id or "unknown").inc()
                    if s.emit_scores:
                        record = {
                            "transaction_id": tx.transaction_id,
                            "account_id": tx.account_id,
                            "event_time": tx.ts,
                            "score": verdict.scored.score,
                            "alert": verdict.alert,
                        }
                        out_scores.append((tx.account_id.encode(), orjson.dumps(record)))
                    for outcome in verdict.labels:
                        apply_label(outcome, frauds)
                    m.latency.observe(max(0.0, now - produced_at))
                    m.lag.set(max(0.0, now - produced_at))
                    scored += 1
            await emit.send_many(s.topic_alerts, out_alerts)
            await emit.send_many(s.topic_scores, out_scores)
            await emit.send_batches(by_merchant_topic, frauds)
            m.transactions.inc(scored)

    @app.agent(labels, name="labels")
    async def label_agent(stream: Any) -> None:
        """validate → learn with the features the transaction had when scored."""
        async for events in batches(stream):
            frauds, rejected = Outbox(), []
            for event in events:
                try:
                    label = parse_label(event.value)
                except InvalidEvent as err:
                    rejected.append(dead_letter_message(event, err))
                    continue
                outcome = pipeline.label(label)
                if outcome is None:
                    m.labels.labels(outcome="deferred").inc()
                else:
                    apply_label(outcome, frauds)
            for dlq_key, record in rejected:
                await dlq.send(key=dlq_key, value=record)
            await emit.send_batches(by_merchant_topic, frauds)

    genuine_counted = [0]

    def refresh_gauges() -> None:
        det = pipeline.detector
        learned = det.counts["learned_genuine_at_horizon"]
        m.genuine_learned.inc(learned - genuine_counted[0])
        genuine_counted[0] = learned
        m.examples_seen.set(det.model.examples_seen)
        m.precision.set(det.quality.precision)
        m.recall.set(det.quality.recall)
        m.pending.set(len(det.pending))
        m.deferred_labels.set(pipeline.deferred_labels)
        m.entities.labels(table="accounts").set(len(accounts_t.data))
        m.entities.labels(table="merchants").set(len(merchants_t.data))

    last_saved: list[tuple[int, int]] = []

    def checkpoint(force: bool = False) -> None:
        det = pipeline.detector
        progress = (det.model.examples_seen, len(det.pending))
        if not force and last_saved and last_saved[-1] == progress:
            return  # nothing new: keep the version (and the alerts naming it) stable
        last_saved[:] = [progress]
        save_checkpoint(det, checkpoint_path)
        m.checkpointed(det.model.name, det.model.version, det.model.generation)
        refresh_gauges()
        log.info("checkpoint %s: %d examples seen", det.model.version, det.model.examples_seen)

    @app.task
    async def freeze_startup_heap() -> None:
        log.info("froze %d start-up objects out of cyclic GC", freeze_heap())

    @app.timer(interval=1.0)
    async def gauges() -> None:
        refresh_gauges()

    @app.timer(interval=max(1.0, s.checkpoint_interval_s))
    async def periodic_checkpoint() -> None:
        checkpoint()

    @app.timer(interval=max(0.5, s.state_sweep_interval_s))
    async def expire_state() -> None:
        now = pipeline.detector.watermark
        if now > 0:
            n = accounts_t.expire(now, s.state_ttl_s) + merchants_t.expire(now, s.state_ttl_s)
            if n:
                log.info("expired %d idle entities", n)

    @app.on_before_shutdown.connect
    async def final_checkpoint(sender: Any, **kwargs: Any) -> None:
        checkpoint(force=True)
        await seal_changelogs()

    async def seal_changelogs() -> None:
        """End every changelog partition with a batch of its own holding one tombstone.

        Tansu (the embedded broker) reports a partition's high watermark as the last
        *batch's* base offset + 1, so Faust's recovery, which reads up to the high
        watermark, would skip the rest of the last batch and restore stale state. A
        final one-record batch makes the reported watermark exact. Harmless on Kafka.
        """
        await app.producer.flush()
        for table in (accounts_t, merchants_t):
            for partition in range(partitions):
                await table.changelog_topic.send(
                    key=SEAL_KEY, value=None, partition=partition, key_serializer="json", value_serializer="raw"
                )
        await app.producer.flush()

    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        """Ready once partitions are assigned and table recovery has completed."""
        assigned = len(app.consumer.assignment()) if app._consumer is not None else 0
        ready = assigned > 0 and not app.rebalancing and app.tables.recovery.completed.is_set()
        return web.json({"ready": ready, "assigned_partitions": assigned}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        refresh_gauges()
        return web.bytes(m.exposition(), content_type="text/plain", headers={"X-Format": "prometheus-0.0.4"})

    return Kuntur(app=app, settings=s, pipeline=pipeline, metrics=m, checkpoint_path=checkpoint_path)


def log_failed_send(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("a message could not be produced: %r", fut.exception())


class Emitter:
    """Sends straight to Faust's producer (raw bytes in, no per-message bookkeeping).

    Faust's ``Topic.send`` wraps every message in future/pending objects and sensor
    calls, and resolves the producer through ``app.maybe_start_producer()``, which yields
    to the event loop on every call; for the thousands of messages a second a worker
    emits that was a large share of its CPU. Offsets are committed only after the
    producer is flushed, as before.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._send: Any = None

    async def producer_send(self) -> Any:
        if self._send is None:
            self._send = (await self.app.maybe_start_producer()).send
        return self._send

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        send = self._send or await self.producer_send()
        fut = await send(topic, key, value, partition, None, None)
        fut.add_done_callback(log_failed_send)

    async def send_many(self, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
        if not messages:
            return
        send = self._send or await self.producer_send()
        for key, value in messages:
            fut = await send(topic, key, value, None, None, None)
            fut.add_done_callback(log_failed_send)

    async def send_batches(self, topic: str, outbox: Outbox) -> None:
        """One message per destination partition (more only if a batch is very large)."""
        for partition, value in outbox.messages():
            await self.send(topic, None, value, partition)


def _table(
    app: faust.App, name: str, partitions: int, decode: Callable[[bytes], Any], is_expired: Callable[..., bool]
) -> ExpiringTable:
    table = ExpiringTable(
        app,
        decode=decode,
        is_expired=is_expired,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=str,  # -> json codec
        value_type=bytes,  # -> raw codec: states are already compact bytes
    )
    app.tables.add(table)
    return table
