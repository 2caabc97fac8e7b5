"""Decode and validate input messages; build dead-letter records.

Pure functions (no Faust): the worker, ``kuntur replay`` and the unit tests share them.
Every rejection is an :class:`~stream.errors.InvalidEvent` with a machine code that
becomes the DeadLetter ``error`` and the ``reason`` label of the DLQ metric.

>>> parse_transaction(b'{"transaction_id":"t1","account_id":"a1","amount":12.5,'
...                   b'"timestamp":"2026-03-01T10:00:00-05:00"}').ts
1772377200.0
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from config.rates import PEN_PER_UNIT
from config.settings import Settings
from features.transaction import SCHEMA_FIELDS, Transaction
from stream.errors import InvalidEvent

#: Every machine code a rejection can carry (the DLQ metric is labelled by these).
ERROR_CODES = (
    "bad-json",
    "not-an-object",
    "missing-field",
    "bad-type",
    "bad-amount",
    "bad-currency",
    "bad-timestamp",
    "bad-value",
    "too-large",
)

_REQUIRED = ("transaction_id", "account_id", "timestamp", "amount")
#: checked on its own: converted to soles with the configured rates (:mod:`config.rates`)
_CURRENCY = ("currency",)
_OPTIONAL_STR = (
    "transaction_type",
    "account_type",
    "channel",
    "merchant_id",
    "merchant_category",
    "counterparty_account",
    "ip_address",
    "device_id",
    "institution_id",
)
_OPTIONAL_NUM = ("account_balance", "account_age_days", "latitude", "longitude")
_KNOWN = frozenset(SCHEMA_FIELDS)
# Epoch numbers beyond this are almost certainly milliseconds (year 5138 in seconds).
_MAX_EPOCH_S = 1e11
# No event time at or after 2100-01-01T00:00Z is plausible (and beyond year 9999 no date can be formatted).
_LAST_PLAUSIBLE_S = 4102444800.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a message may carry; beyond them it is dead-lettered with a reason.

    ``max_future_s`` bounds event time against the wall clock (``now``), so one message
    timestamped in year 9999 cannot move the stream's watermark, learn every pending
    transaction as genuine and expire every account. Offline runs (history files) pass no
    ``now``: only the absolute bound applies there.
    """

    max_message_bytes: int = 64 * 1024
    max_field_chars: int = 256
    max_amount: float = 1e9  # PEN
    max_future_s: float = 86_400.0
    #: dead letters carry at most this many bytes of the original payload (and say so)
    max_dead_letter_payload: int = 16 * 1024
    #: soles per unit of each accepted currency (:mod:`config.rates`); others: bad-currency
    rates: Mapping[str, float] = field(default_factory=lambda: dict(PEN_PER_UNIT))


def limits_from(settings: Settings) -> Limits:
    """The bounds and rates a worker applies, from its settings."""
    return Limits(
        max_message_bytes=settings.max_message_bytes,
        max_field_chars=settings.max_field_chars,
        max_amount=settings.max_amount,
        max_future_s=settings.max_future_s,
        rates=settings.currency_table(),
    )


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Label:
    """A fraud outcome reported by a bank's investigation or chargeback system."""

    transaction_id: str
    account_id: str
    is_fraud: bool
    reported_at: float


def decode_object(raw: bytes | str | None) -> dict[str, Any]:
    """Parse a JSON object or raise ``bad-json`` / ``not-an-object``."""
    if raw is None or raw in (b"", ""):
        raise InvalidEvent("bad-json", "empty message value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("bad-json", f"value is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidEvent("not-an-object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_time(value: Any, field: str, now: float | None = None, limits: Limits = DEFAULT_LIMITS) -> float:
    """ISO-8601 with a zone, or epoch seconds, to epoch seconds (UTC), within plausible bounds."""
    ts = _parse_time(value, field)
    if ts >= _LAST_PLAUSIBLE_S:
        raise InvalidEvent("bad-timestamp", f"{field} {value!r} is after 2100: not a plausible event time")
    if now is not None and ts > now + limits.max_future_s:
        raise InvalidEvent(
            "bad-timestamp", f"{field} {value!r} is more than {limits.max_future_s:.0f} s ahead of the wall clock"
        )
    return ts


def _parse_time(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise InvalidEvent("bad-timestamp", f"{field} must be ISO-8601 or epoch seconds, got a bool")
    if isinstance(value, int | float):
        ts = float(value)
        if not math.isfinite(ts) or ts < 0:
            raise InvalidEvent("bad-timestamp", f"{field} epoch value {value!r} is not a valid time")
        if ts > _MAX_EPOCH_S:
            raise InvalidEvent("bad-timestamp", f"{field} {value!r} looks like milliseconds; send epoch seconds")
        return ts
    if not isinstance(value, str):
        raise InvalidEvent("bad-timestamp", f"{field} must be a string or number")
    if len(value) > 64:
        raise InvalidEvent("bad-timestamp", f"{field} is {len(value)} characters long: not a timestamp")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise InvalidEvent("bad-timestamp", f"{field} {value!r} is not ISO-8601") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidEvent("bad-timestamp", f"{field} {value!r} has no time zone (event time must be unambiguous)")
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        raise InvalidEvent("bad-timestamp", f"{field} {value!r} is out of range") from None


def _require_str(obj: dict[str, Any], name: str, limits: Limits = DEFAULT_LIMITS) -> str:
    value = obj[name]
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent("bad-type", f"{name} must be a non-empty string, got {_short(value)}")
    if len(value) > limits.max_field_chars:
        raise InvalidEvent("bad-value", f"{name} is {len(value)} characters long (limit {limits.max_field_chars})")
    return value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _check_size(raw: bytes | str | None, limits: Limits) -> None:
    size = len(raw) if raw is not None else 0
    if size > limits.max_message_bytes:
        raise InvalidEvent("too-large", f"message is {size} bytes (limit {limits.max_message_bytes})")


def _number(obj: dict[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if value.__class__ is not float:  # a JSON or file float needs no further type check
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidEvent("bad-type", f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidEvent("bad-value", f"{name} must be finite, got {value!r}")
    return float(value)


def _optional_strings(obj: dict[str, Any], limits: Limits) -> list[str | None]:
    """The :data:`_OPTIONAL_STR` fields in order, ``None`` when absent or empty.

    ``bad-type`` or ``bad-value`` (too long) for the first bad one. One pass over the
    values because this runs for every message: the per-field errors (and empty strings)
    are only dealt with when some value is not a plain non-empty string of allowed length."""
    values = list(map(obj.get, _OPTIONAL_STR))
    limit = limits.max_field_chars
    for value in values:
        if value is not None and (value.__class__ is not str or not value or len(value) > limit):
            return _checked_strings(values, limit)
    return values


def _checked_strings(values: list[Any], limit: int) -> list[str | None]:
    """``values`` (the :data:`_OPTIONAL_STR` fields) with empty strings ``None``; raise for
    the first that is not a string or is longer than ``limit``."""
    for name, value in zip(_OPTIONAL_STR, values, strict=True):
        if value is not None and not isinstance(value, str):
            raise InvalidEvent("bad-type", f"{name} must be a string, got {_short(value)}")
        if value is not None and len(value) > limit:
            raise InvalidEvent("bad-value", f"{name} is {len(value)} characters long (limit {limit})")
    return [value or None for value in values]


def parse_transaction(
    raw: bytes | str | None, now: float | None = None, limits: Limits = DEFAULT_LIMITS
) -> Transaction:
    """Validate one Transaction JSON message (see DESIGN.md) into a :class:`Transaction`.

    ``now`` (wall clock, epoch s) bounds event time from above; offline callers omit it."""
    _check_size(raw, limits)
    return transaction_from_dict(decode_object(raw), now, limits)


def transaction_from_dict(
    obj: dict[str, Any], now: float | None = None, limits: Limits = DEFAULT_LIMITS
) -> Transaction:
    """Validate an already-decoded transaction object (file rows use this too)."""
    missing = [name for name in _REQUIRED if obj.get(name) is None]
    if missing:
        raise InvalidEvent("missing-field", f"missing required field(s): {', '.join(missing)}")
    amount = obj["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise InvalidEvent("bad-type", f"amount must be a number, got {_short(amount)}")
    if not math.isfinite(amount) or amount < 0:  # zero: a card verification, scored like any other
        raise InvalidEvent("bad-amount", f"amount must be a finite number >= 0, got {amount!r}")
    currency = obj.get("currency") or "PEN"
    if not isinstance(currency, str):
        raise InvalidEvent("bad-type", f"currency must be a string, got {_short(currency)}")
    currency = currency.strip().upper()
    rate = limits.rates.get(currency)
    if rate is None:
        raise InvalidEvent(
            "bad-currency",
            f"currency {_short(currency)} has no configured rate to PEN (accepted: {', '.join(sorted(limits.rates))}; "
            "setting currency_rates)",
        )
    original = float(amount)
    amount = original * rate  # every window, ratio, rule and bound works in soles
    if amount > limits.max_amount:
        raise InvalidEvent(
            "bad-amount", f"amount {original!r} {currency} is above the configured maximum {limits.max_amount:g} PEN"
        )
    strings = _optional_strings(obj, limits)
    balance, age = _number(obj, "account_balance"), _number(obj, "account_age_days")
    lat, lon = _number(obj, "latitude"), _number(obj, "longitude")
    if lat is not None and not -90.0 <= lat <= 90.0:
        raise InvalidEvent("bad-value", f"latitude must be in [-90, 90], got {lat}")
    if lon is not None and not -180.0 <= lon <= 180.0:
        raise InvalidEvent("bad-value", f"longitude must be in [-180, 180], got {lon}")
    if (lat is None) != (lon is None):
        lat = lon = None  # half a coordinate is no location
    tx_type, account_type, channel, merchant, category, counterparty, ip, device, institution = strings
    # Positional, in field order: a frozen dataclass's keyword __init__ costs a third more
    # per message (tests/unit/test_validation.py checks every field lands where it should).
    return Transaction(
        _require_str(obj, "transaction_id", limits),
        _require_str(obj, "account_id", limits),
        parse_time(obj["timestamp"], "timestamp", now, limits),
        amount,
        currency,
        tx_type,
        account_type,
        channel,
        merchant,
        category,
        counterparty,
        None if balance is None else balance * rate,
        age,
        ip,
        device,
        lat,
        lon,
        institution,
        None if currency == "PEN" else original,
        # Only fields outside the schema go to extra; most messages have none.
        {} if obj.keys() <= _KNOWN else {k: v for k, v in obj.items() if k not in _KNOWN},
    )


def parse_label(raw: bytes | str | None, now: float | None = None, limits: Limits = DEFAULT_LIMITS) -> Label:
    """Validate one Label JSON message."""
    _check_size(raw, limits)
    obj = decode_object(raw)
    missing = [n for n in ("transaction_id", "account_id", "is_fraud", "reported_at") if obj.get(n) is None]
    if missing:
        raise InvalidEvent("missing-field", f"missing required field(s): {', '.join(missing)}")
    if not isinstance(obj["is_fraud"], bool):
        raise InvalidEvent("bad-type", f"is_fraud must be true or false, got {_short(obj['is_fraud'])}")
    return Label(
        transaction_id=_require_str(obj, "transaction_id", limits),
        account_id=_require_str(obj, "account_id", limits),
        is_fraud=obj["is_fraud"],
        reported_at=parse_time(obj["reported_at"], "reported_at", now, limits),
    )


def dead_letter(
    error: InvalidEvent,
    payload: bytes | str | None,
    topic: str,
    partition: int | None,
    offset: int | None,
    received_at: str,
    max_payload: int = DEFAULT_LIMITS.max_dead_letter_payload,
) -> dict[str, Any]:
    """A DeadLetter record (DESIGN.md) that keeps the original bytes, or their first
    ``max_payload`` bytes (``payload_truncated`` says so), so no dead letter can exceed
    the producer's message limit."""
    if isinstance(payload, str):
        payload = payload.encode()
    payload = payload or b""
    size = len(payload)
    truncated = size > max_payload
    if truncated:
        payload = payload[:max_payload]
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(payload) - 3:  # the cut split a character: keep text
            text, encoding = payload[: exc.start].decode("utf-8"), "utf-8"
        else:
            text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    return {
        "error": error.code,
        "detail": error.detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "received_at": received_at,
        "payload": text,
        "payload_encoding": encoding,
        "payload_truncated": truncated,
        "payload_bytes": size,
    }
