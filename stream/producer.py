"""Sending from agents: straight to Faust's producer, raw bytes in."""

from __future__ import annotations

from typing import Any

import faust

from stream.tables import LOG_ONLY, SendFailures
from stream.wire import Outbox


class Emitter:
    """Sends straight to Faust's producer (raw bytes in, no per-message bookkeeping).

    Faust's ``Topic.send`` wraps every message in future/pending objects and sensor
    calls, and resolves the producer through ``app.maybe_start_producer()``, which yields
    to the event loop on every call; for the thousands of messages a second a worker
    emits that was a large share of its CPU. Offsets are committed only after the
    producer is flushed, as before.
    """

    def __init__(self, app: faust.App, failures: SendFailures = LOG_ONLY) -> None:
        self.app = app
        self.failures = failures
        self._send: Any = None

    async def producer_send(self) -> Any:
        if self._send is None:
            self._send = (await self.app.maybe_start_producer()).send
        return self._send

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        send = self._send or await self.producer_send()
        fut = await send(topic, key, value, partition, None, None)
        fut.add_done_callback(self.failures.for_topic(topic))

    async def send_many(self, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
        if not messages:
            return
        send = self._send or await self.producer_send()
        failed = self.failures.for_topic(topic)
        for key, value in messages:
            fut = await send(topic, key, value, None, None, None)
            fut.add_done_callback(failed)

    async def send_batches(self, topic: str, outbox: Outbox) -> None:
        """One message per destination partition (more only if a batch is very large)."""
        for partition, value in outbox.messages():
            await self.send(topic, None, value, partition)
