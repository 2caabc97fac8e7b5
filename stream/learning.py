"""The shared model's two topics: the training log and the model snapshots.

* ``<app_id>-training-v1`` — one partition: every worker appends the examples its
  detector resolves (:class:`models.shared.SharedModel`) and reads the whole log, in
  offset order, into its agreed model. One partition is what makes the order one order.
  Kept ``training_retention_s``.
* ``<app_id>-model-v1`` — compacted, one partition: signed checkpoints of the agreed
  model with the training offset they have read up to (:func:`models.checkpoint.checkpoint_bytes`).
  A starting worker takes the newest one that verifies, then reads the log from its
  offset (:func:`bootstrap`): a new or replacement worker has the model of the others
  without any file of its own.

Reading uses plain confluent-kafka consumers assigned to the partition (no consumer group:
every worker reads everything); ``consume(timeout=0)`` only takes what librdkafka's own
threads have fetched, so the worker's event loop never blocks on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from config.settings import Settings
from features.catalogue import FEATURE_NAMES
from models.checkpoint import load_checkpoint_bytes
from models.errors import CheckpointError
from models.scorer import FraudModel
from models.shared import SharedModel
from stream.errors import BrokerError
from stream.kafka.admin import ensure_internal_topics
from stream.kafka.reader import unjoined_consumer

log = logging.getLogger("kuntur")

#: the one key of the snapshot topic (compaction keeps the newest snapshot)
SNAPSHOT_KEY = b"model"
#: largest snapshot the topic takes (the default model's is ~2 MB; Kafka's default limit is 1 MB)
MAX_SNAPSHOT_BYTES = 32 * 1024 * 1024

_quiet = logging.getLogger("kuntur.learning-client")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False


def training_topic(settings: Settings) -> str:
    return f"{settings.app_id}-training-v1"


def model_topic(settings: Settings) -> str:
    return f"{settings.app_id}-model-v1"


def ensure_learning_topics(settings: Settings) -> None:
    """Create the two topics (one partition each) if they do not exist."""
    retention_ms = str(int(settings.training_retention_s * 1000))
    ensure_internal_topics(
        settings,
        {
            training_topic(settings): {"retention.ms": retention_ms, "cleanup.policy": "delete"},
            model_topic(settings): {"cleanup.policy": "compact", "retention.ms": "-1",
                                    "max.message.bytes": str(MAX_SNAPSHOT_BYTES)},
        },
        partitions=1,
    )


#: How long a fetch of the training log waits for new records (ms). Nothing waits for the log:
#: a worker scores with its own examples at once and another worker's reach it a poll later.
TRAINING_FETCH_WAIT_MS = 100
#: Seconds between two reads of the training log while it has nothing new.
TRAINING_IDLE_POLL_S = 0.05


def _consumer(settings: Settings) -> Consumer:
    return unjoined_consumer(settings, f"{settings.app_id}-learning", **{"fetch.wait.max.ms": TRAINING_FETCH_WAIT_MS})


def _watermarks(consumer: Consumer, topic: str, timeout: float = 30.0) -> tuple[int, int]:
    """Low and high offsets of ``topic``'s partition 0, retried while the partition has no
    leader yet (a topic created a moment ago: NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"topic {topic!r}: no offsets within {timeout:.0f}s: {exc}") from exc
            time.sleep(0.2)


def _read_to_end(consumer: Consumer, topic: str, start: int, timeout: float = 60.0) -> list[Any]:
    """Every message of ``topic``'s partition 0 from ``start`` to the end as of now."""
    low, high = _watermarks(consumer, topic)
    start = max(start, low)
    if start >= high:
        return []
    consumer.assign([TopicPartition(topic, 0, start)])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while (not out or out[-1].offset() < high - 1) and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, timeout=0.5):
            if msg.error() is None:
                out.append(msg)
    return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    model: FraudModel
    training_offset: int
    version: str


def latest_snapshot(settings: Settings, key: bytes) -> Snapshot | None:
    """The snapshot with the highest training offset among those whose signature checks
    out under ``key`` and whose features are this code's; refused ones are logged."""
    consumer = _consumer(settings)
    try:
        messages = _read_to_end(consumer, model_topic(settings), 0)
    finally:
        consumer.close()
    best: Snapshot | None = None
    for msg in messages:
        source = f"{model_topic(settings)}@{msg.offset()}"
        try:
            detector, meta = load_checkpoint_bytes(msg.value(), key, feature_names=FEATURE_NAMES, source=source)
        except CheckpointError as exc:
            log.warning("model snapshot refused: %s", exc)
            continue
        offset = meta.get("training_offset")
        if isinstance(offset, int) and (best is None or offset > best.training_offset):
            best = Snapshot(detector.model, offset, str(meta.get("version")))
    return best


class TrainingReader:
    """Reads the training log from ``shared.next_offset`` into the shared model."""

    def __init__(self, settings: Settings, shared: SharedModel) -> None:
        self.topic = training_topic(settings)
        self.shared = shared
        self.consumer = _consumer(settings)
        self.consumer.assign([TopicPartition(self.topic, 0, shared.next_offset)])
        self.position_reset = 0

    def poll(self, max_records: int = 5_000) -> int:
        """Apply what has been fetched (never waits); returns how many records."""
        try:
            messages = self.consumer.consume(max_records, timeout=0)
        except KafkaException as exc:
            log.debug("training log: %r", exc)
            return 0
        records: list[tuple[int, bytes]] = [
            (m.offset() or 0, m.value() or b"") for m in messages if m.error() is None
        ]
        if records:
            if records[0][0] > self.shared.next_offset:
                # the log's retention removed examples the agreed model never read
                log.warning(
                    "training log: offsets %d..%d are gone (retention): those examples are not learned",
                    self.shared.next_offset, records[0][0] - 1,
                )
                self.shared.next_offset = records[0][0]
            self.shared.consume(records)
        return len(records)

    def catch_up(self, timeout: float = 600.0) -> int:
        """Read the log to its end as of now (at start, before scoring); returns records read."""
        low, high = _watermarks(self.consumer, self.topic)
        if self.shared.next_offset < low:
            if self.shared.next_offset > 0:
                log.warning("training log starts at %d, after the model's offset %d: the examples between are gone",
                            low, self.shared.next_offset)
            self.shared.next_offset = low
            self.consumer.assign([TopicPartition(self.topic, 0, low)])
        total, start, last_log = 0, time.monotonic(), time.monotonic()
        while self.shared.next_offset < high and time.monotonic() - start < timeout:
            n = self.poll()
            total += n
            if n == 0:
                time.sleep(0.01)
            if time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                log.info("model: read %d of %d training examples", self.shared.next_offset - low, high - low)
        return total

    def close(self) -> None:
        self.consumer.close()


class SnapshotPublisher:
    """Appends signed snapshots to the model topic (its own producer: a snapshot is larger
    than the stream producer's message limit)."""

    def __init__(self, settings: Settings) -> None:
        self.topic = model_topic(settings)
        self.failed = 0
        self.producer = Producer(
            {**settings.kafka_client_config(), "message.max.bytes": MAX_SNAPSHOT_BYTES,
             "compression.type": "zstd", "logger": _quiet}
        )

    def publish(self, snapshot: bytes) -> None:
        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                self.failed += 1
                log.warning("model snapshot not stored: %s", err)

        self.producer.produce(self.topic, snapshot, key=SNAPSHOT_KEY, on_delivery=delivered)
        self.producer.poll(0)

    def flush(self, timeout: float) -> int:
        """Deliver what is queued; returns how many snapshots are still undelivered."""
        return int(self.producer.flush(timeout))
