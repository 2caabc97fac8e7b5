"""Plain-language reasons on crafted cases: the issue's sentences, money in the
transaction's currency, numbers rounded for people."""

from __future__ import annotations

from features.catalogue import FEATURE_NAMES
from features.transaction import Transaction
from models.detector import Scored
from models.scorer import Reason
from stream.pipeline.alerts import build_alert
from stream.pipeline.reasons import duration, history_reasons, money, number, percent, plain_reasons, reason_text

TS = 1_772_377_200.0  # 2026-03-01T15:00:00Z = 10:00 in Lima


def tx(**kw) -> Transaction:
    base = {"transaction_id": "t1", "account_id": "a1", "ts": TS, "amount": 4800.0, "merchant_id": "M-1042"}
    return Transaction(**{**base, **kw})


def snapshot(**values: float) -> dict[str, float]:
    f = dict.fromkeys(FEATURE_NAMES, 0.0)
    f.update(account_tx_count_30d=30.0, account_seconds_since_prev_tx=86_400.0, has_merchant=1.0)
    f.update(values)
    return f


def test_the_issues_examples():
    f = snapshot(
        account_amount_to_mean_30d=12.4,
        account_tx_count_1h=7.0,
        account_tx_count_30d=222.0,
        account_new_device=1.0,
        merchant_fraud_rate_30d=0.18,
        account_geo_distance_km=412.3,
        account_geo_velocity_kmh=1236.9,
    )
    t = tx()
    assert reason_text("account_amount_to_mean_30d", 12.4, f, t) == "S/ 4,800 is 12.4× this account's 30-day average"
    assert reason_text("account_tx_count_1h", 7.0, f, t) == "7 transactions in the last hour (usual: 0.3)"
    assert reason_text("account_new_device", 1.0, f, t) == "first transaction from this device"
    assert (
        reason_text("merchant_fraud_rate_30d", 0.18, f, t)
        == "merchant M-1042: 18 % of its transactions in the last 30 days were reported as fraud"
    )
    assert (
        reason_text("account_geo_distance_km", 412.3, f, t) == "412 km from the previous transaction 20 minutes earlier"
    )


def test_money_is_in_the_transactions_currency_and_rounded():
    assert money(4800.0, "PEN") == "S/ 4,800"
    assert money(4800.4, "USD") == "US$ 4,800"
    assert money(12.5, "PEN") == "S/ 12.50"
    assert money(7.0, "EUR") == "€ 7"
    assert money(1234567.0, "CLP") == "CLP 1,234,567"
    f = snapshot(account_amount_to_mean_30d=3.0)
    # a USD payment: its own amount as sent, with the soles it was converted to; the windows
    # were computed in soles and say so
    usd = tx(amount=562.5, currency="USD", original_amount=150.0)
    assert reason_text("account_amount_to_mean_30d", 3.0, f, usd).startswith("US$ 150 (S/ 562) is 3×")
    assert (
        reason_text("account_amount_sum_24h", 912.345, f, usd)
        == "S/ 912 spent by this account in the last 24 hours"
    )


def test_numbers_for_people():
    assert [number(x) for x in (412.3, 12.44, 0.29, 0.004, 7.0, 1250.0)] == [
        "412",
        "12.4",
        "0.3",
        "0.004",
        "7",
        "1,250",
    ]
    assert [percent(x) for x in (0.18, 0.004, 1.0, 0.0)] == ["18 %", "0.4 %", "100 %", "0 %"]
    assert [duration(s) for s in (40, 1200, 3 * 3600, 12 * 86400, 60)] == [
        "40 seconds",
        "20 minutes",
        "3 hours",
        "12 days",
        "60 seconds",
    ]


def test_other_windows_and_edges():
    f = snapshot(account_tx_count_24h=12.0, account_tx_count_30d=70.0)
    assert reason_text("account_tx_count_24h", 12.0, f, tx()) == "12 transactions in the last 24 hours (usual: 2 a day)"
    first = snapshot(account_tx_count_30d=1.0)
    assert (
        reason_text("account_amount_to_mean_30d", 1.0, first, tx())
        == "S/ 4,800: the account's first transaction in 30 days"
    )
    assert reason_text(
        "account_geo_velocity_kmh",
        2000.0,
        snapshot(account_geo_distance_km=900.0, account_seconds_since_prev_tx=60.0),
        tx(),
    ) == ("travel at over 2,000 km/h from the previous transaction (900 km in 60 seconds)")
    assert reason_text("merchant_fraud_rate_23d_lag7d", 0.05, f, tx()) == (
        "merchant M-1042: 5 % of its transactions 7-30 days ago were reported as fraud"
    )
    assert reason_text("tx_hour_sin", 0.5, snapshot(), tx()) == "at 10:00 Lima time"
    assert reason_text("tx_is_weekend", 1.0, snapshot(), tx()) == "on a Sunday (Lima time)"
    assert reason_text("account_amount_to_balance", 2.0, f, tx(amount=200.0, account_balance=100.0)) == (
        "S/ 200 is 2× the account balance (S/ 100)"
    )
    assert reason_text("account_small_tx_count_1h", 6.0, f, tx()) == (
        "6 transactions under S/ 10 in the last hour (card testing?)"
    )
    assert reason_text("account_new_merchant", 1.0, f, tx()) == "first transaction at merchant M-1042"


def test_model_reasons_first_then_history_without_repeating():
    f = snapshot(
        account_amount_to_mean_30d=12.4,
        account_amount_zscore_30d=9.0,
        account_new_device=1.0,
        account_geo_velocity_kmh=900.0,
        account_geo_distance_km=300.0,
        merchant_fraud_rate_30d=0.2,
    )
    model = [Reason("account_amount_zscore_30d", 9.0, 1.23456789), Reason("account_geo_distance_km", 300.0, 0.5)]
    out = plain_reasons(model, f, tx())
    assert [r["source"] for r in out] == ["model", "model", "history", "history"]
    assert [r["feature"] for r in out[2:]] == ["account_new_device", "merchant_fraud_rate_30d"]
    assert out[0]["contribution"] == 1.234568 and out[2]["contribution"] == 0.0
    assert out[0]["text"] == "S/ 4,800 is +9.0 standard deviations from this account's 30-day average (average S/ 387)"


def test_quiet_transactions_have_no_history_reasons():
    assert history_reasons(snapshot(account_amount_to_mean_30d=1.1, account_tx_count_1h=1.0), tx()) == []
    # a young account with one earlier transaction: no "12x its average" on a thin history
    assert history_reasons(snapshot(account_amount_to_mean_30d=12.0, account_tx_count_30d=2.0), tx()) == []


def test_alert_records_carry_the_sentences():
    f = snapshot(account_new_device=1.0)
    alert = build_alert(
        tx(currency="USD"),
        f,
        Scored(0.9, True, [Reason("account_new_device", 1.0, 0.7)]),
        0.5,
        "m.g1",
        ["rule"],
        TS + 1,
    )
    assert alert["reasons"] == [
        {
            "feature": "account_new_device",
            "value": 1.0,
            "contribution": 0.7,
            "text": "first transaction from this device",
            "source": "model",
        }
    ]
    assert alert["currency"] == "USD"


def test_the_console_says_where_a_reason_without_contribution_comes_from():
    from console.pages import _weight

    assert _weight({"contribution": 0.25, "source": "model"}) == "contribution +0.250"
    assert _weight({"contribution": 0.0, "source": "history"}) == "from the account's history, not the model"
