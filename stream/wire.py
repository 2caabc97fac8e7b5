"""Compact encodings of the messages that travel between Kuntur's own agents.

Internal topics carry *batches*: one Kafka message holds every entry a stage sends to
one partition of the next stage, so a transaction costs a fraction of a message on each
internal hop instead of one message each (Faust's per-message cost dominates a
pipeline's CPU). An entry carries the validated transaction as a positional list plus
the feature vector so far, in catalogue order: smaller and faster than re-validating
JSON.

Entries on ``<app>-by-merchant-v2`` (sent to the merchant's partition, or to the
account's own partition for a transaction without a merchant):

* ``["t", tx, features, produced_at, partition]``: a transaction with its account
  features; ``partition`` is the transactions partition it came from, where the scoring
  stage (co-partitioned with the labels topic) must see it;
* ``["f", merchant_id, event_ts]``: a confirmed fraud at the merchant.

Entries on ``<app>-to-score-v2`` (sent to the transaction's own partition):
``[tx, features, produced_at]``.

The ``-v2`` suffix changes whenever this format does, so old messages are never misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from features.transaction import Transaction

TX_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Transaction) if f.name != "extra")

#: Suffix of the internal topics' names; bump it when the entry format changes.
WIRE_VERSION = "v2"

#: Upper bound of one internal message (Kafka's default max message size is ~1 MB).
MAX_MESSAGE_BYTES = 512 * 1024


def tx_to_list(tx: Transaction) -> list[Any]:
    return [getattr(tx, name) for name in TX_FIELDS]


def tx_from_list(values: Sequence[Any]) -> Transaction:
    return Transaction(*values)


def merchant_entry(tx: Transaction, values: list[float], produced_at: float, partition: int) -> list[Any]:
    """A transaction on its way to the merchant stage, with its account features."""
    return ["t", tx_to_list(tx), values, produced_at, partition]


def fraud_entry(merchant_id: str, event_ts: float) -> list[Any]:
    """A confirmed fraud at a merchant, for the merchant's fraud rate."""
    return ["f", merchant_id, event_ts]


def score_entry(tx: list[Any], values: list[float], produced_at: float) -> list[Any]:
    """A transaction with its full feature vector (or all but the merchant part), for scoring."""
    return [tx, values, produced_at]


def encode_batch(entries: Sequence[Any]) -> bytes:
    return orjson.dumps(entries)


def decode_batch(raw: bytes) -> list[Any]:
    entries: list[Any] = orjson.loads(raw)
    return entries


def split_encoded(entries: Sequence[Any], limit: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """``entries`` encoded as one message, or as several if one would exceed ``limit`` bytes."""
    raw = encode_batch(entries)
    if len(raw) <= limit or len(entries) < 2:
        return [raw]
    half = len(entries) // 2
    return split_encoded(entries[:half], limit) + split_encoded(entries[half:], limit)


class Partitioner:
    """Kafka's default key → partition mapping (murmur2), as Faust's producer applies it.

    The merchant stage sends with an explicit partition; computing it the way a keyed send
    would keeps each merchant's state on the partition it always lived on.

    >>> Partitioner(4)(b"m-1") == Partitioner(4)(b"m-1")
    True
    """

    MAX_CACHED = 1_000_000

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def __call__(self, key: bytes) -> int:
        return (murmur2(key) & 0x7FFFFFFF) % self.partitions

    def of(self, key: str) -> int:
        """Partition of a string key (cached: merchants recur)."""
        p = self._cache.get(key)
        if p is None:
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            p = self._cache[key] = self(key.encode())
        return p


class Outbox:
    """Entries collected during a batch, grouped by destination partition."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[int, list[Any]] = {}

    def add(self, partition: int, entry: Any) -> None:
        bucket = self.entries.get(partition)
        if bucket is None:
            self.entries[partition] = [entry]
        else:
            bucket.append(entry)

    def messages(self) -> list[tuple[int, bytes]]:
        """(partition, encoded batch) pairs, ready to send."""
        return [(p, raw) for p, entries in self.entries.items() for raw in split_encoded(entries)]
