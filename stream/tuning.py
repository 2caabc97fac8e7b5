"""Faust tuning shared by every Kuntur-shaped app (the worker and the bench's passthrough).

Faust hard-codes ``fetch_max_wait_ms=1500`` for its aiokafka consumer: an idle-ish
partition answers a fetch only after up to 1.5 s, which is added to every hop of a
multi-stage pipeline. We cap the wait (``consumer_fetch_max_wait_ms`` setting); on the
embedded broker, whose high watermarks lag, this is what keeps produce→alert latency
in milliseconds instead of seconds.

:func:`app_options` holds the consumer/producer/group settings, so that the benchmark's
passthrough ceiling runs with exactly the tuning of the real pipeline.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from config.settings import Settings

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_fetch_max_wait_ms = 1500

#: Producer linger (s): measured on Tansu, 0.01 s doubles a passthrough's rate vs 0.
PRODUCER_LINGER_S = 0.01
#: Largest record batch per partition (bytes). Faust's default, 16 KiB, makes a send wait
#: for the previous batch to be delivered as soon as ~30 state records are queued for one
#: changelog partition, or whenever a batched internal message is larger than that.
PRODUCER_MAX_BATCH_BYTES = 1024 * 1024


def set_fetch_max_wait(ms: int) -> None:
    """Fetch wait for every Faust consumer created after this call (process-wide)."""
    global _fetch_max_wait_ms
    _fetch_max_wait_ms = int(ms)


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    consumer._fetch_max_wait_ms = _fetch_max_wait_ms  # read when the consumer starts its fetcher
    return consumer


faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]


def _deliver_without_wait_first() -> bool:
    """Patch Faust's consumer loop to hand each fetched message straight to the streams.

    ``Consumer._drain_messages`` delivers every message through ``wait_first(callback,
    suspend_flow.wait())``: two tasks, an ``asyncio.wait`` and a cancellation per
    message, about a sixth of a worker's CPU at 1,000 tx/s. The guard exists so that a
    rebalance (which sets ``suspend_flow``) can interrupt a delivery blocked on a full
    stream buffer; the patched loop keeps that path whenever the flow is suspended and
    awaits the callback directly otherwise. Returns False (and leaves Faust untouched)
    if this Faust version's loop does not have the expected shape.
    """
    from faust.transport import consumer as faust_consumer

    original = faust_consumer.Consumer._drain_messages
    if getattr(original, "_kuntur_patched", False):
        return True
    source = inspect.getsource(original)
    guarded = "await self.wait_first(\n{i}    callback(message), self.suspend_flow.wait()\n{i})"
    indent = next((" " * n for n in range(40, 0, -1) if guarded.format(i=" " * n) in source), None)
    if indent is None or source.count(guarded.format(i=indent)) != 1:
        return False
    direct = (
        "if self.suspend_flow.is_set():\n{i}    "
        + guarded.replace("\n{i}", "\n{i}    ")
        + "\n{i}else:\n{i}    await callback(message)"
    )
    source = source.replace(guarded.format(i=indent), direct.format(i=indent))
    namespace: dict[str, Any] = {}
    code = compile(textwrap.dedent(source), faust_consumer.__file__ or "faust", "exec")
    exec(code, faust_consumer.__dict__, namespace)  # noqa: S102 - Faust's own source, one guarded edit
    patched = namespace["_drain_messages"]
    patched._kuntur_patched = True
    faust_consumer.Consumer._drain_messages = patched
    return True


DIRECT_DELIVERY = _deliver_without_wait_first()


def freeze_heap() -> int:
    """Exclude everything alive now (modules, classes, Faust's services) from cyclic GC.

    A full collection otherwise rescans the ~180k objects a worker holds after start-up:
    a measured 90-110 ms pause every 15-20 s at 1,000 tx/s, which alone breaks a 100 ms
    p99. Frozen objects are still freed by reference counting; returns how many froze.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def app_options(settings: Settings) -> dict[str, Any]:
    """``faust.App`` keyword arguments for consumer, producer and group behaviour.

    Also applies the fetch-wait cap (process-wide), so call it before the app starts.
    """
    set_fetch_max_wait(settings.consumer_fetch_max_wait_ms)
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
        "producer_linger": PRODUCER_LINGER_S,
        "producer_max_batch_size": PRODUCER_MAX_BATCH_BYTES,
    }


#: Most events an agent takes in one batch.
BATCH_MAX = 1000
#: Longest the first event of a batch waits for more to arrive (seconds).
BATCH_LINGER_S = 0.002


async def batches(stream: Any, max_events: int = BATCH_MAX, linger: float = BATCH_LINGER_S) -> AsyncIterator[list[Any]]:
    """Iterate a Faust stream as lists of events.

    A batch closes when it holds ``max_events``, or when the stream's buffer is empty
    and its first event has waited ``linger``. Faust hands fetched messages to the
    stream one at a time, interleaved with the agent, so "whatever is buffered right
    now" is usually one or two events; lingering a couple of milliseconds lets the rest
    of a fetch arrive, so per-batch work (sends, changelog writes) is shared by many
    events, at the cost of at most ``linger`` of latency per stage.

    Events are acknowledged only after the caller has processed their batch and asked
    for the next one, so offsets are never committed for unprocessed events.
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
        yield batch
        for done in batch:
            await stream.ack(done)
        batch = []
