"""Create the topics Kuntur reads and writes, all with one partition count.

Faust co-partitions a table's changelog with its source topic, so every topic Kuntur
touches must have the same number of partitions. If the transactions topic already
exists, its partition count wins (a bank's existing topic is not ours to change).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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


def _admin_config(settings: Settings) -> dict[str, Any]:
    return {**settings.kafka_client_config(), "logger": _quiet}


def connect_timeout(settings: Settings) -> float:
    """How long a command waits for a first answer from Kafka: ``kafka_connect_timeout_s``,
    or ``broker_unreachable_exit_s`` when that is shorter (and not 0, "never")."""
    limits = [settings.kafka_connect_timeout_s, settings.broker_unreachable_exit_s]
    return max(0.5, min(t for t in limits if t > 0) if any(t > 0 for t in limits) else 10.0)


def unreachable(settings: Settings, waited: float) -> BrokerUnreachable:
    """The one error every command gives when nothing answers at the bootstrap address."""
    return BrokerUnreachable(
        f"cannot reach Kafka at {settings.kafka_bootstrap} (tried for {waited:.0f} s; kafka_connect_timeout_s). "
        "Is a broker running there? `kuntur broker` starts one; --bootstrap HOST:PORT points elsewhere"
    )


class _Collected(logging.Handler):
    """librdkafka's log lines and error callbacks of one client, kept instead of printed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.logger = logging.Logger("kuntur.admin-client.probe")
        self.logger.addHandler(self)
        self.logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())

    def add(self, error: Any) -> None:
        self.texts.append(str(error))


def refused(settings: Settings, reason: str) -> BrokerError:
    """The error for a broker that answers but refuses us (credentials, TLS)."""
    user = settings.kafka_sasl_username or "(none)"
    return BrokerError(
        f"Kafka at {settings.kafka_bootstrap} refused the connection: {reason} "
        f"(protocol {settings.kafka_security_protocol}, mechanism {settings.kafka_sasl_mechanism or '-'}, "
        f"user {user}). Check KUNTUR_KAFKA_SASL_USERNAME/PASSWORD and KUNTUR_KAFKA_SSL_CAFILE"
    )


def metadata(settings: Settings, timeout: float | None = None) -> Any:
    """The cluster's metadata (all topics), or within ``timeout`` (default :func:`connect_timeout`)
    :class:`BrokerUnreachable` when nothing answers and :class:`BrokerError` naming the reason
    when the broker refuses the credentials or the TLS handshake. The client's own retry
    lines are kept quiet."""
    wait = connect_timeout(settings) if timeout is None else timeout
    errors = _Collected()
    config: dict[str, Any] = {**_admin_config(settings), "logger": errors.logger, "error_cb": errors.add}
    admin = AdminClient(config)
    try:
        meta = admin.list_topics(timeout=wait)
    except Exception as exc:  # KafkaException: transport failure, timeout, authentication
        admin.poll(0)  # serve the error callbacks
        for text in errors.texts:
            low = text.lower()
            if "authentication" in low:
                raise refused(settings, "SASL authentication failed") from exc
            if "ssl handshake failed" in low or "certificate verify failed" in low:
                raise refused(settings, "the TLS handshake failed (certificate or host name not trusted)") from exc
        raise unreachable(settings, wait) from exc
    if not meta.brokers:
        raise unreachable(settings, wait)
    return meta


def check_reachable(settings: Settings, timeout: float | None = None) -> None:
    """Fail fast, with one readable line, when no broker answers (before a command does work)."""
    metadata(settings, timeout)


def ensure_topics(settings: Settings, timeout: float = 30.0, reach_timeout: float | None = None) -> int:
    """Create missing topics; return the partition count every Kuntur topic must use.

    No broker answering within ``reach_timeout`` (default :func:`connect_timeout`) raises
    :class:`BrokerUnreachable`."""
    meta = metadata(settings, reach_timeout)
    admin = AdminClient(_admin_config(settings))
    existing = {name: len(t.partitions) for name, t in meta.topics.items() if not t.error}
    partitions = existing.get(settings.topic_transactions, settings.partitions)
    _create(admin, settings, {t: {} for t in external_topics(settings) if t not in existing}, partitions, timeout)
    return partitions


def ensure_internal_topics(
    settings: Settings, topics: Mapping[str, Mapping[str, str]], partitions: int, timeout: float = 30.0
) -> list[str]:
    """Create the worker's own topics (name -> topic configs) that do not exist yet: the
    internal and changelog topics before it subscribes (a topic Faust declares only while
    its consumer is already subscribing is ignored as missing until the next metadata
    refresh, minutes, and nothing flows through it) and the shared model's. Returns the
    names created."""
    admin = AdminClient(_admin_config(settings))
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = {name: config for name, config in topics.items() if name not in existing}
    _create(admin, settings, missing, partitions, timeout)
    return sorted(missing)


def _create(
    admin: AdminClient, settings: Settings, topics: Mapping[str, Mapping[str, str]], partitions: int, timeout: float
) -> None:
    if not topics:
        return
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=partitions, replication_factor=settings.replication_factor,
                     config=dict(config))
            for name, config in topics.items()
        ],
        operation_timeout=timeout,
    )
    for topic, fut in futures.items():
        try:
            fut.result(timeout)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"cannot create topic {topic!r}: {exc}") from exc
