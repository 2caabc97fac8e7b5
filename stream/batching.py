"""Faust streams taken as batches, and the app options every Kuntur-shaped app shares."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

from config.settings import Settings
from stream.agents import Message, message_of
from stream.offsets import OffsetGuard

#: Largest record batch per partition (bytes). Faust's default, 16 KiB, makes a send wait
#: for the previous batch to be delivered as soon as ~30 state records are queued for one
#: changelog partition, or whenever a batched internal message is larger than that.
PRODUCER_MAX_BATCH_BYTES = 1024 * 1024

#: Most events an agent takes in one batch.
BATCH_MAX = 1000
#: Longest the first event of a batch waits for more to arrive (seconds).
BATCH_LINGER_S = 0.002


def app_options(settings: Settings) -> dict[str, Any]:
    """``faust.App`` keyword arguments for consumer, producer and group behaviour
    (shared with the bench's passthrough, so its ceiling runs with the same tuning)."""
    return {
        "broker": [f"kafka://{h}" for h in settings.kafka_bootstrap_servers],
        "store": "memory://",
        "consumer_auto_offset_reset": "earliest",
        # Short group timeouts: a worker processes within seconds of start (default ~30 s).
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
        "broker_rebalance_timeout": 10.0,
        "broker_commit_interval": 1.0,
        "stream_wait_empty": False,
        "producer_linger": settings.producer_linger_ms / 1000.0,
        "producer_max_batch_size": PRODUCER_MAX_BATCH_BYTES,
    }


def freeze_heap() -> int:
    """Exclude everything alive now (modules, classes, Faust's services) from cyclic GC.

    A full collection otherwise rescans the ~180k objects a worker holds after start-up:
    a measured 90-110 ms pause every 15-20 s at 1,000 tx/s, which alone breaks a 100 ms
    p99. Frozen objects are still freed by reference counting; returns how many froze.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def batches(
    stream: Any, guard: OffsetGuard | None = None, max_events: int = BATCH_MAX, linger: float = BATCH_LINGER_S
) -> AsyncIterator[list[Message]]:
    """Iterate a Faust stream as lists of messages.

    A batch closes when it holds ``max_events``, or when the stream's buffer is empty
    and its first event has waited ``linger``. Faust hands fetched messages to the
    stream one at a time, interleaved with the agent, so "whatever is buffered right
    now" is usually one or two events; lingering a couple of milliseconds lets the rest
    of a fetch arrive, so per-batch work (sends, changelog writes) is shared by many
    events, at the cost of at most ``linger`` of latency per stage.

    Events are acknowledged only after the caller has processed their batch and asked
    for the next one, so offsets are never committed for unprocessed events. With a
    ``guard`` (:mod:`stream.offsets`), messages Faust skipped in a rebalance are read back
    and come first in the batch, and every processed offset is reported to the consumer.
    """
    stream.enable_acks = False
    empty = stream.channel.queue.empty
    clock, sleep = time.monotonic, asyncio.sleep
    batch: list[Any] = []
    deadline = 0.0
    async for event in stream.events():
        if not batch:
            deadline = clock() + linger
        batch.append(event)
        if len(batch) < max_events and empty():
            remaining = deadline - clock()
            if remaining > 0:
                await sleep(remaining)
        if len(batch) < max_events and not empty():
            continue
        yield await guard.admit(batch) if guard is not None else [message_of(e) for e in batch]
        for done in batch:
            await stream.ack(done)
        if guard is not None:
            guard.settle()
        batch = []
