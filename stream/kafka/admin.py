"""Create the topics Kuntur reads and writes, all with one partition count.

Faust co-partitions a table's changelog with its source topic, so every topic Kuntur
touches must have the same number of partitions. If the transactions topic already
exists, its partition count wins (a bank's existing topic is not ours to change).
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from config.settings import Settings
from stream.errors import BrokerError


def external_topics(settings: Settings) -> list[str]:
    return [
        settings.topic_transactions,
        settings.topic_labels,
        settings.topic_alerts,
        settings.topic_dlq,
        settings.topic_scores,
    ]


def ensure_topics(settings: Settings, timeout: float = 30.0) -> int:
    """Create missing topics; return the partition count every Kuntur topic must use."""
    admin = AdminClient(dict[str, str | int | float | bool](settings.kafka_client_config()))
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception as exc:  # KafkaException carries librdkafka's reason
        raise BrokerError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    existing = {name: len(t.partitions) for name, t in meta.topics.items() if not t.error}
    partitions = existing.get(settings.topic_transactions, settings.partitions)
    missing = [t for t in external_topics(settings) if t not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=settings.replication_factor) for t in missing],
            operation_timeout=timeout,
        )
        for topic, fut in futures.items():
            try:
                fut.result(timeout)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise BrokerError(f"cannot create topic {topic!r}: {exc}") from exc
    return partitions
