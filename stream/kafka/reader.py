"""Read a whole topic without joining a consumer group.

Tools that only observe a topic (the demo's alert counter, ``kuntur alerts``, tests)
assign every partition directly: no group join, no rebalance wait, no committed offsets.
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from config.settings import Settings


def topic_reader(settings: Settings, topic: str, from_beginning: bool = True, timeout: float = 30.0) -> Consumer:
    """A consumer assigned to every partition of ``topic`` (waits for the topic to exist)."""
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": "kuntur-reader",  # required by librdkafka; never joined or committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    deadline = time.monotonic() + timeout
    while True:
        meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if meta is not None and not meta.error and meta.partitions:
            break
        if time.monotonic() > deadline:
            consumer.close()
            raise TimeoutError(f"topic {topic!r} does not exist")
        time.sleep(0.2)
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in sorted(meta.partitions)])
    return consumer
