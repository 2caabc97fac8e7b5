"""The offset guard: a message Faust skipped is read back and processed before the next one,
and commits follow what was processed (stream/offsets.py, faust_patches patch 4)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from faust.transport import consumer as faust_consumer
from faust.types import TP

from stream import faust_patches
from stream.agents import Message
from stream.faust_patches import PROCESSED_ATTR
from stream.offsets import OffsetGuard, OffsetLedger

T0, T1 = TP("tx", 0), TP("tx", 1)


def test_ledger_first_event_at_the_committed_offset_has_no_gap_one_past_it_has():
    ledger = OffsetLedger()
    assert not ledger.missing(T0, 10, start=10)
    assert ledger.missing(T1, 12, start=10) == range(10, 12)


def test_ledger_a_skipped_offset_is_missing_a_redelivered_one_is_not():
    ledger = OffsetLedger()
    ledger.done(T0, 10, start=10)
    ledger.done(T0, 11)
    assert ledger.missing(T0, 14) == range(12, 14)
    ledger.done(T0, 14)
    # re-delivered after a seek back to the committed offset: processed again, nothing missing,
    # and the expectation does not move back
    assert not ledger.missing(T0, 11)
    ledger.done(T0, 11)
    assert ledger.expects(T0) == 15


def test_ledger_forgets_partitions_that_left_the_worker():
    ledger = OffsetLedger()
    ledger.done(T0, 5, start=0)
    ledger.done(T1, 7, start=0)
    ledger.keep({T1})
    assert ledger.expects(T0) is None and ledger.expects(T1) == 8
    # back later: its new start is the committed offset, whatever this worker saw before
    assert ledger.missing(T0, 40, start=40) == range(0)


class Log:
    """A partition's messages, as the gap reader would read them from Kafka."""

    def __init__(self, topic: str, n: int) -> None:
        self.messages = {o: Message(b"k", f"v{o}".encode(), topic, 0, o, 1.0) for o in range(n)}
        self.reads: list[tuple[int, int]] = []

    def start_offset(self, topic: str, partition: int) -> int:
        return 0

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Message]:
        self.reads.append((start, end))
        return [self.messages[o] for o in range(start, end) if o in self.messages]


def fake_app(assigned: set[TP], committed: dict[TP, int | None], generation: int = 1) -> SimpleNamespace:
    consumer = SimpleNamespace(assignment=lambda: assigned, _committed_offset=defaultdict(lambda: None, committed))
    return SimpleNamespace(consumer=consumer, consumer_generation_id=generation)


def event(tp: TP, offset: int) -> SimpleNamespace:
    message = SimpleNamespace(tp=tp, key=b"k", topic=tp.topic, partition=tp.partition, offset=offset, timestamp=1.0)
    return SimpleNamespace(message=message, value=f"v{offset}".encode())


def test_guard_reads_back_what_faust_skipped_in_order_and_commits_what_was_processed():
    log = Log("tx", 20)
    app = fake_app({T0}, {T0: 3})
    guard = OffsetGuard(app, log, on_gap=lambda topic, outcome, n: gaps.append((topic, outcome, n)))
    gaps: list[tuple[str, str, int]] = []

    batch = asyncio.run(guard.admit([event(T0, 3), event(T0, 4), event(T0, 7), event(T0, 8)]))
    assert [m.offset for m in batch] == [3, 4, 5, 6, 7, 8]
    assert [m.value for m in batch] == [f"v{o}".encode() for o in range(3, 9)]
    assert log.reads == [(5, 7)] and gaps == [("tx", "repaired", 2)]
    guard.settle()
    assert getattr(app.consumer, PROCESSED_ATTR) == {T0: (1, 9)}

    # the first event of an ownership past the committed offset: the head was skipped
    app.consumer.assignment = lambda: {T0, T1}
    app.consumer._committed_offset[T1] = 2
    batch = asyncio.run(guard.admit([event(T1, 5)]))
    assert [m.offset for m in batch] == [2, 3, 4, 5]


def test_guard_leaves_partitions_it_no_longer_holds_alone():
    log = Log("tx", 20)
    app = fake_app({T1}, {T0: 3, T1: 0})
    guard = OffsetGuard(app, log)
    # an event fetched before the rebalance, for a partition now another worker's
    batch = asyncio.run(guard.admit([event(T0, 9)]))
    assert [m.offset for m in batch] == [9] and log.reads == []
    guard.settle()
    assert getattr(app.consumer, PROCESSED_ATTR) == {}


def test_guard_that_cannot_read_back_counts_the_messages_lost_and_goes_on():
    class Down(Log):
        def read(self, topic: str, partition: int, start: int, end: int) -> list[Message]:
            raise TimeoutError("broker gone")

    gaps: list[tuple[str, str, int]] = []
    guard = OffsetGuard(fake_app({T0}, {T0: 0}), Down("tx", 10), on_gap=lambda *a: gaps.append(a))
    batch = asyncio.run(guard.admit([event(T0, 4)]))
    assert [m.offset for m in batch] == [4] and gaps == [("tx", "lost", 4)]


def test_patched_commit_offset_follows_the_guard_in_the_current_generation_only():
    faust_patches.install(20)
    calls: list[TP] = []

    def original(self, tp):
        calls.append(tp)
        return 99

    saved = faust_patches._state["originals"]["_new_offset"]
    faust_patches._state["originals"]["_new_offset"] = original
    try:
        faust_patches._install_guarded_commit()
        consumer = SimpleNamespace(
            app=SimpleNamespace(consumer_generation_id=4),
            _acked=defaultdict(list, {T0: [10, 12, 12]}),
            _acked_index=defaultdict(set, {T0: {10, 12}}),
            _gap=defaultdict(list),
        )
        new_offset = faust_consumer.Consumer._new_offset
        setattr(consumer, PROCESSED_ATTR, {T0: (4, 13)})
        assert new_offset(consumer, T0) == 13 and T0 not in consumer._acked  # Faust's lists cleared
        getattr(consumer, PROCESSED_ATTR)[T0] = (3, 20)  # from before the last rebalance
        assert new_offset(consumer, T0) is None
        assert new_offset(consumer, T1) == 99 and calls == [T1]  # not guarded: Faust's own rule
    finally:
        faust_patches._state["originals"]["_new_offset"] = saved
        faust_patches._install_guarded_commit()


def test_guard_after_rebalances_it_did_not_see_starts_every_partition_from_the_committed_offset():
    log = Log("tx", 100)
    app = fake_app({T0}, {T0: 3}, generation=1)
    guard = OffsetGuard(app, log)
    asyncio.run(guard.admit([event(T0, 3), event(T0, 4)]))
    # generation 2: T0 still held, Faust seeks back to the last commit: re-delivered, no gap read
    app.consumer_generation_id = 2
    assert [m.offset for m in asyncio.run(guard.admit([event(T0, 3)]))] == [3]
    # generations 3 and 4 passed unseen: T0 was another worker's, which committed 40
    app.consumer_generation_id = 4
    app.consumer._committed_offset[T0] = 40
    assert [m.offset for m in asyncio.run(guard.admit([event(T0, 40)]))] == [40]
    assert log.reads == []  # nothing of 5..39 read again: another worker processed it
