"""Read a whole topic without joining a consumer group.

Tools that only observe a topic (the demo's alert counter, ``kuntur alerts``, tests)
assign every partition directly: no group join, no rebalance wait, no committed offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from config.settings import Settings
from stream.kafka.admin import check_reachable

#: librdkafka logs every failed connection attempt; an unreachable broker is one error instead.
_quiet = logging.getLogger("kuntur.reader-client")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False


def unjoined_consumer(settings: Settings, group_id: str, **extra: Any) -> Consumer:
    """A consumer for assigned partitions: ``group_id`` only because librdkafka wants one
    (never joined, nothing committed), connection noise kept out of the logs."""
    return Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "logger": _quiet,
            **extra,
        }
    )


def topic_reader(
    settings: Settings,
    topic: str,
    from_beginning: bool = True,
    timeout: float | None = 30.0,
    on_wait: Callable[[], None] | None = None,
) -> Consumer:
    """A consumer assigned to every partition of ``topic``.

    Raises :class:`~stream.errors.BrokerUnreachable` at once when no broker answers
    (``kafka_connect_timeout_s``). Waits for the topic to exist: ``on_wait`` is called once
    if it does not yet; after ``timeout`` seconds (None: forever) :class:`TimeoutError`."""
    check_reachable(settings)
    consumer = unjoined_consumer(settings, "kuntur-reader")
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    while True:
        meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if meta is not None and not meta.error and meta.partitions:
            break
        if deadline is not None and time.monotonic() > deadline:
            consumer.close()
            raise TimeoutError(f"topic {topic!r} does not exist")
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        time.sleep(0.2)
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in sorted(meta.partitions)])
    return consumer
