"""Keyed pseudonyms for personal identifiers, applied where events enter the worker.

With a pseudonym key configured, account ids (also as a transfer's counterparty), device
ids and IP addresses are replaced by ``p_`` + 24 hex digits of HMAC-SHA256(key, kind, value)
before anything else sees them: features, tables, alerts, logs, checkpoints and the
console only ever hold pseudonyms. A pseudonym is stable (the same value always gives
the same pseudonym, so every feature works unchanged) and cannot be reversed without the
key; whoever holds the key maps a real id to its pseudonym (``kuntur pseudonym``) to find
its alerts. A value that already is a pseudonym (for example the account id of a label the
console wrote from an alert) is kept as it is.

>>> p = Pseudonymiser(b"k" * 32)
>>> p.value("account", "acc-1") == p.value("account", "acc-1") != p.value("device", "acc-1")
True
>>> p.value("account", p.value("account", "acc-1")) == p.value("account", "acc-1")
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from typing import Any

from features.transaction import Transaction
from stream.pipeline.validation import Label

#: Transaction fields replaced, and the kind each is hashed as (accounts share one kind, so
#: an account's pseudonym is the same as account and as counterparty).
FIELDS: dict[str, str] = {
    "account_id": "account",
    "counterparty_account": "account",
    "device_id": "device",
    "ip_address": "ip",
}
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")


class Pseudonymiser:
    """Replaces identifiers by keyed pseudonyms (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[tuple[str, str], str] = {}

    def value(self, kind: str, value: str) -> str:
        if _PSEUDONYM.fullmatch(value):
            return value
        cached = self._cache.get((kind, value))
        if cached is None:
            if len(self._cache) >= 1_000_000:
                self._cache.clear()
            digest = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
            cached = self._cache[(kind, value)] = f"p_{digest[:24]}"
        return cached

    def transaction(self, tx: Transaction) -> Transaction:
        changes: dict[str, Any] = {
            name: self.value(kind, v) for name, kind in FIELDS.items() if (v := getattr(tx, name)) is not None
        }
        return dataclasses.replace(tx, **changes)

    def label(self, label: Label) -> Label:
        return dataclasses.replace(label, account_id=self.value("account", label.account_id))
