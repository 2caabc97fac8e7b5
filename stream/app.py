"""The Faust application: topics, tables and the agents that wrap the pure pipeline.

Flow (every hop keyed so that state stays local to one partition)::

    transactions (key account) ─ accounts ─▶ <app>-by-merchant (key merchant) ─ merchants ─▶
    <app>-to-score (key account) ─ scoring ─▶ alerts / scores
    labels (key account) ─ labels ─▶ learner; confirmed fraud ─▶ <app>-by-merchant (fraud rate)

The scoring and labels agents read co-partitioned topics (both keyed by account), so a
label reaches the worker that scored its transaction and holds its features.
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
from faust.types import EventT

from config.settings import Settings
from features.account import AccountState
from features.account import is_expired as account_expired
from features.merchant import MerchantState
from features.merchant import is_expired as merchant_expired
from models.checkpoint import save_checkpoint
from models.detector import LabelOutcome
from stream.alerts import build_alert
from stream.core import Pipeline
from stream.errors import InvalidEvent
from stream.metrics import Metrics
from stream.tuning import set_fetch_max_wait
from stream.validation import dead_letter, parse_label, parse_transaction
from stream.wire import decode, encode_merchant_fraud, encode_stage, tx_from_list

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
    set_fetch_max_wait(s.consumer_fetch_max_wait_ms)
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{h}" for h in s.kafka_bootstrap_servers],
        broker_credentials=broker_credentials(s),
        store="memory://",
        datadir=f"{s.data_dir}/faust",
        topic_partitions=partitions,
        topic_replication_factor=s.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # Short group timeouts: a worker processes within seconds of start (default ~30 s).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        producer_linger=0.01,  # measured: 0.01 s doubles passthrough vs 0 on Tansu
        web_enabled=True,
        web_host=s.web_host,
        web_port=s.web_port,
        web_bind=s.web_host,
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    transactions = app.topic(s.topic_transactions, **raw)
    labels = app.topic(s.topic_labels, **raw)
    alerts = app.topic(s.topic_alerts, **raw)
    scores = app.topic(s.topic_scores, **raw)
    dlq = app.topic(s.topic_dlq, **raw)
    by_merchant = app.topic(f"{s.app_id}-by-merchant", partitions=partitions, internal=True, **raw)
    to_score = app.topic(f"{s.app_id}-to-score", partitions=partitions, internal=True, **raw)
    # The version suffix changes whenever the state layout does: old state is never misread.
    accounts_t = _table(app, "accounts-v1", partitions, AccountState.from_bytes, account_expired)
    merchants_t = _table(app, "merchants-v1", partitions, MerchantState.from_bytes, merchant_expired)
    m = metrics
    checkpoint_path = f"{s.data_dir}/model.ckpt"

    async def send_dead_letter(event: EventT, err: InvalidEvent) -> None:
        msg = event.message
        m.dead_letters.labels(topic=msg.topic, reason=err.code).inc()
        record = dead_letter(err, msg.value, msg.topic, msg.partition, msg.offset, now_iso())
        await dlq.send(key=msg.key, value=orjson.dumps(record))

    async def apply_label(outcome: LabelOutcome) -> None:
        m.labels.labels(outcome=outcome.reason).inc()
        # A confirmed fraud counts toward its merchant's fraud rate even when it came too late to teach.
        if outcome.is_fraud and outcome.merchant_id and outcome.event_ts is not None and outcome.reason != "duplicate":
            await by_merchant.send(
                key=outcome.merchant_id.encode(), value=encode_merchant_fraud(outcome.merchant_id, outcome.event_ts)
            )

    @app.agent(transactions, name="accounts")
    async def account_agent(stream: Any) -> None:
        """decode → validate → (re-key) → update account state → forward to merchant stage."""
        async for event in stream.events():
            try:
                tx = parse_transaction(event.value)
            except InvalidEvent as err:
                await send_dead_letter(event, err)
                continue
            key = tx.account_id.encode()
            if event.message.key != key:  # keep each account on one partition
                await transactions.send(key=key, value=event.value, timestamp=event.message.timestamp)
                continue
            state, update = pipeline.account(accounts_t.get(tx.account_id), tx)
            if state is None:
                m.duplicates.inc()
                continue
            if update.late:
                m.late_events.inc()
            accounts_t[tx.account_id] = state
            payload = encode_stage(tx, pipeline.account_values(update), event.message.timestamp)
            if tx.merchant_id:
                await by_merchant.send(key=tx.merchant_id.encode(), value=payload)
            else:
                await to_score.send(key=key, value=payload)

    @app.agent(by_merchant, name="merchants")
    async def merchant_agent(stream: Any) -> None:
        """update merchant state (or its fraud count) → forward to scoring, keyed by account."""
        async for value in stream:
            msg = decode(value)
            if msg["k"] == "fraud":
                merchants_t[msg["m"]] = pipeline.merchant_fraud(merchants_t.get(msg["m"]), msg["ts"])
                continue
            tx = tx_from_list(msg["tx"])
            state, values = pipeline.merchant(merchants_t.get(tx.merchant_id), tx)
            merchants_t[tx.merchant_id] = state
            msg["f"].extend(values)
            await to_score.send(key=tx.account_id.encode(), value=orjson.dumps(msg))

    @app.agent(to_score, name="scoring")
    async def scoring_agent(stream: Any) -> None:
        """score → alert → count."""
        async for value in stream:
            msg = decode(value)
            tx = tx_from_list(msg["tx"])
            values = msg["f"]
            if not tx.merchant_id:
                values.extend(pipeline.no_merchant_values())
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
                await alerts.send(key=tx.account_id.encode(), value=orjson.dumps(alert))
                m.alerts.labels(institution=tx.institution_id or "unknown").inc()
            if s.emit_scores:
                record = {
                    "transaction_id": tx.transaction_id,
                    "account_id": tx.account_id,
                    "event_time": tx.ts,
                    "score": verdict.scored.score,
                    "alert": verdict.alert,
                }
                await scores.send(key=tx.account_id.encode(), value=orjson.dumps(record))
            for outcome in verdict.labels:
                await apply_label(outcome)
            m.transactions.inc()
            m.latency.observe(max(0.0, now - msg["pt"]))
            m.lag.set(max(0.0, now - msg["pt"]))

    @app.agent(labels, name="labels")
    async def label_agent(stream: Any) -> None:
        """validate → learn with the features the transaction had when scored."""
        async for event in stream.events():
            try:
                label = parse_label(event.value)
            except InvalidEvent as err:
                await send_dead_letter(event, err)
                continue
            outcome = pipeline.label(label)
            if outcome is None:
                m.labels.labels(outcome="deferred").inc()
            else:
                await apply_label(outcome)

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
