"""Scored transactions awaiting a label — and recently resolved ones — as compact bytes in a
key-value store, so the learning state can live in a changelogged, partitioned table.

A fraud report (or its absence until the label horizon) arrives days after scoring; the
model must then learn from the features the transaction had *when it was scored*. So each
scored transaction is parked under its id with its feature vector as float32 in
``feature_names`` order (float32 keeps ~7 significant digits, plenty for a model input),
its merchant, account, event time, score and whether it alerted. Once resolved (a label,
or the horizon) the entry shrinks to a *resolved marker* (how, merchant, event time), kept
for the last ``resolved_capacity`` resolutions so that a repeated label or a re-delivered
transaction is recognised.

The store is any ``MutableMapping[str, bytes]``: a plain dict in ``kuntur evaluate`` and the
tests, the dict of a Faust table in the worker. Every key this buffer writes or deletes is
recorded (:meth:`PendingLabels.take_changes`) so the worker can write those keys to the
table's changelog, on the partition of the transaction's account: the state moves with its
partition and survives a crash. Derived indexes (the event-time heap, counts, the order of
resolutions) live beside the store and are rebuilt by :meth:`PendingLabels.reindex` after
the store changed under it (a table recovered or a partition revoked).

Entry layout (little-endian): tag ``u8`` (1 pending), flags ``u8`` (1 alerted, 2 partial),
``event_ts f64``, ``score f64``, account length ``u16``, merchant length ``u16`` (0xFFFF: no
merchant), the two ids in UTF-8, then the float32 row. Resolved marker: tag ``u8`` (2),
how ``u8``, ``event_ts f64``, merchant length ``u16``, merchant.

Measured with ``tracemalloc`` (``tests/unit/test_pending.py::test_memory_per_entry_is_bounded``,
``tests/unit/test_learning_state.py``): about 490 bytes per pending entry for 60 features
and realistic ids, 630 bytes for the real catalogue's 74 — the value is 22 + ids + 4 per
feature (~330 bytes with the bytes header), the key string ~60, the dict slot and the heap
item the rest — so the default capacity of 500 000 holds ~320 MB at most. A changelog
record is the key and the value: ~340 bytes. A resolved marker is ~120 bytes in memory.

Expiry is by event time and correct for any arrival order: a min-heap on ``event_ts``
sits beside the store. Entries removed by :meth:`PendingLabels.pop` leave a stale heap
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
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Pending", "PendingLabels", "Resolution"]

_NAN = math.nan

_TAG_PENDING = 1
_TAG_RESOLVED = 2
_ALERTED = 1
_PARTIAL = 2
_NO_MERCHANT = 0xFFFF

_HEAD = struct.Struct("<BBddHH")  # tag, flags, event_ts, score, len(account), len(merchant)
_MARK = struct.Struct("<BBdH")  # tag, how, event_ts, len(merchant)
_TS = struct.Struct("<d")  # event_ts sits at offset 2 in both layouts


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


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a transaction was resolved (the detector's code), its merchant and event time."""

    how: int
    merchant_id: str | None
    event_ts: float


def _encode_id(value: str | None) -> bytes:
    return b"" if value is None else value.encode()


def encode_pending(p: Pending) -> bytes:
    account, merchant = p.account_id.encode(), _encode_id(p.merchant_id)
    if len(account) >= _NO_MERCHANT or len(merchant) >= _NO_MERCHANT:
        raise ValueError(f"ids of transaction {p.transaction_id!r} are too long to park")
    flags = (_ALERTED if p.alerted else 0) | (_PARTIAL if p.partial else 0)
    mlen = _NO_MERCHANT if p.merchant_id is None else len(merchant)
    return b"".join((_HEAD.pack(_TAG_PENDING, flags, p.event_ts, p.score, len(account), mlen), account, merchant, p.x))


def decode_pending(transaction_id: str, raw: bytes) -> Pending:
    tag, flags, event_ts, score, alen, mlen = _HEAD.unpack_from(raw)
    if tag != _TAG_PENDING:
        raise ValueError(f"not a pending entry: {transaction_id!r}")
    at = _HEAD.size
    account = raw[at : at + alen].decode()
    at += alen
    merchant = None
    if mlen != _NO_MERCHANT:
        merchant = raw[at : at + mlen].decode()
        at += mlen
    return Pending(transaction_id, account, merchant, event_ts, score, bool(flags & _ALERTED), raw[at:],
                   bool(flags & _PARTIAL))


def encode_resolution(r: Resolution) -> bytes:
    merchant = _encode_id(r.merchant_id)
    mlen = _NO_MERCHANT if r.merchant_id is None else len(merchant)
    return _MARK.pack(_TAG_RESOLVED, r.how, r.event_ts, mlen) + merchant


def decode_resolution(raw: bytes) -> Resolution:
    _, how, event_ts, mlen = _MARK.unpack_from(raw)
    merchant = None if mlen == _NO_MERCHANT else raw[_MARK.size : _MARK.size + mlen].decode()
    return Resolution(how, merchant, event_ts)


class PendingLabels:
    """Scored transactions by id, expiring by event time, bounded by ``capacity``; resolved
    ids remembered, bounded by ``resolved_capacity`` (default: ``capacity``).

    When full, adding evicts the entry with the oldest event time (it is the closest to
    its label horizon anyway); :attr:`evicted` counts them. Adding an id that is already
    pending replaces the entry. ``track_changes`` records every key written or deleted
    until :meth:`take_changes` (the worker's changelog); off, nothing is recorded.
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        capacity: int = 500_000,
        *,
        store: MutableMapping[str, bytes] | None = None,
        resolved_capacity: int | None = None,
        track_changes: bool = False,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.feature_names = feature_names
        self.capacity = capacity
        self.resolved_capacity = capacity if resolved_capacity is None else resolved_capacity
        self.evicted = 0
        self.track_changes = track_changes
        self._names: tuple[str, ...] = tuple(feature_names)
        self._width = len(self._names)
        self._store: MutableMapping[str, bytes] = {} if store is None else store
        self._count = 0
        self._heap: list[tuple[float, str]] = []
        self._resolved: OrderedDict[str, None] = OrderedDict()
        self._changes: set[str] = set()
        if self._store:
            self.reindex()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, transaction_id: object) -> bool:
        raw = self._store.get(transaction_id) if isinstance(transaction_id, str) else None
        return raw is not None and raw[0] == _TAG_PENDING

    def known(self, transaction_id: str) -> bool:
        """Pending or remembered as resolved."""
        return transaction_id in self._store

    def __iter__(self) -> Iterator[Pending]:
        """Pending entries in insertion order (for checkpoints and inspection)."""
        return iter([decode_pending(k, v) for k, v in list(self._store.items()) if v and v[0] == _TAG_PENDING])

    def get(self, transaction_id: str) -> Pending | None:
        raw = self._store.get(transaction_id)
        return decode_pending(transaction_id, raw) if raw is not None and raw[0] == _TAG_PENDING else None

    @property
    def names(self) -> tuple[str, ...]:
        """Column order of every stored vector."""
        return self._names

    @property
    def store(self) -> MutableMapping[str, bytes]:
        return self._store

    @property
    def resolved_count(self) -> int:
        return len(self._resolved)

    # -- the store's write set ---------------------------------------------------------

    def _write(self, key: str, value: bytes) -> None:
        self._store[key] = value
        if self.track_changes:
            self._changes.add(key)

    def _delete(self, key: str) -> None:
        self._store.pop(key, None)
        if self.track_changes:
            self._changes.add(key)

    def take_changes(self) -> set[str]:
        """Keys written or deleted since the last call (their value now is in the store, or
        absent for a deletion)."""
        changes, self._changes = self._changes, set()
        return changes

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
        self.add_vector(transaction_id, account_id, merchant_id, event_ts, row, partial, score, alerted)

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
        self.put(Pending(transaction_id, account_id, merchant_id, event_ts, score, alerted, x, partial))

    def put(self, p: Pending) -> None:
        """Insert an already built entry (checkpoint restore, tests)."""
        if not math.isfinite(p.event_ts):
            raise ValueError(f"event_ts must be a finite epoch time, got {p.event_ts!r} "
                             f"(transaction {p.transaction_id!r})")
        tid = p.transaction_id
        old = self._store.get(tid)
        if old is None or old[0] != _TAG_PENDING:
            self._count += 1
            if old is not None:
                self._resolved.pop(tid, None)
        self._write(tid, encode_pending(p))
        heapq.heappush(self._heap, (p.event_ts, tid))
        if self._count > self.capacity:
            self._evict()
        if len(self._heap) > 2 * self._count + 1024:
            self._compact()

    def pop(self, transaction_id: str) -> Pending | None:
        """Remove and return the entry for ``transaction_id`` (a label arrived)."""
        raw = self._store.get(transaction_id)
        if raw is None or raw[0] != _TAG_PENDING:
            return None
        self._delete(transaction_id)
        self._count -= 1
        return decode_pending(transaction_id, raw)

    def _live(self, ts: float, tid: str) -> bytes | None:
        raw = self._store.get(tid)
        if raw is not None and raw[0] == _TAG_PENDING and _TS.unpack_from(raw, 2)[0] == ts:
            return raw
        return None

    def expire(self, watermark_ts: float, horizon_s: float) -> list[Pending]:
        """Remove and return every entry with ``event_ts <= watermark_ts - horizon_s``,
        oldest event first."""
        cutoff = watermark_ts - horizon_s
        heap = self._heap
        if not heap or heap[0][0] > cutoff:
            return []
        out = []
        while heap and heap[0][0] <= cutoff:
            ts, tid = heapq.heappop(heap)
            raw = self._live(ts, tid)
            if raw is not None:
                self._delete(tid)
                self._count -= 1
                out.append(decode_pending(tid, raw))
        return out

    def oldest_event_ts(self) -> float | None:
        """Event time of the oldest entry still pending, or ``None`` when empty."""
        heap = self._heap
        while heap:
            ts, tid = heap[0]
            if self._live(ts, tid) is not None:
                return ts
            heapq.heappop(heap)
        return None

    def _evict(self) -> None:
        heap = self._heap
        while self._count > self.capacity and heap:
            ts, tid = heapq.heappop(heap)
            if self._live(ts, tid) is not None:
                self._delete(tid)
                self._count -= 1
                self.evicted += 1

    def _compact(self) -> None:
        self._heap = [
            (_TS.unpack_from(v, 2)[0], k) for k, v in self._store.items() if v and v[0] == _TAG_PENDING
        ]
        heapq.heapify(self._heap)

    # -- resolved ids ---------------------------------------------------------------------

    def resolve(self, transaction_id: str, resolution: Resolution) -> None:
        """Remember that ``transaction_id`` was resolved (its pending entry, if any, goes)."""
        raw = self._store.get(transaction_id)
        if raw is not None and raw[0] == _TAG_PENDING:
            self._count -= 1
        self._write(transaction_id, encode_resolution(resolution))
        self._resolved[transaction_id] = None
        self._resolved.move_to_end(transaction_id)
        while len(self._resolved) > self.resolved_capacity:
            old, _ = self._resolved.popitem(last=False)
            raw = self._store.get(old)
            if raw is not None and raw[0] == _TAG_RESOLVED:
                self._delete(old)

    def resolution(self, transaction_id: str) -> Resolution | None:
        raw = self._store.get(transaction_id)
        return decode_resolution(raw) if raw is not None and raw[0] == _TAG_RESOLVED else None

    def resolutions(self) -> list[tuple[str, Resolution]]:
        """Remembered resolutions, oldest first."""
        out = []
        for tid in self._resolved:
            r = self.resolution(tid)
            if r is not None:
                out.append((tid, r))
        return out

    # -- after the store changed under us --------------------------------------------------

    def reindex(self) -> None:
        """Rebuild the heap, the count and the order of resolutions from the store (a table
        was recovered, a partition revoked), then enforce both capacities."""
        store = self._store
        self._count = sum(1 for v in store.values() if v and v[0] == _TAG_PENDING)
        self._compact()
        self._resolved = OrderedDict(
            (tid, None)
            for _, tid in sorted(
                (_TS.unpack_from(v, 2)[0], k) for k, v in store.items() if v and v[0] == _TAG_RESOLVED
            )
        )
        for tid in [k for k, v in store.items() if not v]:  # tombstones a recovery may leave
            del store[tid]
        if self._count > self.capacity:
            self._evict()
        while len(self._resolved) > self.resolved_capacity:
            self._delete(self._resolved.popitem(last=False)[0])

    # -- state (checkpoints): columnar, much faster and smaller than 500k objects --------

    def state_dict(self) -> dict[str, Any]:
        """Every pending entry, column by column: ids as lists of strings, numbers as arrays,
        the feature rows as one float32 array (plain values only: checkpoints). Resolved
        ids are the detector's to save (:meth:`resolutions`)."""
        entries = list(self)
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
        self.resolved_capacity = self.capacity
        self.evicted = int(state["evicted"])
        self.track_changes = False
        self._store, self._count, self._heap = {}, 0, []
        self._resolved, self._changes = OrderedDict(), set()
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
            self._store[tid] = encode_pending(Pending(tid, acc, mer, ts, score, alerted, x, partial))
            self._count += 1
        self._compact()

    def __getstate__(self) -> dict[str, Any]:
        return self.state_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._load_state(state)
