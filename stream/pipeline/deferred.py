"""Labels reported ahead of the scored stream, waiting for its event time to reach them.

Like the pending transactions (:mod:`models.pending`) they live in a key-value store of
bytes — a dict in ``kuntur evaluate``, a changelogged table's dict in the worker, on the
partition of the label's account — so a restart or a partition move does not lose them.
The key is ``<transaction_id>#<reported_at>#<is_fraud>``: a label re-delivered after a
crash or a partition move (at-least-once) is the same entry, two different reports of one
transaction are two. The value is ``[reported_at, seq, account_id, transaction_id,
is_fraud]`` as JSON. Labels are applied in (``reported_at``, ``seq``) order; ``seq`` is
this process's arrival counter, continued from the largest restored one.

>>> deferred = DeferredLabels()
>>> deferred.push(Label("t1", "a1", True, 50.0)), deferred.push(Label("t1", "a1", True, 50.0))
(True, False)
>>> [lab.transaction_id for lab in deferred.pop_until(60.0)]
['t1']
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping

import orjson

from stream.pipeline.validation import Label

__all__ = ["DeferredLabels"]


class DeferredLabels:
    """A min-heap on report time over a store of encoded labels; every key written or
    deleted is recorded when ``track_changes`` (:meth:`take_changes`)."""

    def __init__(self, store: MutableMapping[str, bytes] | None = None, *, track_changes: bool = False) -> None:
        self._store: MutableMapping[str, bytes] = {} if store is None else store
        self.track_changes = track_changes
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._changes: set[str] = set()
        self.reindex()

    def __len__(self) -> int:
        return len(self._store)

    @property
    def store(self) -> MutableMapping[str, bytes]:
        return self._store

    def take_changes(self) -> set[str]:
        changes, self._changes = self._changes, set()
        return changes

    def push(self, label: Label) -> bool:
        """Park ``label``; ``False`` if the very same label already waits (a re-delivery)."""
        key = f"{label.transaction_id}#{label.reported_at!r}#{int(label.is_fraud)}"
        if key in self._store:
            return False
        self._seq += 1
        self._store[key] = orjson.dumps(
            [label.reported_at, self._seq, label.account_id, label.transaction_id, label.is_fraud]
        )
        heapq.heappush(self._heap, (label.reported_at, self._seq, key))
        if self.track_changes:
            self._changes.add(key)
        return True

    def earliest(self) -> float | None:
        """Report time of the next label to apply (``None`` when none waits)."""
        heap = self._heap
        while heap and heap[0][2] not in self._store:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop(self) -> Label:
        """Remove and return the label reported first."""
        while True:
            _, _, key = heapq.heappop(self._heap)
            raw = self._store.pop(key, None)
            if raw is not None:
                if self.track_changes:
                    self._changes.add(key)
                reported_at, _, account_id, transaction_id, is_fraud = orjson.loads(raw)
                return Label(transaction_id, account_id, bool(is_fraud), float(reported_at))

    def pop_until(self, upto: float) -> list[Label]:
        out = []
        while (first := self.earliest()) is not None and first <= upto:
            out.append(self.pop())
        return out

    def reindex(self) -> None:
        """Rebuild the heap from the store (after a recovery or a revocation)."""
        heap = []
        for key, raw in list(self._store.items()):
            if not raw:
                del self._store[key]
                continue
            reported_at, seq = orjson.loads(raw)[:2]
            heap.append((float(reported_at), int(seq), key))
            self._seq = max(self._seq, int(seq))
        heapq.heapify(heap)
        self._heap = heap
