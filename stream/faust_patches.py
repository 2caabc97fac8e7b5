"""The four places where Kuntur changes Faust's behaviour, applied by :func:`install`.

All are written against **faust-streaming 0.15.3**. Each patch records the SHA-256 of
the upstream function's source it was written against; ``tests/unit/test_faust_patches.py``
fails when an upgrade changes that function, so whoever upgrades Faust re-reads the patch
instead of finding out in production. :func:`install` is called by the worker (and the
bench's passthrough) before the app is built; importing this module changes nothing.

1. ``AIOKafkaConsumerThread._create_worker_consumer`` hard-codes ``fetch_max_wait_ms=1500``:
   an idle-ish partition answers a fetch only after up to 1.5 s, added to every hop of a
   multi-stage pipeline. We wrap it and set the configured wait on the consumer it builds
   (``consumer_fetch_max_wait_ms``; read when the consumer starts its fetcher).
2. ``Consumer._drain_messages`` delivers every message through ``wait_first(callback,
   suspend_flow.wait())``: two tasks, an ``asyncio.wait`` and a cancellation per message,
   about a sixth of a worker's CPU at 1,000 tx/s. The guard exists so that a rebalance
   (which sets ``suspend_flow``) can interrupt a delivery blocked on a full stream buffer;
   the patched loop keeps that path whenever the flow is suspended and awaits the callback
   directly otherwise. The patch is one guarded edit of Faust's own source; if the source
   does not have the expected shape it is not applied (and :func:`install` says so).

   **Off in the worker** (setting ``consumer_direct_delivery``, default off). It saves a
   quarter of the CPU per message (docs/performance.md), but a worker restarted with a
   backlog can stall for good on some partitions with it: before the offset guard
   existed, 300 to 600 of 1,500 never scored in the restart test; with the guard, the
   SIGKILL-and-restart test (tests/integration/test_faults.py) passed 3 times in a row and
   then stalled in a full suite run (the restarted worker scored nothing more after its
   first checkpoint). A delivery that blocks on a full buffer *before* the flow is
   suspended is not interrupted by the recovery's seek. Correctness first; the bench
   measures both (``bench.transports``, ``--set consumer_direct_delivery=true``).
3. ``AIOKafkaConsumerThread._commit`` keeps only the offsets of partitions still assigned;
   in a rebalance that can leave none, and aiokafka 0.14's ``commit({})`` raises
   ``ValueError({})``, which Faust treats as fatal: the consumer thread crashed and the
   worker with it (seen when a third worker joined, tests/integration/test_faults_cluster.py).
   With nothing of this worker's left to commit, the wrapper commits nothing and says so.
4. ``Consumer._new_offset`` computes the offset to commit from the acknowledged offsets,
   and across a rebalance that bookkeeping commits past messages never processed (a
   single missing offset at the head passes its ``> 1`` test) or crawls one offset per
   commit interval (its gap ranges put offsets in the list twice). For a partition an
   agent guards (:mod:`stream.offsets`), the wrapper commits the guard's own figure —
   every offset before it processed — and clears Faust's lists for it; other partitions
   keep Faust's rule.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

#: faust-streaming version the patches were written against.
FAUST_VERSION = "0.15.3"


@dataclass(frozen=True)
class Patched:
    """One upstream function we change, and the source hash we wrote the change against."""

    owner: type
    name: str
    sha256: str

    def source(self) -> str:
        return inspect.getsource(getattr(self.owner, self.name))

    def source_sha256(self) -> str:
        return hashlib.sha256(self.source().encode()).hexdigest()


FETCH_WAIT = Patched(
    faust_aiokafka.AIOKafkaConsumerThread,
    "_create_worker_consumer",
    "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7",
)
DIRECT_DELIVERY = Patched(
    faust_consumer.Consumer,
    "_drain_messages",
    "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
)
EMPTY_COMMIT = Patched(
    faust_aiokafka.AIOKafkaConsumerThread,
    "_commit",
    "932852ce7a23f658804273d0296de6affaa7d21c19311c279712c2fae91a3b03",
)
GUARDED_COMMIT = Patched(
    faust_consumer.Consumer,
    "_new_offset",
    "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0",
)
PATCHES = (FETCH_WAIT, DIRECT_DELIVERY, EMPTY_COMMIT, GUARDED_COMMIT)

_state: dict[str, Any] = {"fetch_max_wait_ms": 1500, "originals": {}}


def install(fetch_max_wait_ms: int, direct_delivery: bool = False) -> dict[str, bool]:
    """Apply the fetch-wait patch and, if asked, the direct-delivery one (idempotent);
    returns which are in force."""
    _state["fetch_max_wait_ms"] = int(fetch_max_wait_ms)
    direct = _install_direct_delivery() if direct_delivery else _is_patched(faust_consumer.Consumer, DIRECT_DELIVERY)
    return {
        "fetch_wait": _install_fetch_wait(),
        "direct_delivery": direct,
        "empty_commit": _install_empty_commit(),
        "guarded_commit": _install_guarded_commit(),
    }


def _is_patched(owner: type, patch: Patched) -> bool:
    return bool(getattr(getattr(owner, patch.name), "_kuntur_patched", False))


def _install_fetch_wait() -> bool:
    cls = faust_aiokafka.AIOKafkaConsumerThread
    original = _state["originals"].setdefault(FETCH_WAIT.name, getattr(cls, FETCH_WAIT.name))

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = _state["fetch_max_wait_ms"]  # read when the fetcher starts
        return consumer

    _create_worker_consumer._kuntur_patched = True  # type: ignore[attr-defined]
    setattr(cls, FETCH_WAIT.name, _create_worker_consumer)
    return True


def _install_empty_commit() -> bool:
    cls = faust_aiokafka.AIOKafkaConsumerThread
    original = _state["originals"].setdefault(EMPTY_COMMIT.name, getattr(cls, EMPTY_COMMIT.name))

    async def _commit(self: Any, offsets: Any) -> bool:
        assigned = self.assignment()
        if not any(tp in assigned for tp in offsets):
            return False  # revoked in a rebalance: nothing of ours to commit (aiokafka refuses an empty commit)
        return bool(await original(self, offsets))

    _commit._kuntur_patched = True  # type: ignore[attr-defined]
    setattr(cls, EMPTY_COMMIT.name, _commit)
    return True


#: Attribute of Faust's consumer holding, per guarded partition, (consumer generation, next
#: offset with every offset before it processed); written by :class:`stream.offsets.OffsetGuard`.
PROCESSED_ATTR = "_kuntur_processed"


def _install_guarded_commit() -> bool:
    cls = faust_consumer.Consumer
    original = _state["originals"].setdefault(GUARDED_COMMIT.name, getattr(cls, GUARDED_COMMIT.name))

    def _new_offset(self: Any, tp: Any) -> int | None:
        processed = getattr(self, PROCESSED_ATTR, None)
        entry = processed.get(tp) if processed else None
        if entry is None:
            return original(self, tp)  # type: ignore[no-any-return]
        self._acked.pop(tp, None)  # the guard's ledger stands in for Faust's lists
        self._acked_index.pop(tp, None)
        self._gap.pop(tp, None)
        generation, next_offset = entry
        if generation != self.app.consumer_generation_id:
            return None  # no batch processed since the rebalance: nothing known to commit
        return int(next_offset)

    _new_offset._kuntur_patched = True  # type: ignore[attr-defined]
    setattr(cls, GUARDED_COMMIT.name, _new_offset)
    return True


def _install_direct_delivery() -> bool:
    cls = faust_consumer.Consumer
    current = getattr(cls, DIRECT_DELIVERY.name)
    if getattr(current, "_kuntur_patched", False):
        return True
    source = inspect.getsource(current)
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
    patched = namespace[DIRECT_DELIVERY.name]
    patched._kuntur_patched = True
    setattr(cls, DIRECT_DELIVERY.name, patched)
    return True
