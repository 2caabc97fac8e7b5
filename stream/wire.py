"""Compact encodings of the messages that travel between Kuntur's own agents.

Internal topics carry *batches*: one Kafka message holds every entry a stage sends to
one partition of the next stage, so a transaction costs a fraction of a message on each
internal hop instead of one message each (Faust's per-message cost dominates a
pipeline's CPU). Entries are the stages' emits (:mod:`stream.pipeline.emits`) as JSON
objects whose fields are named: a field added to :class:`~features.transaction.Transaction`
or to an entry cannot shift another. Feature vectors travel as lists in catalogue order
(one definition, :mod:`features.catalogue`).

Entries on ``<app>-by-merchant-v3`` (sent to the merchant's partition, or to the
account's own partition for a transaction without a merchant):

* :class:`MerchantEntry` ``{"k": "tx", "tx": {...}, "values": [...], "produced_at", "partition"}``:
  a transaction with its account features; ``partition`` is the transactions partition
  it came from, where the score stage (co-partitioned with the labels topic) must see it;
* :class:`FraudEntry` ``{"k": "fraud", "merchant_id", "event_ts"}``: a confirmed fraud at the merchant.

Entries on ``<app>-to-score-v3`` (sent to the transaction's own partition):
:class:`ScoreEntry` ``{"tx": {...}, "values": [...], "produced_at"}``.

Entries on ``<app>-by-account-v3`` (sent to the account's partition: the partition of the
scored transaction or of the label that emitted it): :class:`AccountFraudEntry`
``{"k": "fraud", "account_id", "event_ts", "known_at"}``, a confirmed fraud on the account's
transaction and the event time the scored stream had reached when its label was applied.

The ``-v3`` suffix changes whenever this format does, so old messages are never misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from features.transaction import Transaction
from stream.pipeline.emits import AccountFraud, MerchantFraud, ToMerchant, ToScore

#: The Transaction fields an entry carries (by name); ``extra`` (unknown JSON fields) stays behind.
TX_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Transaction) if f.name != "extra")

#: Suffix of the internal topics' names; bump it when the entry format changes.
WIRE_VERSION = "v3"

#: Upper bound of one internal message (Kafka's default max message size is ~1 MB).
MAX_MESSAGE_BYTES = 512 * 1024


def tx_to_dict(tx: Transaction) -> dict[str, Any]:
    return {name: getattr(tx, name) for name in TX_FIELDS}


def tx_from_dict(values: dict[str, Any]) -> Transaction:
    return Transaction(**values)


@dataclass(frozen=True, slots=True)
class MerchantEntry:
    """An account stage's :class:`~stream.pipeline.emits.ToMerchant`, with its envelope."""

    emit: ToMerchant
    produced_at: float
    partition: int

    def encode(self) -> dict[str, Any]:
        return {
            "k": "tx",
            "tx": tx_to_dict(self.emit.tx),
            "values": self.emit.values,
            "produced_at": self.produced_at,
            "partition": self.partition,
        }


@dataclass(frozen=True, slots=True)
class FraudEntry:
    """A :class:`~stream.pipeline.emits.MerchantFraud` on its way to the merchant's partition."""

    emit: MerchantFraud

    def encode(self) -> dict[str, Any]:
        return {"k": "fraud", "merchant_id": self.emit.merchant_id, "event_ts": self.emit.event_ts}


@dataclass(frozen=True, slots=True)
class AccountFraudEntry:
    """An :class:`~stream.pipeline.emits.AccountFraud` on its way to the account's partition."""

    emit: AccountFraud

    def encode(self) -> dict[str, Any]:
        emit = self.emit
        return {"k": "fraud", "account_id": emit.account_id, "event_ts": emit.event_ts, "known_at": emit.known_at}


@dataclass(frozen=True, slots=True)
class ScoreEntry:
    """A merchant stage's :class:`~stream.pipeline.emits.ToScore`, with its envelope."""

    emit: ToScore
    produced_at: float

    def encode(self) -> dict[str, Any]:
        return {"tx": tx_to_dict(self.emit.tx), "values": self.emit.values, "produced_at": self.produced_at}


def decode_merchant_entries(raw: bytes) -> list[MerchantEntry | FraudEntry]:
    out: list[MerchantEntry | FraudEntry] = []
    for e in orjson.loads(raw):
        if e["k"] == "fraud":
            out.append(FraudEntry(MerchantFraud(e["merchant_id"], e["event_ts"])))
        else:
            emit = ToMerchant(tx_from_dict(e["tx"]), e["values"])
            out.append(MerchantEntry(emit, e["produced_at"], e["partition"]))
    return out


def decode_score_entries(raw: bytes) -> list[ScoreEntry]:
    return [ScoreEntry(ToScore(tx_from_dict(e["tx"]), e["values"]), e["produced_at"]) for e in orjson.loads(raw)]


def decode_account_entries(raw: bytes) -> list[AccountFraudEntry]:
    return [AccountFraudEntry(AccountFraud(e["account_id"], e["event_ts"], e["known_at"])) for e in orjson.loads(raw)]


Entry = MerchantEntry | FraudEntry | ScoreEntry | AccountFraudEntry


def encode_batch(entries: Sequence[Entry]) -> bytes:
    return orjson.dumps([e.encode() for e in entries])


def split_encoded(entries: Sequence[Entry], limit: int = MAX_MESSAGE_BYTES) -> list[bytes]:
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
        return int((murmur2(key) & 0x7FFFFFFF) % self.partitions)

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

    def add(self, partition: int, entry: Entry) -> None:
        bucket = self.entries.get(partition)
        if bucket is None:
            self.entries[partition] = [entry]
        else:
            bucket.append(entry)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def messages(self) -> list[tuple[int, bytes]]:
        """(partition, encoded batch) pairs, ready to send."""
        return [(p, raw) for p, entries in self.entries.items() for raw in split_encoded(entries)]
