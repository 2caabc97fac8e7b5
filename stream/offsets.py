"""Every offset of an agent's input processed, whatever Faust's rebalance does.

Faust (faust-streaming 0.15.3) can leave a message of a partition undelivered across a
rebalance and still commit past it, so it is never processed, not even after a restart.
Measured on Apache Kafka with two workers joining over a backlog on a busy machine: 2 to
1,172 of 3,000 transactions never scored in 5 of 16 runs, every one a message of an
internal topic or of ``transactions`` that the agent never received. Three of Faust's
paths drop a fetched message without processing it: the stream skips a message whose
generation or flow state changed while it was queued (``StreamIterator._prepare_event``),
the fetch loop drops a re-fetched offset below a read offset left stale by the rebalance
(``Consumer._drain_messages``), and the commit rule lets one missing offset at the head
of the acknowledged ones pass (``Consumer._new_offset`` tests ``> 1``).

The guard does not depend on which: it remembers, per input partition this worker holds,
the next offset it expects. An event past that offset means messages were skipped; the
guard reads them straight from Kafka (:class:`GapReader`) and hands them to the handler
before the event, in order. A
partition that leaves this worker is forgotten; its new owner starts from the committed
offset. Re-delivered offsets (below the expected one) are processed again: at least once.

Commits follow the ledger, not Faust's acknowledgement lists: for a partition an agent
guards, the offset committed is the ledger's next offset as of the last batch processed
in the current consumer generation (``stream.faust_patches``, patch 4), and nothing is
committed for it until a batch of that generation is. Faust's own bookkeeping also let
commits crawl one offset per commit interval after a rebalance (its gap ranges put
offsets into the acknowledged list twice), leaving hundreds of processed messages to be
processed again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from config.settings import Settings
from stream.agents import Message, message_of
from stream.faust_patches import PROCESSED_ATTR

log = logging.getLogger("kuntur")

#: Errors of a group's first offset query while its coordinator is being found or loaded.
COORDINATOR_WAIT = {
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}
#: Longest a gap's repair keeps trying to read its messages (broker busy or unreachable).
REPAIR_TIMEOUT_S = 30.0


class OffsetLedger:
    """Per partition: the next offset expected (every offset before it, since this
    ownership began, processed) and where the ownership began. Keys are opaque (Faust's
    ``TP`` in the worker)."""

    def __init__(self) -> None:
        self.next: dict[Hashable, int] = {}
        self.since: dict[Hashable, int] = {}

    def expects(self, key: Hashable) -> int | None:
        return self.next.get(key)

    def missing(self, key: Hashable, offset: int, start: int | None = None) -> range:
        """Offsets before ``offset`` that were never delivered: from the expected one, or
        from ``start`` (the committed offset) for the first event of an ownership.

        >>> ledger = OffsetLedger(); ledger.missing("p", 5, start=3)
        range(3, 5)
        >>> ledger.done("p", 5, start=3); ledger.missing("p", 6), ledger.missing("p", 9), ledger.missing("p", 2)
        (range(0, 0), range(6, 9), range(0, 0))
        """
        expected = self.next.get(key, start)
        if expected is None or offset <= expected:
            return range(0)
        return range(expected, offset)

    def done(self, key: Hashable, offset: int, start: int | None = None) -> None:
        """``offset`` processed (and every offset from ``start`` to it, for a first event)."""
        if key not in self.next:
            self.since[key] = start if start is not None and start <= offset else offset
        self.next[key] = max(self.next.get(key, 0), offset + 1)

    def keep(self, keys: set[Any]) -> None:
        """Forget the partitions not in ``keys`` (no longer this worker's)."""
        for table in (self.next, self.since):
            for key in [k for k in table if k not in keys]:
                del table[key]


class GapReader:
    """Reads the messages of one partition between two offsets, and the group's committed
    offset, without joining the group (a consumer of its own, with the worker's group id
    for the committed offsets but never subscribed nor committing; created when first needed)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: Any = None

    def _client(self) -> Any:
        if self._consumer is None:
            from stream.kafka.reader import unjoined_consumer

            self._consumer = unjoined_consumer(self.settings, self.settings.app_id)  # Faust's group id
        return self._consumer

    def start_offset(self, topic: str, partition: int) -> int:
        """Where the group resumes the partition: its committed offset, else the log's start."""
        client = self._client()
        deadline = time.monotonic() + 15.0
        while True:
            try:
                (committed,) = client.committed([TopicPartition(topic, partition)], timeout=10)
                break
            except KafkaException as exc:  # a group's coordinator is found on its first use
                if exc.args[0].code() not in COORDINATOR_WAIT or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if committed.offset >= 0:
            return int(committed.offset)
        low, _ = client.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return int(low)

    def read(
        self, topic: str, partition: int, start: int, end: int, timeout: float = REPAIR_TIMEOUT_S
    ) -> list[Message]:
        """The messages at offsets ``start`` .. ``end - 1`` (fewer if retention deleted some, or
        the range holds transaction markers). Raises TimeoutError if the broker does not answer."""
        consumer = self._client()
        deadline = time.monotonic() + timeout
        consumer.assign([TopicPartition(topic, partition, start)])
        out: list[Message] = []
        try:
            while time.monotonic() < deadline:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)
                if high <= start:
                    return out
                for msg in consumer.consume(1000, 0.5):
                    if msg.error():
                        continue
                    offset = msg.offset()
                    if offset >= end:
                        return out
                    if offset >= start:
                        _, ms = msg.timestamp()
                        out.append(Message(msg.key(), msg.value(), topic, partition, offset, ms / 1000.0))
                next_offset = out[-1].offset + 1 if out else start
                if next_offset >= min(end, high):
                    return out
            raise TimeoutError(f"{topic}[{partition}] offsets {start}..{end - 1} not read within {timeout:.0f}s")
        finally:
            consumer.unassign()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class OffsetGuard:
    """The ledger applied to one agent's Faust stream (see the module's docstring)."""

    def __init__(self, app: Any, reader: GapReader, on_gap: Callable[[str, str, int], None] | None = None) -> None:
        self.app = app
        self.reader = reader
        #: called with (topic, outcome, count): outcome "repaired" (read back and processed) or "lost"
        self.on_gap = on_gap or (lambda topic, outcome, n: None)
        self.ledger = OffsetLedger()
        self.generation: int | None = None
        self._touched: set[Any] = set()

    async def admit(self, events: list[Any]) -> list[Message]:
        """The batch's messages, with any message skipped before each one read back and put first."""
        consumer = self.app.consumer
        assigned = consumer.assignment()
        generation = self.app.consumer_generation_id
        if generation != self.generation:
            if self.generation is not None and generation == self.generation + 1:
                self.ledger.keep(assigned)  # one rebalance: a partition still held was never another's
            else:
                self.ledger.keep(set())  # rebalances unseen: a partition held now may have moved and come back
            self.generation = generation
        out: list[Message] = []
        ledger = self.ledger
        for event in events:
            message = message_of(event)
            tp = event.message.tp
            if tp in assigned:
                start = None
                if ledger.expects(tp) is None:
                    start = await self._start(consumer, tp)
                gap = ledger.missing(tp, message.offset, start)
                if gap:
                    out.extend(await self._repair(tp, gap))
                ledger.done(tp, message.offset, start)
                self._touched.add(tp)
            out.append(message)
        return out

    def settle(self) -> None:
        """After the batch was processed: its partitions may commit up to the ledger's next offset."""
        consumer = self.app.consumer
        assigned = consumer.assignment()
        processed = processed_offsets(consumer)
        for tp in self._touched:
            if tp in assigned:
                processed[tp] = (self.generation, self.ledger.next[tp])
        self._touched.clear()

    async def _start(self, consumer: Any, tp: Any) -> int | None:
        """Where this ownership of ``tp`` begins: the committed offset Faust sought to, else
        (Faust's record is cleared during a rebalance) the group's, asked of the broker."""
        committed = consumer._committed_offset.get(tp)
        if committed is not None:
            return int(committed)
        try:
            return await asyncio.to_thread(self.reader.start_offset, tp.topic, tp.partition)
        except Exception as exc:  # unknown start: the first event starts the ledger (as before)
            log.warning("start offset of %s[%d] unknown (%r): not checked for a gap", tp.topic, tp.partition, exc)
            return None

    async def _repair(self, tp: Any, gap: range) -> list[Message]:
        try:
            messages = await asyncio.to_thread(self.reader.read, tp.topic, tp.partition, gap.start, gap.stop)
        except Exception as exc:
            log.error(
                "%s[%d]: offsets %d..%d were skipped by the consumer and could not be read back (%r): "
                "they are not processed", tp.topic, tp.partition, gap.start, gap.stop - 1, exc,
            )
            self.on_gap(tp.topic, "lost", len(gap))
            return []
        log.info(
            "%s[%d]: %d message(s) at offsets %d..%d skipped by the consumer in a rebalance: read back and processed",
            tp.topic, tp.partition, len(messages), gap.start, gap.stop - 1,
        )
        self.on_gap(tp.topic, "repaired", len(messages))
        return messages


def processed_offsets(consumer: Any) -> dict[Any, tuple[int | None, int]]:
    """The consumer's commit source for guarded partitions: TP -> (consumer generation,
    next offset; every offset before it processed). Read by Faust's ``Consumer._new_offset``
    as :mod:`stream.faust_patches` changes it."""
    processed: dict[Any, tuple[int | None, int]] | None = getattr(consumer, PROCESSED_ATTR, None)
    if processed is None:
        processed = {}
        setattr(consumer, PROCESSED_ATTR, processed)
    return processed
