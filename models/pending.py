"""Scored transactions awaiting a label, kept compactly and in bounded memory.

A fraud report (or its absence until the label horizon) arrives days after scoring; the
model must then learn from the features the transaction had *when it was scored*. So each
scored transaction is parked here with its feature vector as float32 in
``feature_names`` order (float32 keeps ~7 significant digits, plenty for a model input).

Measured with ``tracemalloc`` for 60 features and realistic ids (see
``tests/unit/test_pending.py::test_memory_per_entry_is_bounded``): about 680 bytes per
entry — ``x`` is 273 (240 of float32 + the bytes header), the entry object ~100, three id
strings ~175, the index and heap slots the rest — so the default capacity of 500 000
holds ~340 MB at most.

Expiry is by event time and correct for any arrival order: a min-heap on ``event_ts``
sits beside the id index. Entries removed by :meth:`PendingLabels.pop` leave a stale heap
item that is skipped when it surfaces; the heap is rebuilt when stale items outnumber live
ones, so it never holds more than about twice ``capacity`` items.

>>> pending = PendingLabels(["amount", "count_1h"], capacity=2)
>>> pending.add("t1", "a1", "m1", 100.0, {"amount": 12.5, "count_1h": 3.0}, 0.1, False)
>>> pending.features(pending.pop("t1"))
{'amount': 12.5, 'count_1h': 3.0}
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Pending", "PendingLabels"]

_NAN = math.nan


@dataclass(slots=True)
class Pending:
    """One scored transaction. ``x`` holds the features as packed float32 (native byte
    order) in column order — immutable and the most compact Python object for it;
    ``partial`` marks a vector built from a dict that lacked some columns (stored as NaN
    and left out again when the dict is rebuilt)."""

    transaction_id: str
    account_id: str
    merchant_id: str | None
    event_ts: float
    score: float
    alerted: bool
    x: bytes
    partial: bool = False


class PendingLabels:
    """Scored transactions by id, expiring by event time, bounded by ``capacity``.

    When full, adding evicts the entry with the oldest event time (it is the closest to
    its label horizon anyway); :attr:`evicted` counts them. Adding an id that is already
    pending replaces the entry.
    """

    def __init__(self, feature_names: Sequence[str], capacity: int = 500_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.feature_names = feature_names
        self.capacity = capacity
        self.evicted = 0
        self._names: tuple[str, ...] = tuple(feature_names)
        self._width = len(self._names)
        self._by_id: dict[str, Pending] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, transaction_id: object) -> bool:
        return transaction_id in self._by_id

    def __iter__(self) -> Iterator[Pending]:
        """Entries in insertion order (for checkpoints and inspection)."""
        return iter(list(self._by_id.values()))

    def get(self, transaction_id: str) -> Pending | None:
        return self._by_id.get(transaction_id)

    @property
    def names(self) -> tuple[str, ...]:
        """Column order of every stored vector."""
        return self._names

    # -- storage ------------------------------------------------------------------------

    def vector(self, x: Mapping[str, float]) -> tuple[np.ndarray, bool]:
        """``x`` as a float64 row in column order, and whether some column was missing
        (it is NaN in the row). Extra keys are ignored."""
        if len(x) == self._width and tuple(x) == self._names:
            return np.fromiter(x.values(), dtype=np.float64, count=self._width), False
        if not self._names:  # no columns given: adopt the first vector's
            self._names = tuple(x)
            self._width = len(self._names)
            return np.fromiter(x.values(), dtype=np.float64, count=self._width), False
        get = x.get
        row = np.array([get(k, _NAN) for k in self._names], dtype=np.float64)
        return row, any(k not in x for k in self._names)

    def row(self, p: Pending) -> np.ndarray:
        """``p``'s features as a float64 row in column order (NaN where missing)."""
        return np.frombuffer(p.x, dtype=np.float32).astype(np.float64)

    def features(self, p: Pending) -> dict[str, float]:
        """The feature dict ``p`` was scored with (float32-rounded)."""
        values = np.frombuffer(p.x, dtype=np.float32).tolist()
        if p.partial:
            return {k: v for k, v in zip(self._names, values, strict=True) if v == v}
        return dict(zip(self._names, values, strict=True))

    # -- lifecycle ----------------------------------------------------------------------

    def add(
        self,
        transaction_id: str,
        account_id: str,
        merchant_id: str | None,
        event_ts: float,
        x: Mapping[str, float],
        score: float,
        alerted: bool,
    ) -> None:
        row, partial = self.vector(x)
        self.add_vector(transaction_id, account_id, merchant_id, event_ts, row, partial, score,
                        alerted)

    def add_vector(
        self,
        transaction_id: str,
        account_id: str,
        merchant_id: str | None,
        event_ts: float,
        row: np.ndarray,
        partial: bool,
        score: float,
        alerted: bool,
    ) -> None:
        """:meth:`add` for a row already built by :meth:`vector` (saves a conversion)."""
        x = row.astype(np.float32).tobytes()
        self.put(Pending(transaction_id, account_id, merchant_id, event_ts, score, alerted, x,
                         partial))

    def put(self, p: Pending) -> None:
        """Insert an already built entry (checkpoint restore, tests)."""
        if not math.isfinite(p.event_ts):
            raise ValueError(f"event_ts must be a finite epoch time, got {p.event_ts!r} "
                             f"(transaction {p.transaction_id!r})")
        self._by_id[p.transaction_id] = p
        heapq.heappush(self._heap, (p.event_ts, p.transaction_id))
        if len(self._by_id) > self.capacity:
            self._evict()
        if len(self._heap) > 2 * len(self._by_id) + 1024:
            self._compact()

    def pop(self, transaction_id: str) -> Pending | None:
        """Remove and return the entry for ``transaction_id`` (a label arrived)."""
        return self._by_id.pop(transaction_id, None)

    def expire(self, watermark_ts: float, horizon_s: float) -> list[Pending]:
        """Remove and return every entry with ``event_ts <= watermark_ts - horizon_s``,
        oldest event first."""
        cutoff = watermark_ts - horizon_s
        heap = self._heap
        if not heap or heap[0][0] > cutoff:
            return []
        by_id = self._by_id
        out = []
        while heap and heap[0][0] <= cutoff:
            ts, tid = heapq.heappop(heap)
            p = by_id.get(tid)
            if p is not None and p.event_ts == ts:
                del by_id[tid]
                out.append(p)
        return out

    def oldest_event_ts(self) -> float | None:
        """Event time of the oldest entry still pending, or ``None`` when empty."""
        heap, by_id = self._heap, self._by_id
        while heap:
            ts, tid = heap[0]
            p = by_id.get(tid)
            if p is not None and p.event_ts == ts:
                return ts
            heapq.heappop(heap)
        return None

    def _evict(self) -> None:
        heap, by_id = self._heap, self._by_id
        while len(by_id) > self.capacity and heap:
            ts, tid = heapq.heappop(heap)
            p = by_id.get(tid)
            if p is not None and p.event_ts == ts:
                del by_id[tid]
                self.evicted += 1

    def _compact(self) -> None:
        self._heap = [(p.event_ts, p.transaction_id) for p in self._by_id.values()]
        heapq.heapify(self._heap)

    # -- state (checkpoints): columnar, much faster and smaller than 500k objects --------

    def state_dict(self) -> dict[str, Any]:
        """Every entry, column by column: ids as lists of strings, numbers as arrays,
        the feature rows as one float32 array (plain values only: checkpoints)."""
        entries = list(self._by_id.values())
        return {
            "feature_names": list(self.feature_names),
            "names": list(self._names),
            "capacity": self.capacity,
            "evicted": self.evicted,
            "transaction_id": [p.transaction_id for p in entries],
            "account_id": [p.account_id for p in entries],
            "merchant_id": [p.merchant_id for p in entries],
            "event_ts": np.array([p.event_ts for p in entries], dtype=np.float64),
            "score": np.array([p.score for p in entries], dtype=np.float64),
            "alerted": np.array([p.alerted for p in entries], dtype=np.bool_),
            "partial": np.array([p.partial for p in entries], dtype=np.bool_),
            "rows": np.frombuffer(b"".join(p.x for p in entries), dtype=np.float32),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PendingLabels:
        """The buffer a :meth:`state_dict` describes (``ValueError`` if inconsistent)."""
        pending = cls.__new__(cls)
        pending._load_state(state)
        return pending

    def _load_state(self, state: Mapping[str, Any]) -> None:
        names = state["names"]
        if not isinstance(names, list) or not all(isinstance(k, str) for k in names):
            raise ValueError("state entry 'names' must be a list of feature names")
        self.feature_names = list(state["feature_names"])
        self._names = tuple(sys.intern(k) for k in names)
        self._width = len(self._names)
        self.capacity = int(state["capacity"])
        self.evicted = int(state["evicted"])
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        ids, accounts, merchants = state["transaction_id"], state["account_id"], state["merchant_id"]
        if not all(isinstance(v, str) for v in (*ids, *accounts)) or not all(
            v is None or isinstance(v, str) for v in merchants
        ):
            raise ValueError("pending ids must be strings")
        rows = np.ascontiguousarray(state["rows"], dtype=np.float32)
        if rows.size != len(ids) * self._width:
            raise ValueError(f"pending rows hold {rows.size} values for {len(ids)} entries "
                             f"of {self._width} features")
        raw = rows.tobytes()
        size = 4 * self._width
        self._by_id = {}
        columns = zip(
            ids, accounts, merchants, np.asarray(state["event_ts"], dtype=np.float64).tolist(),
            np.asarray(state["score"], dtype=np.float64).tolist(),
            np.asarray(state["alerted"], dtype=np.bool_).tolist(),
            np.asarray(state["partial"], dtype=np.bool_).tolist(), strict=True,
        )
        for i, (tid, acc, mer, ts, score, alerted, partial) in enumerate(columns):
            if not math.isfinite(ts):
                raise ValueError(f"pending event_ts must be finite, got {ts!r} ({tid!r})")
            x = raw[i * size:(i + 1) * size]
            self._by_id[tid] = Pending(tid, acc, mer, ts, score, alerted, x, partial)
        self._compact()

    def __getstate__(self) -> dict[str, Any]:
        return self.state_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._load_state(state)
