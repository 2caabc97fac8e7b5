"""Kafka → store: the ``alerts`` topic (and ``scores`` when workers emit them).

A background thread reads every partition by direct assignment (no consumer group:
the console observes, it does not share work) from the position the store recorded, and
writes each batch together with the new position in one transaction. Alerts are
idempotent by ``alert_id``; a malformed record is skipped and counted, never fatal.
Logs at info level say how many records arrived, never whose.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from config.settings import Settings
from console.store import Store

log = logging.getLogger("kuntur.console.ingest")

MAX_TEXT = 256


def parse_time(value: Any) -> float:
    """Epoch seconds from an ISO-8601 string with a zone, or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        raise ValueError(f"time without a zone: {value!r}")
    return dt.timestamp()


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:MAX_TEXT]


def alert_row(alert: dict[str, Any], tz: ZoneInfo, received_at: float) -> dict[str, Any]:
    """The store's row for one Alert JSON object (ValueError/KeyError/TypeError if malformed).

    >>> row = alert_row({"alert_id": "a1", "transaction_id": "t1", "account_id": "acc",
    ...     "event_time": "2026-01-01T03:00:00+00:00", "score": 0.9}, ZoneInfo("America/Lima"), 0.0)
    >>> row["day"], row["institution_id"], row["rules"]
    ('2025-12-31', '', '[]')
    """
    event_time = parse_time(alert["event_time"])
    score = float(alert["score"])
    reasons = [
        {
            "feature": _text(r.get("feature")),
            "value": r.get("value"),
            "text": _text(r.get("text")),
            "contribution": float(r.get("contribution") or 0.0),
        }
        for r in alert.get("reasons") or []
        if isinstance(r, dict)
    ]
    features = {str(k): v for k, v in (alert.get("features") or {}).items() if isinstance(v, int | float)}
    amount = alert.get("amount")
    threshold = alert.get("threshold")
    return {
        "alert_id": _text(alert["alert_id"]),
        "transaction_id": _text(alert["transaction_id"]),
        "account_id": _text(alert["account_id"]),
        "institution_id": _text(alert.get("institution_id")),
        "event_time": event_time,
        "day": datetime.fromtimestamp(event_time, tz).date().isoformat(),
        "score": score,
        "threshold": float(threshold) if threshold is not None else None,
        "model_version": _text(alert.get("model_version")),
        "amount": float(amount) if amount is not None else None,
        "merchant_id": _text(alert.get("merchant_id")) or None,
        "rules": orjson.dumps([_text(r) for r in alert.get("rules") or []]).decode(),
        "reasons": orjson.dumps(reasons).decode(),
        "features": orjson.dumps(features).decode(),
        "received_at": received_at,
    }


def score_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": _text(record["transaction_id"]),
        "account_id": _text(record["account_id"]),
        "event_time": parse_time(record["event_time"]),
        "score": float(record["score"]),
        "alert": int(bool(record.get("alert"))),
    }


class Ingest(threading.Thread):
    """The background reader; ``stop()`` ends it within about a second."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        super().__init__(name="console-ingest", daemon=True)
        self.settings, self.store, self.clock = settings, store, clock
        self.tz = ZoneInfo(settings.timezone)
        self.topics = [settings.topic_alerts] + ([settings.topic_scores] if settings.emit_scores else [])
        self.alerts_seen = self.malformed = 0
        self.assigned = threading.Event()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        consumer = Consumer(
            {
                **self.settings.kafka_client_config(),
                "group.id": "kuntur-console",  # required by librdkafka; never joined or committed
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            assigned: set[tuple[str, int]] = set()
            next_check = 0.0
            while not self._halt.is_set():
                if time.monotonic() >= next_check:
                    assigned = self._assign(consumer, assigned)
                    next_check = time.monotonic() + (30.0 if assigned else 1.0)
                if not assigned:
                    self._halt.wait(0.5)
                    continue
                messages = consumer.consume(500, 0.5)
                if messages:
                    self._write(messages)
        except Exception:  # a dead reader must be visible, not silent
            log.exception("console: the alert reader stopped")
            raise
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer, assigned: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """Assign partitions not assigned yet, from the store's positions."""
        new: list[TopicPartition] = []
        for topic in self.topics:
            try:
                meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            except KafkaException as exc:
                log.warning("console: cannot list topic %s: %s", topic, exc)
                continue
            if meta is None or meta.error or not meta.partitions:
                continue
            positions = self.store.offsets(topic)
            for p in sorted(meta.partitions):
                if (topic, p) not in assigned:
                    new.append(TopicPartition(topic, p, positions.get(p, OFFSET_BEGINNING)))
        if new:
            consumer.incremental_assign(new)
            assigned = assigned | {(tp.topic, tp.partition) for tp in new}
            log.info("console: reading %d partition(s) of %s", len(new), ", ".join(sorted({t.topic for t in new})))
            self.assigned.set()
        return assigned

    def _write(self, messages: list[Any]) -> None:
        now = self.clock()
        alerts, scores = [], []
        offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            if msg.error():
                continue
            topic = msg.topic()
            offsets[(topic, msg.partition())] = msg.offset() + 1
            try:
                record = orjson.loads(msg.value() or b"")
                if topic == self.settings.topic_alerts:
                    alerts.append(alert_row(record, self.tz, now))
                else:
                    scores.append(score_row(record))
            except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
                self.malformed += 1
                log.warning("console: skipped a malformed record at %s[%d]@%d: %s",
                            topic, msg.partition(), msg.offset(), type(exc).__name__)  # fmt: skip
        alert_offsets = {k: v for k, v in offsets.items() if k[0] == self.settings.topic_alerts}
        score_offsets = {k: v for k, v in offsets.items() if k[0] != self.settings.topic_alerts}
        if alert_offsets:
            new = self.store.add_alerts(alerts, alert_offsets)
            self.alerts_seen += new
            if new:
                log.info("console: %d new alert(s)", new)
        if score_offsets:
            self.store.add_scores(scores, score_offsets)
