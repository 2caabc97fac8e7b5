"""Compact encodings of the messages that travel between Kuntur's own agents.

Internal topics carry the validated transaction as a positional list plus the feature
vector as a list in catalogue order: smaller and faster than re-validating JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import orjson

from features.transaction import Transaction

TX_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Transaction) if f.name != "extra")


def tx_to_list(tx: Transaction) -> list[Any]:
    return [getattr(tx, name) for name in TX_FIELDS]


def tx_from_list(values: Sequence[Any]) -> Transaction:
    return Transaction(*values)


def encode_stage(tx: Transaction, values: Sequence[float], produced_at: float) -> bytes:
    """A transaction on its way to the next stage, with the features computed so far."""
    return orjson.dumps({"k": "tx", "tx": tx_to_list(tx), "f": list(values), "pt": produced_at})


def encode_merchant_fraud(merchant_id: str, event_ts: float) -> bytes:
    """A confirmed fraud at a merchant, routed to the merchant's partition."""
    return orjson.dumps({"k": "fraud", "m": merchant_id, "ts": event_ts})


def decode(raw: bytes) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(raw)
    return msg
