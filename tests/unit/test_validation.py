"""Every bad-input class gets its own machine code; good input parses exactly."""

from __future__ import annotations

import base64

import orjson
import pytest

from stream.errors import InvalidEvent
from stream.pipeline.validation import (
    ERROR_CODES,
    dead_letter,
    parse_label,
    parse_time,
    parse_transaction,
    transaction_from_dict,
)

GOOD = {
    "transaction_id": "t-1",
    "account_id": "acc-1",
    "timestamp": "2026-03-01T10:00:00-05:00",
    "amount": 120.5,
    "channel": "pos",
    "merchant_id": "m-9",
    "latitude": -12.05,
    "longitude": -77.04,
    "bank_internal_code": "XYZ",
}


def _bad(obj: object) -> str:
    raw = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    with pytest.raises(InvalidEvent) as info:
        parse_transaction(raw)
    assert info.value.code in ERROR_CODES
    return info.value.code


def test_good_transaction_parses_all_fields():
    tx = parse_transaction(orjson.dumps(GOOD))
    assert tx.transaction_id == "t-1" and tx.account_id == "acc-1"
    assert tx.ts == 1772377200.0  # 15:00 UTC
    assert tx.amount == 120.5 and tx.currency == "PEN"
    assert tx.channel == "pos" and tx.merchant_id == "m-9"
    assert (tx.latitude, tx.longitude) == (-12.05, -77.04)
    assert tx.extra == {"bank_internal_code": "XYZ"}  # unknown fields kept, ignored


def test_epoch_seconds_and_zulu_are_accepted():
    assert parse_time(1772377200, "t") == 1772377200.0
    assert parse_time("2026-03-01T15:00:00Z", "t") == 1772377200.0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "bad-json"),
        (b"", "bad-json"),
        (b"\xff\xfe\x00", "bad-json"),
        (b"[1, 2]", "not-an-object"),
        ({k: v for k, v in GOOD.items() if k != "amount"}, "missing-field"),
        ({k: v for k, v in GOOD.items() if k != "transaction_id"}, "missing-field"),
        ({**GOOD, "account_id": 42}, "bad-type"),
        ({**GOOD, "account_id": "  "}, "bad-type"),
        ({**GOOD, "amount": "100"}, "bad-type"),
        ({**GOOD, "amount": True}, "bad-type"),
        ({**GOOD, "amount": -5.0}, "bad-amount"),
        (b'{"transaction_id":"t","account_id":"a","timestamp":1,"amount":NaN}', "bad-json"),
        ({**GOOD, "timestamp": "yesterday"}, "bad-timestamp"),
        ({**GOOD, "timestamp": "2026-03-01T10:00:00"}, "bad-timestamp"),
        ({**GOOD, "timestamp": 1772377200000}, "bad-timestamp"),
        ({**GOOD, "timestamp": -1}, "bad-timestamp"),
        ({**GOOD, "latitude": 123.0}, "bad-value"),
        ({**GOOD, "device_id": 7}, "bad-type"),
        ({**GOOD, "account_balance": "lots"}, "bad-type"),
    ],
)
def test_each_bad_input_class_has_its_code(raw, code):
    assert _bad(raw) == code


def test_zero_amount_is_accepted():
    """A zero-amount authorisation (card verification, a card-testing probe) must be scored."""
    assert transaction_from_dict({**GOOD, "amount": 0}).amount == 0.0
    assert transaction_from_dict({**GOOD, "amount": -0.0}).amount == 0.0


def test_non_finite_amount_from_a_file_row_is_rejected():
    with pytest.raises(InvalidEvent) as info:
        transaction_from_dict({**GOOD, "amount": float("inf")})
    assert info.value.code == "bad-amount"


def test_label_parses_and_rejects():
    label = parse_label(
        orjson.dumps(
            {"transaction_id": "t", "account_id": "a", "is_fraud": True, "reported_at": "2026-03-02T00:00:00-05:00"}
        )
    )
    assert label.is_fraud is True and label.reported_at == 1772427600.0
    with pytest.raises(InvalidEvent) as info:
        parse_label(orjson.dumps({"transaction_id": "t", "account_id": "a", "is_fraud": "yes", "reported_at": 1}))
    assert info.value.code == "bad-type"
    with pytest.raises(InvalidEvent) as info:
        parse_label(b'{"transaction_id": "t"}')
    assert info.value.code == "missing-field"


def test_dead_letter_keeps_original_bytes():
    err = InvalidEvent("bad-json", "nope")
    rec = dead_letter(err, b"\xff\x00raw", "transactions", 2, 17, "2026-03-01T00:00:00+00:00")
    assert rec["error"] == "bad-json" and rec["detail"] == "nope"
    assert (rec["topic"], rec["partition"], rec["offset"]) == ("transactions", 2, 17)
    assert rec["payload_encoding"] == "base64"
    assert base64.b64decode(rec["payload"]) == b"\xff\x00raw"
    text = dead_letter(err, b'{"a":1', "transactions", 0, 1, "now")
    assert text["payload"] == '{"a":1' and text["payload_encoding"] == "utf-8"


def test_typed_field_groups_cover_exactly_the_schema():
    from features.transaction import SCHEMA_FIELDS
    from stream.pipeline import validation

    groups = validation._REQUIRED + validation._CURRENCY + validation._OPTIONAL_STR + validation._OPTIONAL_NUM
    assert sorted(groups) == sorted(SCHEMA_FIELDS) and len(groups) == len(set(groups))


def test_hostile_values_are_rejected_with_specific_codes():
    from stream.pipeline.validation import Limits, dead_letter

    base = {"transaction_id": "t", "account_id": "a", "amount": 5.0, "timestamp": "2026-01-01T00:00:00Z"}
    now = 1767225600.0
    cases = [
        ({**base, "timestamp": "9999-12-31T23:59:59-12:00"}, "bad-timestamp"),
        ({**base, "timestamp": now + 2 * 86400}, "bad-timestamp"),
        ({**base, "amount": 1e308}, "bad-amount"),
        ({**base, "merchant_id": "m" * 300}, "bad-value"),
        ({**base, "account_id": "a" * 300}, "bad-value"),
    ]
    for record, code in cases:
        with pytest.raises(InvalidEvent) as err:
            parse_transaction(orjson.dumps(record), now=now)
        assert err.value.code == code, record
    big = orjson.dumps({**base, "device_id": "d" * 100_000})
    with pytest.raises(InvalidEvent) as err:
        parse_transaction(big, now=now)
    assert err.value.code == "too-large"
    record = dead_letter(err.value, big, "transactions", 0, 1, "now", Limits().max_dead_letter_payload)
    assert record["payload_truncated"] and record["payload_bytes"] == len(big)
    assert len(record["payload"]) == Limits().max_dead_letter_payload
    # offline (no wall clock): only the absolute bound applies, history files from any year pass
    assert parse_transaction(orjson.dumps({**base, "timestamp": now + 2 * 86400})).ts == now + 2 * 86400
    with pytest.raises(InvalidEvent, match="2100"):
        parse_transaction(orjson.dumps({**base, "timestamp": "2150-01-01T00:00:00Z"}))


def test_amounts_are_converted_to_soles_and_an_unknown_currency_is_dead_lettered():
    from stream.errors import InvalidEvent
    from stream.pipeline.validation import Limits, transaction_from_dict

    base = {"transaction_id": "t1", "account_id": "a", "timestamp": 0, "amount": 100.0}
    usd = transaction_from_dict({**base, "currency": "usd", "account_balance": 40.0})
    assert (usd.amount, usd.currency, usd.original_amount, usd.account_balance) == (375.0, "USD", 100.0, 150.0)
    pen = transaction_from_dict(base)
    assert (pen.amount, pen.currency, pen.original_amount) == (100.0, "PEN", None)
    with pytest.raises(InvalidEvent) as err:
        transaction_from_dict({**base, "currency": "XYZ"})
    assert err.value.code == "bad-currency" and "PEN" in str(err.value)
    # the bound is in soles: 300 USD is over a 1,000 PEN maximum
    with pytest.raises(InvalidEvent, match="above the configured maximum") as err:
        transaction_from_dict({**base, "amount": 300.0, "currency": "USD"}, limits=Limits(max_amount=1000.0))
    assert err.value.code == "bad-amount"
    # a deployment's own table replaces the default one
    only_eur = Limits(rates={"PEN": 1.0, "EUR": 4.0})
    assert transaction_from_dict({**base, "currency": "EUR"}, limits=only_eur).amount == 400.0
    with pytest.raises(InvalidEvent):
        transaction_from_dict({**base, "currency": "USD"}, limits=only_eur)


def test_every_field_lands_in_its_own_attribute():
    """transaction_from_dict builds the Transaction positionally: each distinct value must
    come out under its own name."""
    obj = {
        "transaction_id": "t-7",
        "account_id": "acc-7",
        "timestamp": 1_700_000_000,
        "amount": 10.0,
        "currency": "usd",
        "transaction_type": "purchase",
        "account_type": "credit",
        "channel": "online",
        "merchant_id": "m-1",
        "merchant_category": "grocery",
        "counterparty_account": "acc-8",
        "account_balance": 50.0,
        "account_age_days": 12.0,
        "ip_address": "10.0.0.1",
        "device_id": "dev-1",
        "latitude": -12.0,
        "longitude": -77.0,
        "institution_id": "BCP",
        "note": "x",
    }
    tx = transaction_from_dict(obj)
    rate = tx.amount / 10.0
    for name, value in obj.items():
        if name in ("timestamp", "amount", "currency", "account_balance", "note"):
            continue
        assert getattr(tx, name) == value, name
    assert (tx.ts, tx.currency, tx.original_amount) == (1_700_000_000.0, "USD", 10.0)
    assert tx.account_balance == 50.0 * rate and rate != 1.0
    assert tx.extra == {"note": "x"}
    assert transaction_from_dict({k: v for k, v in obj.items() if k != "note"}).extra == {}


def test_empty_optional_strings_are_absent():
    tx = transaction_from_dict({**GOOD, "channel": "", "device_id": "", "merchant_id": "m-2"})
    assert (tx.channel, tx.device_id, tx.merchant_id) == (None, None, "m-2")
