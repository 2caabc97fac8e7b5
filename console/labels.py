"""Decisions → Label JSON on the ``labels`` topic (DESIGN.md's Label, plus provenance).

The decision is stored first (the audit trail never depends on Kafka being up), then
produced; Kafka's acknowledgement is recorded in ``deliveries``. Decisions without one
are re-sent by :meth:`LabelSender.send_pending` (the web app calls it periodically), so
a label can arrive twice, never zero times: the detector learns from a transaction's
label once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from console.store import AlertRow, Decision, Store

log = logging.getLogger("kuntur.console.labels")


def label_record(decision: Decision, alert: AlertRow) -> dict[str, Any]:
    """The Label a decision produces; ``reported_at`` is when the investigator decided.

    Fields beyond the Label schema (``source``, ``alert_id``, ``decision_id``,
    ``corrects``) are ignored by workers and let other consumers trace the decision.
    """
    return {
        "transaction_id": alert.transaction_id,
        "account_id": alert.account_id,
        "is_fraud": decision.outcome == "fraud",
        "reported_at": datetime.fromtimestamp(decision.decided_at, tz=UTC).isoformat(),
        "source": "kuntur-console",
        "alert_id": alert.alert_id,
        "decision_id": decision.decision_id,
        "corrects": decision.corrects,
    }


class LabelSender:
    """A confluent-kafka producer of labels (idempotent producer, acks from all replicas)."""

    def __init__(
        self, settings: Settings, store: Store, timeout_s: float = 10.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.topic = settings.topic_labels
        self.store, self.timeout_s, self.clock = store, timeout_s, clock
        self._producer = Producer({**settings.kafka_client_config(), "enable.idempotence": True, "acks": "all"})
        self._lock = threading.Lock()  # one send at a time: keeps decisions in order per account

    def send(self, decision: Decision, alert: AlertRow) -> bool:
        """Produce one decision's label and wait for Kafka's acknowledgement; True if acknowledged."""
        result: dict[str, Any] = {}

        def delivered(err: KafkaError | None, msg: Message) -> None:
            result["error"] = err
            result["partition"], result["offset"] = msg.partition(), msg.offset()

        with self._lock:
            self._producer.produce(
                self.topic,
                key=alert.account_id.encode(),
                value=orjson.dumps(label_record(decision, alert)),
                on_delivery=delivered,
            )
            self._producer.flush(self.timeout_s)
        if "partition" not in result or result.get("error") is not None:
            log.warning("console: label of decision %d not acknowledged yet (%s); will retry",
                        decision.decision_id, result.get("error") or "timeout")  # fmt: skip
            return False
        self.store.mark_delivered(decision.decision_id, self.topic, result["partition"], result["offset"], self.clock())
        log.info("console: decision %d sent as a label", decision.decision_id)
        return True

    def send_pending(self) -> int:
        """Re-send every decision Kafka has not acknowledged; how many are still pending."""
        pending = 0
        for decision, alert in self.store.undelivered():
            if not self.send(decision, alert):
                pending += 1
        return pending

    def close(self) -> None:
        with self._lock:
            self._producer.flush(self.timeout_s)
