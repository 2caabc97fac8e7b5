"""Create the topics Kuntur reads and writes, all with one partition count.

Faust co-partitions a table's changelog with its source topic, so every topic Kuntur
touches must have the same number of partitions. If the transactions topic already
exists, its partition count wins (a bank's existing topic is not ours to change).
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from config.settings import Settings
from stream.errors import BrokerError, BrokerUnreachable

#: librdkafka logs each failed connection attempt; the one error raised below says it all.
_quiet = logging.getLogger("kuntur.admin-client")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False


def external_topics(settings: Settings) -> list[str]:
    return [
        settings.topic_transactions,
        settings.topic_labels,
        settings.topic_alerts,
        settings.topic_dlq,
        settings.topic_scores,
    ]


def ensure_topics(settings: Settings, timeout: float = 30.0, reach_timeout: float | None = None) -> int:
    """Create missing topics; return the partition count every Kuntur topic must use.

    No broker answering within ``reach_timeout`` (default ``broker_unreachable_exit_s``,
    at least ``timeout`` when that is 0) raises :class:`BrokerUnreachable`."""
    config: dict[str, Any] = {**settings.kafka_client_config(), "logger": _quiet}
    admin = AdminClient(config)
    wait = reach_timeout if reach_timeout is not None else (settings.broker_unreachable_exit_s or timeout)
    try:
        meta = admin.list_topics(timeout=wait)
    except Exception as exc:  # KafkaException carries librdkafka's reason
        raise BrokerUnreachable(
            f"no Kafka broker answered at {settings.kafka_bootstrap} within {wait:g}s "
            f"(broker_unreachable_exit_s): {exc}"
        ) from exc
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
