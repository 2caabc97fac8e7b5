"""Consumer tuning Faust does not expose as a setting.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its aiokafka consumer: an idle-ish
partition answers a fetch only after up to 1.5 s, which is added to every hop of a
multi-stage pipeline. We cap the wait (``consumer_fetch_max_wait_ms`` setting); on the
embedded broker, whose high watermarks lag, this is what keeps produce→alert latency
in milliseconds instead of seconds.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_fetch_max_wait_ms = 1500


def set_fetch_max_wait(ms: int) -> None:
    """Fetch wait for every Faust consumer created after this call (process-wide)."""
    global _fetch_max_wait_ms
    _fetch_max_wait_ms = int(ms)


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    consumer._fetch_max_wait_ms = _fetch_max_wait_ms  # read when the consumer starts its fetcher
    return consumer


faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
