"""The validated transaction every stage of the core works on.

`stream.pipeline.validation` turns raw JSON into a :class:`Transaction`; the offline evaluator
builds the same object from file rows. Times are event time in epoch seconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRANSACTION_TYPES: tuple[str, ...] = ("purchase", "transfer", "withdrawal", "payment", "deposit")
ACCOUNT_TYPES: tuple[str, ...] = ("checking", "savings", "credit")
CHANNELS: tuple[str, ...] = ("pos", "online", "atm", "mobile", "branch")

#: Every Transaction JSON field of DESIGN.md, in schema (and file column) order.
SCHEMA_FIELDS: tuple[str, ...] = (
    "transaction_id",
    "account_id",
    "timestamp",
    "amount",
    "currency",
    "transaction_type",
    "account_type",
    "channel",
    "merchant_id",
    "merchant_category",
    "counterparty_account",
    "account_balance",
    "account_age_days",
    "ip_address",
    "device_id",
    "latitude",
    "longitude",
    "institution_id",
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One validated transaction. Optional fields are ``None`` when absent."""

    transaction_id: str
    account_id: str
    ts: float  # event time, epoch seconds UTC
    amount: float  # in soles (PEN): converted from ``currency`` on entry
    currency: str = "PEN"
    transaction_type: str | None = None
    account_type: str | None = None
    channel: str | None = None
    merchant_id: str | None = None
    merchant_category: str | None = None
    counterparty_account: str | None = None
    account_balance: float | None = None
    account_age_days: float | None = None
    ip_address: str | None = None
    device_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    institution_id: str | None = None
    #: the amount as sent, in ``currency``, when that is not PEN (``amount`` is in soles)
    original_amount: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
