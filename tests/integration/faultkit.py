"""Helpers of the cluster fault tests (test_faults_cluster.py): a paced producer and an alert
watcher, both background threads, so a test can inject a fault while transactions stream in
and time what follows.

``transactions``, ``fault_settings``, ``labels_for`` and ``report`` are the helpers every
fault test shares (test_faults.py, test_faults_cluster.py, test_shared_model.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson
from confluent_kafka import Producer

from config.settings import Settings
from offline.simulator import SimConfig, generate
from stream.kafka.reader import topic_reader
from stream.pipeline.validation import transaction_from_dict

#: librdkafka's "connection refused" lines while a broker is down: kept out of the output.
_quiet = logging.getLogger("kuntur.faultkit-client")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False

__all__ = [
    "AlertWatch",
    "Streamer",
    "alert_content",
    "fault_settings",
    "labels_for",
    "report",
    "transactions",
]


def report(test: str, **figures: Any) -> None:
    print("RELIABILITY " + json.dumps({"test": test, **figures}), flush=True)


def transactions(n: int, seed: int, accounts: int = 150) -> list[dict[str, Any]]:
    """Simulated transactions without merchants (account windows only)."""
    cfg = SimConfig(seed=seed, accounts=accounts, transactions=n)
    txs = [e.value for e in generate(cfg) if e.kind == "transaction"]
    for tx in txs:
        tx.pop("merchant_id", None)
        tx.pop("merchant_category", None)
    return txs


def fault_settings(settings: Settings, **more: Any) -> Settings:
    """Every transaction alerts (the alert carries its features); nothing learns at a horizon."""
    return settings.replace(
        alert_threshold=0.0,
        warmup_genuine=0,
        label_horizon_s=1e9,
        model="logreg",
        checkpoint_interval_s=2.0,
        broker_unreachable_exit_s=60.0,
        **more,
    )


def labels_for(txs: Iterable[dict[str, Any]], after_s: float, fraud_every: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": tx["transaction_id"],
            "account_id": tx["account_id"],
            "is_fraud": i % fraud_every == 0,
            "reported_at": transaction_from_dict(tx).ts + after_s,
        }
        for i, tx in enumerate(txs)
    ]


#: Fields of an alert that depend on when it was emitted, not on what was scored.
WHEN_FIELDS = ("scored_at",)


def alert_content(alert: dict[str, Any]) -> bytes:
    """An alert without its emission time: two copies of one alert id must have the same."""
    return orjson.dumps({k: v for k, v in alert.items() if k not in WHEN_FIELDS}, option=orjson.OPT_SORT_KEYS)


class Streamer(threading.Thread):
    """Produces ``txs`` (keyed by account) at ``rate`` per second, in order, in the background.

    ``sent_at[i]`` is the monotonic time transaction ``i`` was handed to the producer,
    ``partition[id]`` the partition Kafka acknowledged it on. The producer keeps retrying
    through a broker failure (librdkafka's delivery timeout, 5 min by default).
    """

    def __init__(self, settings: Settings, txs: list[dict[str, Any]], rate: float) -> None:
        super().__init__(name="streamer", daemon=True)
        self.settings = settings
        self.txs = txs
        self.rate = rate
        self.sent = 0
        self.sent_at: list[float] = []
        self.partition: dict[str, int] = {}
        self.failed: list[str] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def _delivered(self, err: Any, msg: Any) -> None:
        tid = orjson.loads(msg.value())["transaction_id"]
        if err is not None:
            self.failed.append(f"{tid}: {err}")
        else:
            self.partition[tid] = msg.partition()

    def run(self) -> None:
        try:
            p = Producer({**self.settings.kafka_client_config(), "linger.ms": 5, "logger": _quiet})
            topic = self.settings.topic_transactions
            started = time.monotonic()
            for i, tx in enumerate(self.txs):
                if self._halt.is_set():
                    break
                delay = started + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                p.produce(topic, key=tx["account_id"].encode(), value=orjson.dumps(tx), on_delivery=self._delivered)
                self.sent_at.append(time.monotonic())
                self.sent = i + 1
                p.poll(0)
            if p.flush(120) != 0:
                self.failed.append("flush: messages still queued after 120 s")
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def wait_sent(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.sent < n and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.sent >= n, f"only {self.sent} of {n} transactions produced (error: {self.error})"

    def finish(self, timeout: float = 180) -> None:
        """Wait until every transaction is produced and acknowledged."""
        self.join(timeout)
        assert not self.is_alive(), "the producer thread is still running"
        assert self.error is None, repr(self.error)
        assert not self.failed, self.failed[:5]
        assert len(self.partition) == self.sent

    def stop(self) -> None:
        self._halt.set()


class AlertWatch(threading.Thread):
    """Reads the alerts topic from the beginning, in the background: every copy of every
    alert with the monotonic time it arrived here."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="alert-watch", daemon=True)
        self.settings = settings
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.first_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = topic_reader(self.settings, self.settings.topic_alerts, timeout=120)
        except BaseException as exc:
            self.error = exc
            return
        try:
            while not self._halt.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                alert = orjson.loads(msg.value())
                now = time.monotonic()
                with self._lock:
                    self.received.append((now, alert))
                    self.first_at.setdefault(alert["transaction_id"], now)
        finally:
            consumer.close()

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.first_at)

    def alerts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a for _, a in self.received]

    def wait_ids(self, ids: set[str], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise AssertionError(f"alert reader failed: {self.error!r}")
            missing = ids - self.ids()
            if not missing:
                return
            time.sleep(0.25)
        raise AssertionError(f"{what}: {len(missing)} of {len(ids)} never alerted within {timeout}s, e.g. "
                             f"{sorted(missing)[:5]}")

    def conflicting(self) -> dict[str, list[dict[str, Any]]]:
        """Alert ids emitted more than once with different contents (beyond ``scored_at``)."""
        by_id: dict[str, dict[bytes, dict[str, Any]]] = {}
        for alert in self.alerts():
            by_id.setdefault(alert["alert_id"], {})[alert_content(alert)] = alert
        return {k: list(v.values()) for k, v in by_id.items() if len(v) > 1}

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
