"""The catalogue describes exactly the features the extractors produce."""

from __future__ import annotations

import json
import string

import pytest

from features.account import ACCOUNT_FEATURES, update_account
from features.catalogue import (
    CATALOGUE,
    FEATURE_NAMES,
    FEATURE_TYPES,
    WINDOW_NAMES,
    describe,
    format_catalogue,
    spec,
)
from features.merchant import MERCHANT_FEATURES, NO_MERCHANT_FEATURES, update_merchant
from features.transaction import SCHEMA_FIELDS as TRANSACTION_SCHEMA
from features.transaction import Transaction

SCHEMA_FIELDS = {*TRANSACTION_SCHEMA, "label.is_fraud"}


def test_names_are_account_then_merchant_features_in_order() -> None:
    assert FEATURE_NAMES == ACCOUNT_FEATURES + MERCHANT_FEATURES
    assert tuple(s.name for s in CATALOGUE) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 64


def test_catalogue_matches_what_the_extractors_emit() -> None:
    t = Transaction("t1", "a1", 1_700_000_000.0, 12.0, merchant_id="m1")
    emitted = (*update_account(None, t).features, *update_merchant(None, t).features)
    assert emitted == FEATURE_NAMES
    assert tuple(NO_MERCHANT_FEATURES) == MERCHANT_FEATURES


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.name)
def test_every_entry_is_complete(entry) -> None:
    assert entry.description.strip() and entry.description.endswith(".")
    assert entry.source_fields and set(entry.source_fields) <= SCHEMA_FIELDS
    assert entry.type in FEATURE_TYPES
    assert entry.window in (*WINDOW_NAMES, None)
    fields = {f for _, f, _, _ in string.Formatter().parse(entry.template) if f}
    assert fields <= {"value"}
    if entry.type in ("binary", "one-hot"):
        assert entry.template_off and entry.template_off != entry.template
    # a windowed feature says so in its name
    if entry.window is not None:
        assert entry.name.endswith("_" + entry.window)


def test_windowed_features_name_their_window() -> None:
    by_name = {e.name: e for e in CATALOGUE}
    assert by_name["account_tx_count_24h"].window == "24h"
    assert by_name["merchant_fraud_rate_30d"].window == "30d"
    assert by_name["tx_hour_sin"].window is None
    assert "10-minute tile" in by_name["account_tx_count_1h"].description


def test_describe_formats_values() -> None:
    assert describe("account_tx_count_1h", 7.0) == "7 transactions by this account in the last hour"
    assert describe("account_amount_sum_24h", 1234.5) == ("PEN 1,234.50 spent by this account in the last 24 hours")
    assert describe("account_amount_to_mean_30d", 12.34) == ("amount is 12.3x this account's 30-day average")
    assert describe("merchant_fraud_rate_7d", 0.125) == (
        "12.5% of this merchant's transactions in the last 7 days reported as fraud"
    )
    assert describe("account_geo_velocity_kmh", 1523.4) == (
        "implied travel speed of 1,523 km/h since the previous located transaction"
    )
    assert describe("account_amount_zscore_30d", -2.04) == (
        "amount is -2.0 standard deviations from this account's 30-day average"
    )


def test_describe_binary_and_one_hot_by_value() -> None:
    assert describe("account_new_device", 1.0) == "device new for this account"
    assert describe("account_new_device", 0.0).startswith("device used by this account before")
    assert describe("tx_channel_online", 1.0) == "channel is online"
    assert describe("tx_channel_online", 0.0) == "channel is not online"
    assert describe("tx_type_unknown", 1.0) == "transaction type not given or unrecognised"
    assert describe("has_merchant", 0.0) == "no merchant given"


def test_describe_every_feature_without_error() -> None:
    for name in FEATURE_NAMES:
        for value in (0.0, 1.0, 123.456):
            text = describe(name, value)
            assert text and "{" not in text


def test_describe_unknown_feature_falls_back() -> None:
    assert describe("model_bias", 0.5) == "model_bias = 0.5"
    with pytest.raises(KeyError):
        spec("model_bias")
    assert spec("has_merchant").type == "binary"


def test_format_json_parses_and_round_trips() -> None:
    data = json.loads(format_catalogue("json"))
    assert [d["name"] for d in data] == list(FEATURE_NAMES)
    first = data[0]
    assert first == {
        "name": "account_tx_count_1h",
        "description": first["description"],
        "source_fields": ["account_id", "timestamp"],
        "window": "1h",
        "type": "numeric",
        "template": "{value:.0f} transactions by this account in the last hour",
        "template_off": "",
    }


def test_format_table_is_aligned() -> None:
    lines = format_catalogue("table").splitlines()
    assert len(lines) == 1 + len(FEATURE_NAMES)
    assert lines[0].split()[:3] == ["NAME", "TYPE", "WINDOW"]
    type_col = lines[0].index("TYPE")
    assert all(line[type_col:].split()[0] in (*FEATURE_TYPES, "TYPE") for line in lines)
    assert lines[1].startswith("account_tx_count_1h ")
    assert format_catalogue() == format_catalogue("table")


def test_format_markdown() -> None:
    lines = format_catalogue("markdown").splitlines()
    assert lines[0] == "| name | type | window | source fields | description |"
    assert lines[1] == "|---|---|---|---|---|"
    assert len(lines) == 2 + len(FEATURE_NAMES)
    assert all(line.count(" | ") == 4 for line in lines[2:])


def test_format_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="yaml"):
        format_catalogue("yaml")
