"""The five agents, as batch handlers that need no Faust, and the thin loops that run them.

Each handler takes a batch of :class:`Message` s and the tables' dicts and returns what
to send (:class:`Sends`); the Faust loop only decodes events into messages, calls the
handler and routes its sends. Per event only the pure stages run
(:mod:`stream.pipeline.stages`); the stages' emits go to the topic of the stage that
consumes them (:data:`stream.pipeline.emits.ROUTES`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from config.settings import Settings
from features.account import AccountState
from features.merchant import MerchantState
from models.detector import LabelOutcome
from models.shared import SharedModel, encode_batch
from stream.errors import InvalidEvent
from stream.metrics import Metrics
from stream.pipeline.alerts import build_alert
from stream.pipeline.emits import ROUTES, AccountFraud, Fraud, MerchantFraud, Stage, ToMerchant, ToScore
from stream.pipeline.pseudonym import Pseudonymiser
from stream.pipeline.stages import Pipeline
from stream.pipeline.validation import dead_letter, limits_from, parse_label, parse_transaction
from stream.wire import (
    AccountFraudEntry,
    FraudEntry,
    MerchantEntry,
    Outbox,
    Partitioner,
    ScoreEntry,
    decode_account_entries,
    decode_merchant_entries,
    decode_score_entries,
)


@dataclass(frozen=True, slots=True)
class Message:
    """What a handler needs of one consumed Kafka message."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float


@dataclass
class Sends:
    """Everything one batch wants sent. ``internal`` maps a stage to the entries for its topic."""

    internal: dict[Stage, Outbox] = field(default_factory=dict)
    messages: dict[str, list[tuple[bytes | None, bytes]]] = field(default_factory=dict)
    #: transactions to re-produce under their account key: (key, value, timestamp)
    rekeyed: list[tuple[bytes, bytes, float]] = field(default_factory=list)
    #: labels to re-produce under their account's pseudonym: (key, value, timestamp)
    relabeled: list[tuple[bytes, bytes, float]] = field(default_factory=list)
    #: table name -> {key: partition} written during the batch
    written: dict[str, dict[str, int]] = field(default_factory=dict)

    def to(self, stage: Stage) -> Outbox:
        return self.internal.setdefault(stage, Outbox())

    def message(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.messages.setdefault(topic, []).append((key, value))


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat()


class Handlers:
    """The per-batch logic of the five agents, over plain dicts (the tables' stores)."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline, metrics: Metrics, partitions: int,
        shared: SharedModel | None = None, training_topic: str = "",
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        #: the shared model whose examples go to ``training_topic`` (None: the model learns locally)
        self.shared = shared
        self.training_topic = training_topic
        self.metrics = metrics
        self.merchant_partition = Partitioner(partitions).of
        key = settings.pseudonymisation_key()
        self.pseudonyms = Pseudonymiser(key) if key else None
        self.clock: Callable[[], float] = time.time
        self.limits = limits_from(settings)

    # -- shared -------------------------------------------------------------------------

    def _dead_letter(self, sends: Sends, msg: Message, err: InvalidEvent) -> None:
        self.metrics.dead_letters.labels(topic=msg.topic, reason=err.code).inc()
        record = dead_letter(
            err, msg.value, msg.topic, msg.partition, msg.offset, now_iso(), self.limits.max_dead_letter_payload
        )
        # the original key, unless it alone would break the producer's message limit
        key = msg.key if msg.key is None or len(msg.key) <= self.limits.max_field_chars * 4 else None
        sends.message(self.settings.topic_dlq, key, orjson.dumps(record))

    def _send_fraud(self, sends: Sends, fraud: Fraud, partition: int) -> None:
        """A confirmed fraud goes to its stage: on the partition that holds the merchant, or
        on ``partition``, the account's (that of the scored transaction or of the label)."""
        if isinstance(fraud, AccountFraud):
            sends.to(ROUTES[AccountFraud]).add(partition, AccountFraudEntry(fraud))
        else:
            sends.to(ROUTES[MerchantFraud]).add(self.merchant_partition(fraud.merchant_id), FraudEntry(fraud))

    def learning_writes(self, sends: Sends, partition: int) -> None:
        """Record the learning-state keys the score stage changed, for the changelog. New
        keys belong to ``partition`` (the account's); known ones keep their own."""
        writes = self.pipeline.score.take_writes()
        if writes:
            for name, keys in (("pending", writes.pending), ("deferred", writes.deferred)):
                if keys:
                    written = sends.written.setdefault(name, {})
                    for key in keys:
                        written[key] = partition

    def training(self, sends: Sends) -> None:
        """The batch's resolved examples, as one record of the shared model's training log."""
        if self.shared is not None and (examples := self.shared.take_outbox()):
            sends.message(self.training_topic, None, encode_batch(examples))

    def _label_outcome(
        self, sends: Sends, outcome: LabelOutcome | None, frauds: list[Fraud] | None, partition: int
    ) -> None:
        if outcome is None:
            self.metrics.labels.labels(outcome="deferred").inc()
            return
        self.metrics.labels.labels(outcome=outcome.reason).inc()
        for fraud in frauds or ():
            self._send_fraud(sends, fraud, partition)

    # -- agents -------------------------------------------------------------------------

    def accounts(self, batch: list[Message], states: dict[str, bytes]) -> Sends:
        """decode → validate → (re-key) → update account state → to the merchant stage."""
        sends, written = Sends(), {}
        stage, m = self.pipeline.account, self.metrics
        to_merchant = sends.to(ROUTES[ToMerchant])
        now, limits = self.clock(), self.limits
        for msg in batch:
            try:
                tx = parse_transaction(msg.value, now, limits)
            except InvalidEvent as err:
                self._dead_letter(sends, msg, err)
                continue
            if self.pseudonyms is not None:
                tx = self.pseudonyms.transaction(tx)
            key = tx.account_id
            if msg.key != key.encode():  # keep each account on one partition (keyed by its pseudonym if any)
                assert msg.value is not None
                sends.rekeyed.append((key.encode(), msg.value, msg.timestamp))
                continue
            raw = states.get(key)
            step = stage.on_transaction(AccountState.from_bytes(raw) if raw else None, tx)
            if step.state is None or step.emit is None:
                m.duplicates.inc()
                continue
            if step.late:
                m.late_events.inc()
            states[key] = step.state.to_bytes()
            written[key] = msg.partition
            # Without a merchant the merchant hop is a pass-through (on the account's own
            # partition), but taking it keeps one path: on a partition, scoring order = input order.
            partition = self.merchant_partition(tx.merchant_id) if tx.merchant_id else msg.partition
            to_merchant.add(partition, MerchantEntry(step.emit, msg.timestamp, msg.partition))
        sends.written["accounts"] = written
        return sends

    def merchants(self, batch: list[Message], states: dict[str, bytes]) -> Sends:
        """update merchant state (or its fraud count) → to scoring on the transaction's partition."""
        sends, written = Sends(), {}
        stage = self.pipeline.merchant
        to_score = sends.to(ROUTES[ToScore])
        for msg in batch:
            assert msg.value is not None
            for entry in decode_merchant_entries(msg.value):
                if isinstance(entry, FraudEntry):
                    mid = entry.emit.merchant_id
                    raw = states.get(mid)
                    states[mid] = stage.on_fraud(MerchantState.from_bytes(raw) if raw else None, entry.emit).to_bytes()
                    written[mid] = msg.partition
                    continue
                merchant_id = entry.emit.tx.merchant_id
                raw = states.get(merchant_id) if merchant_id else None
                state, out = stage.on_transaction(MerchantState.from_bytes(raw) if raw else None, entry.emit)
                if state is not None and merchant_id:
                    states[merchant_id] = state.to_bytes()
                    written[merchant_id] = msg.partition
                to_score.add(entry.partition, ScoreEntry(out, entry.produced_at))
        sends.written["merchants"] = written
        return sends

    def account_frauds(self, batch: list[Message], states: dict[str, bytes]) -> Sends:
        """reported frauds → the account's state (its reported-fraud memory)."""
        sends, written = Sends(), {}
        stage = self.pipeline.account
        for msg in batch:
            assert msg.value is not None
            for entry in decode_account_entries(msg.value):
                key = entry.emit.account_id
                raw = states.get(key)
                if not raw:
                    continue  # no state to attach it to (idle and expired)
                state = AccountState.from_bytes(raw)
                new = stage.on_fraud(state, entry.emit)
                if new is not None and new is not state:
                    states[key] = new.to_bytes()
                    written[key] = msg.partition
        sends.written["accounts"] = written
        return sends

    def scoring(self, batch: list[Message]) -> tuple[Sends, int]:
        """score → alert → count; labels released by the stream's event time teach now."""
        sends, scored = Sends(), 0
        s, m, stage = self.settings, self.metrics, self.pipeline.score
        for msg in batch:
            assert msg.value is not None
            for entry in decode_score_entries(msg.value):
                tx = entry.emit.tx
                verdict = stage.on_transaction(entry.emit)
                now = self.clock()
                if verdict.alert:
                    version = stage.detector.model.version
                    alert = build_alert(
                        tx, verdict.features, verdict.scored, s.alert_threshold, version, verdict.rules, now
                    )
                    sends.message(s.topic_alerts, tx.account_id.encode(), orjson.dumps(alert))
                    m.alerts.labels(institution=m.institution(tx.institution_id)).inc()
                if s.emit_scores:
                    record = {
                        "transaction_id": tx.transaction_id,
                        "account_id": tx.account_id,
                        "event_time": tx.ts,
                        "score": verdict.scored.score,
                        "alert": verdict.alert,
                    }
                    sends.message(s.topic_scores, tx.account_id.encode(), orjson.dumps(record))
                for outcome in verdict.labels:
                    m.labels.labels(outcome=outcome.reason).inc()
                for fraud in verdict.frauds:
                    self._send_fraud(sends, fraud, msg.partition)
                self.learning_writes(sends, msg.partition)
                m.latency.observe(max(0.0, now - entry.produced_at))
                m.lag.set(max(0.0, now - entry.produced_at))
                scored += 1
        m.transactions.inc(scored)
        self.training(sends)
        return sends, scored

    def labels(self, batch: list[Message]) -> Sends:
        """validate → learn with the features the transaction had when scored."""
        sends = Sends()
        now, limits = self.clock(), self.limits
        for msg in batch:
            try:
                label = parse_label(msg.value, now, limits)
            except InvalidEvent as err:
                self._dead_letter(sends, msg, err)
                continue
            if self.pseudonyms is not None:
                label = self.pseudonyms.label(label)
                if msg.key != label.account_id.encode():  # to the partition of its account's pseudonym
                    assert msg.value is not None
                    sends.relabeled.append((label.account_id.encode(), msg.value, msg.timestamp))
                    continue
            outcome, frauds = self.pipeline.score.on_label(label)
            self.learning_writes(sends, msg.partition)
            self._label_outcome(sends, outcome, frauds, msg.partition)
        self.training(sends)
        return sends


def message_of(event: Any) -> Message:
    msg = event.message
    return Message(msg.key, event.value, msg.topic, msg.partition, msg.offset, msg.timestamp)
