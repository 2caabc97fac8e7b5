"""Prometheus metrics of a worker (prefix ``kuntur_``), on their own registry.

Latency buckets are explicit and millisecond-scale so p50/p99 are computable with
``histogram_quantile`` at the resolution operators care about.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class BoundedLabel:
    """Label values from free text, with a bounded set of series.

    The first ``limit`` distinct values that look like identifiers (at most 64 characters
    of letters, digits, ``._-``) get their own series; anything else counts as ``other``,
    so a producer cannot grow ``/metrics`` without bound.

    >>> label = BoundedLabel(limit=1)
    >>> label("BCP"), label("BCP"), label("BBVA"), label("x" * 65)
    ('BCP', 'BCP', 'other', 'other')
    """

    OTHER = "other"
    _PLAIN = re.compile(r"[A-Za-z0-9._-]{1,64}")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit or not self._PLAIN.fullmatch(value):
            return self.OTHER
        self._seen.add(value)
        return value


class Metrics:
    """Every metric DESIGN.md asks for; one instance per worker process."""

    def __init__(self, registry: CollectorRegistry | None = None, institutions_max: int = 100) -> None:
        self.registry = registry or CollectorRegistry()
        #: institution_id → ``institution`` label value (bounded)
        self.institution = BoundedLabel(institutions_max)
        r = self.registry
        self.transactions = Counter("kuntur_transactions", "Valid transactions scored", registry=r)
        self.dead_letters = Counter(
            "kuntur_dead_letters", "Messages sent to the dead-letter topic", ["topic", "reason"], registry=r
        )
        self.send_failures = Counter(
            "kuntur_send_failures", "Messages the producer could not deliver, by topic", ["topic"], registry=r
        )
        self.input_gaps = Counter(
            "kuntur_input_gap_messages",
            "Input messages the consumer skipped in a rebalance, by topic and outcome: repaired "
            "(read back from Kafka and processed) or lost (could not be read back)",
            ["topic", "outcome"],
            registry=r,
        )
        self.duplicates = Counter("kuntur_duplicates", "Transactions skipped as duplicate ids", registry=r)
        self.ids_dropped = Gauge(
            "kuntur_account_ids_dropped",
            "Transaction ids forgotten by accounts over their id memory's cap (a re-delivery of one would count again)",
            registry=r,
        )
        self.late_events = Counter(
            "kuntur_late_events",
            "Transactions older than the lateness tolerance (scored, windows not updated)",
            registry=r,
        )
        self.alerts = Counter("kuntur_alerts", "Alerts emitted", ["institution"], registry=r)
        self.latency = Histogram(
            "kuntur_scoring_latency_seconds",
            "Time from the transaction's produce timestamp to its score (and alert) being emitted",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "kuntur_processing_lag_seconds",
            "Wall time between produce and scoring of the last transaction",
            registry=r,
        )
        self.labels = Counter("kuntur_labels", "Labels received, by outcome", ["outcome"], registry=r)
        self.genuine_learned = Counter(
            "kuntur_genuine_learned", "Transactions learned as genuine after the label horizon", registry=r
        )
        self.examples_seen = Gauge("kuntur_model_examples_seen", "Examples the model has learned from", registry=r)
        self.precision = Gauge("kuntur_model_precision", "Online precision at the threshold (rolling)", registry=r)
        self.recall = Gauge("kuntur_model_recall", "Online recall at the threshold (rolling)", registry=r)
        self.model_info = Gauge(
            "kuntur_model_info", "Model currently scoring (value 1)", ["name", "version"], registry=r
        )
        self.model_generation = Gauge("kuntur_model_generation", "Checkpoint generation of the model", registry=r)
        self.training_offset = Gauge(
            "kuntur_model_training_offset",
            "Shared model: training-log records the agreed model has read (equal offsets, identical models)",
            registry=r,
        )
        self.examples_in_flight = Gauge(
            "kuntur_model_examples_in_flight",
            "Shared model: this worker's examples learned for scoring, not yet read back from the training log",
            registry=r,
        )
        self.entities = Gauge("kuntur_state_entities", "Entities held in state tables", ["table"], registry=r)
        self.deferred_labels = Gauge(
            "kuntur_deferred_labels", "Labels waiting for the scored stream to reach their report time", registry=r
        )
        self.pending = Gauge("kuntur_pending_labels", "Scored transactions awaiting a label", registry=r)
        self.checkpoint_age = Gauge(
            "kuntur_checkpoint_age_seconds", "Seconds since the last model checkpoint was written", registry=r
        )
        self.checkpoint_interval = Gauge(
            "kuntur_checkpoint_interval_seconds", "Configured seconds between model checkpoints", registry=r
        )
        self.alert_budget = Gauge(
            "kuntur_alert_budget_ratio",
            "Configured share of transactions expected to alert (the investigation team's budget)",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "kuntur_consumer_lag_messages",
            "Messages between a partition's end offset and this worker's committed offset",
            ["topic", "partition"],
            registry=r,
        )
        self.broker_up = Gauge(
            "kuntur_broker_up", "1 while a Kafka broker answers this worker's metadata probe, 0 while unreachable",
            registry=r,
        )
        self.broker_up.set(1)
        self._last_checkpoint = time.time()
        self.checkpoint_age.set_function(lambda: time.time() - self._last_checkpoint)
        self._model_labels: tuple[str, str] | None = None

    def checkpointed(self, name: str, version: str, generation: int) -> None:
        self._last_checkpoint = time.time()
        self.set_model(name, version, generation)

    def set_model(self, name: str, version: str, generation: int) -> None:
        if self._model_labels is not None:
            self.model_info.remove(*self._model_labels)
        self._model_labels = (name, version)
        self.model_info.labels(name=name, version=version).set(1)
        self.model_generation.set(generation)

    def set_consumer_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Replace the per-partition lag: partitions revoked in a rebalance disappear."""
        self.consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
