"""The offset guard's reader on a real broker: the messages of one partition between two
offsets, read without joining the group (stream/offsets.py)."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition

from config.settings import Settings
from stream.kafka.admin import ensure_topics
from stream.offsets import GapReader


def test_reads_exactly_the_offsets_asked_for_with_keys_values_and_times(settings: Settings):
    ensure_topics(settings)
    topic = settings.topic_transactions
    producer = Producer(settings.kafka_client_config())
    for i in range(10):
        producer.produce(topic, key=b"acc-1", value=f"m{i}".encode(), partition=1, timestamp=1_700_000_000_000 + i)
    assert producer.flush(30) == 0
    reader = GapReader(settings)
    try:
        assert reader.start_offset(topic, 1) == 0  # nothing committed: the log's start
        middle = reader.read(topic, 1, 3, 7)
        assert [(m.offset, m.value) for m in middle] == [(o, f"m{o}".encode()) for o in range(3, 7)]
        assert {(m.key, m.topic, m.partition) for m in middle} == {(b"acc-1", topic, 1)}
        assert middle[0].timestamp == 1_700_000_000.003
        # a range running past the end: what exists, at once; an empty partition: nothing
        assert [m.offset for m in reader.read(topic, 1, 8, 50)] == [8, 9]
        assert reader.read(topic, 0, 0, 5) == []
        # what the worker's group committed (the reader itself never commits)
        group = Consumer({**settings.kafka_client_config(), "group.id": settings.app_id})
        group.commit(offsets=[TopicPartition(topic, 1, 6)], asynchronous=False)
        group.close()
        assert reader.start_offset(topic, 1) == 6
    finally:
        reader.close()
