"""The worker's tables: per-entity states as compact bytes, changelogged, expiring."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust
from faust.serializers.codecs import dumps as dumps_key

log = logging.getLogger("kuntur")

#: Key of the tombstone that closes each changelog partition on shutdown (never a real entity).
SEAL_KEY = "__kuntur_seal__"


def log_failed_send(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("a message could not be produced: %r", fut.exception())


class ExpiringTable(faust.Table):
    """A table of compact entity states whose idle entities can be deleted.

    Deleting a key outside an event needs its changelog partition; Faust only knows it
    while the writing event is current, so we record it at write and at recovery.
    ``decode`` turns a stored value into a state object ``is_expired`` understands.
    """

    def __init__(
        self, *args: Any, decode: Callable[[bytes], Any], is_expired: Callable[[Any, float, float], bool], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.decode = decode
        self.is_expired = is_expired
        self.key_partitions: dict[Any, int] = {}

    def on_key_set(self, key: Any, value: Any) -> None:
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        if fut.message.partition is not None:
            self.key_partitions[key] = fut.message.partition
        self._sensor_on_set(self, key, value)

    @property
    def states(self) -> dict[Any, Any]:
        """The in-memory store's dict: agents read and update it per event, and write each
        key's changelog record once per batch (:meth:`write_changelog`)."""
        states: dict[Any, Any] = self.data.data  # type: ignore[assignment]  # memory:// keeps a plain dict
        return states

    async def write_changelog(self, written: dict[Any, int]) -> None:
        """Send the current value of each key written during a batch to its changelog partition.

        Straight to the producer: the memory store keeps no persisted offsets, so Faust's
        per-record bookkeeping (future message, sensors, offset callback) would be pure cost.
        """
        if not written:
            return
        states, topic = self.states, self.changelog_topic.get_topic_name()
        send: Any = self.app.producer.send  # started with the app (tables need it)
        for key, partition in written.items():
            fut = await send(topic, dumps_key("json", key), states[key], partition, None, None)
            fut.add_done_callback(log_failed_send)
            self.key_partitions[key] = partition

    def apply_changelog_batch(self, batch: Any) -> None:
        events = list(batch)
        for event in events:
            if event.value is not None:
                self.key_partitions[event.key] = event.message.partition
        super().apply_changelog_batch(events)

    def expire(self, now: float, ttl: float) -> int:
        """Delete entities idle for longer than ``ttl`` of event time; returns how many."""
        gone = 0
        for key, raw in list(self.data.items()):
            if not raw or not self.is_expired(self.decode(raw), now, ttl):
                continue
            partition = self.key_partitions.pop(key, None)
            if partition is not None:
                self.send_changelog(partition, key, None, value_serializer="raw")
                self.data.pop(key, None)
                gone += 1
        return gone

    async def seal(self, partitions: int) -> None:
        """End every changelog partition with a batch of its own holding one tombstone.

        Tansu (the embedded broker) reports a partition's high watermark as the last
        *batch's* base offset + 1, so Faust's recovery, which reads up to the high
        watermark, would skip the rest of the last batch and restore stale state. A
        final one-record batch makes the reported watermark exact. Harmless on Kafka.
        """
        for partition in range(partitions):
            await self.changelog_topic.send(
                key=SEAL_KEY, value=None, partition=partition, key_serializer="json", value_serializer="raw"
            )


def expiring_table(
    app: faust.App, name: str, partitions: int, decode: Callable[[bytes], Any], is_expired: Callable[..., bool]
) -> ExpiringTable:
    """A table of ``str`` keys (json codec) and compact ``bytes`` states (raw codec)."""
    table = ExpiringTable(
        app,
        decode=decode,
        is_expired=is_expired,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=str,
        value_type=bytes,
    )
    app.tables.add(table)
    return table
