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


class SendFailures:
    """Done-callbacks for produced messages: a message the producer could not deliver is
    logged and counted under its topic (``kuntur_send_failures_total``), never as sent."""

    def __init__(self, counter: Any | None = None) -> None:
        self.counter = counter
        self._callbacks: dict[str, Callable[[Any], None]] = {}

    def for_topic(self, topic: str) -> Callable[[Any], None]:
        callback = self._callbacks.get(topic)
        if callback is None:
            child = self.counter.labels(topic=topic) if self.counter is not None else None

            def callback(fut: Any) -> None:
                if fut.cancelled() or fut.exception() is None:
                    return
                log.error("a message to %s could not be produced: %r", topic, fut.exception())
                if child is not None:
                    child.inc()

            self._callbacks[topic] = callback
        return callback


#: Log-only callbacks, for tables and emitters built without metrics.
LOG_ONLY = SendFailures()


class ChangelogTable(faust.Table):
    """A table of ``bytes`` values that agents update in place and write to the changelog
    once per batch (:meth:`write_changelog`).

    Writing a key outside an event needs its changelog partition; Faust only knows it
    while the writing event is current, so we record it at write and at recovery. The
    memory store's own key → partition map is kept too: after a rebalance Faust drops the
    keys of partitions this worker no longer holds, so a moved partition's state lives on
    its new owner only.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_partitions: dict[Any, int] = {}
        #: counts changelog records the producer could not deliver (set by the app's wiring)
        self.send_failures: SendFailures = LOG_ONLY

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
        """Send the current value of each key written during a batch to its changelog
        partition — the partition recorded for the key if it has one, else the one given —
        and a tombstone for each key no longer in the table.

        Straight to the producer: the memory store keeps no persisted offsets, so Faust's
        per-record bookkeeping (future message, sensors, offset callback) would be pure cost.
        """
        if not written:
            return
        states, topic = self.states, self.changelog_topic.get_topic_name()
        send: Any = self.app.producer.send  # started with the app (tables need it)
        failed = self.send_failures.for_topic(topic)
        known = self.key_partitions
        store_partitions: dict[Any, int] = self.data._key_partition  # type: ignore[attr-defined]  # memory store
        for key, hint in written.items():
            partition = known.get(key, hint)
            value = states.get(key)
            fut = await send(topic, dumps_key("json", key), value, partition, None, None)
            fut.add_done_callback(failed)
            if value is None:
                known.pop(key, None)
                store_partitions.pop(key, None)
            else:
                known[key] = store_partitions[key] = partition

    def apply_changelog_batch(self, batch: Any) -> None:
        events = list(batch)
        for event in events:
            if event.value is not None:
                self.key_partitions[event.key] = event.message.partition
        super().apply_changelog_batch(events)

    def forget_revoked(self) -> None:
        """Drop the recorded partitions of keys the store no longer holds (after recovery)."""
        states = self.states
        for key in [k for k in self.key_partitions if k not in states]:
            del self.key_partitions[key]

    async def seal(self, partitions: int) -> None:
        """End every changelog partition with a batch of its own holding one tombstone.

        Tansu (the embedded broker) reports a partition's high watermark as the last
        *batch's* base offset + 1, so Faust's recovery, which reads up to the high
        watermark, would skip the rest of the last batch and restore stale state. A
        final one-record batch makes the reported watermark exact. Harmless on Kafka,
        where recovery reads to the true end whether or not the seal was written (a
        worker killed with SIGKILL writes none).
        """
        for partition in range(partitions):
            await self.changelog_topic.send(
                key=SEAL_KEY, value=None, partition=partition, key_serializer="json", value_serializer="raw"
            )


class ExpiringTable(ChangelogTable):
    """A table of compact entity states whose idle entities can be deleted.

    ``decode`` turns a stored value into a state object ``is_expired`` understands.
    """

    def __init__(
        self, *args: Any, decode: Callable[[bytes], Any], is_expired: Callable[[Any, float, float], bool], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.decode = decode
        self.is_expired = is_expired

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
                self.data._key_partition.pop(key, None)  # type: ignore[attr-defined]  # memory store
                gone += 1
        return gone


def expiring_table(
    app: faust.App, name: str, partitions: int, decode: Callable[[bytes], Any], is_expired: Callable[..., bool]
) -> ExpiringTable:
    """A table of ``str`` keys (json codec) and compact ``bytes`` states (raw codec)."""
    table = _add(app, ExpiringTable, name, partitions, decode=decode, is_expired=is_expired)
    assert isinstance(table, ExpiringTable)
    return table


def changelog_table(app: faust.App, name: str, partitions: int) -> ChangelogTable:
    """A table of ``str`` keys (json codec) and ``bytes`` values (raw codec) that only its
    owner's logic deletes from (the learning state: :mod:`models.pending`, deferred labels)."""
    return _add(app, ChangelogTable, name, partitions)


def _add(app: faust.App, cls: type[ChangelogTable], name: str, partitions: int, **extra: Any) -> ChangelogTable:
    table = cls(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=str,  # -> json codec
        value_type=bytes,  # -> raw codec: states are already compact bytes
        **extra,
    )
    app.tables.add(table)
    return table
