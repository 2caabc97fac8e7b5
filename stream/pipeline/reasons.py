"""Plain-language reasons: what an investigator (or a bank's authorisation system) reads.

An alert's reasons are built from two sources:

* the model's contributions (:meth:`models.scorer.FraudModel.explain`): the features that
  pushed this score up, strongest first (``"source": "model"``);
* the features' deviations from the account's own history, when they are strong and the
  model did not already name them (``"source": "history"``): a fresh model explains
  nothing, and a rule-only alert should still say why.

Each text says the fact with the transaction's own numbers: money in the transaction's
currency, numbers rounded for people, the merchant by its id.

>>> from features.transaction import Transaction
>>> tx = Transaction("t1", "a1", ts=1_772_377_200.0, amount=4800.0, merchant_id="M-1042")
>>> f = {"account_amount_to_mean_30d": 12.4, "account_tx_count_30d": 9.0}
>>> reason_text("account_amount_to_mean_30d", 12.4, f, tx)
"S/ 4,800 is 12.4× this account's 30-day average"
>>> reason_text("account_tx_count_1h", 7.0, {"account_tx_count_30d": 222.0}, tx)
'7 transactions in the last hour (usual: 0.3)'
>>> reason_text("merchant_fraud_rate_30d", 0.18, f, tx)
'merchant M-1042: 18 % of its transactions in the last 30 days were reported as fraud'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from features.catalogue import describe
from features.definitions import (
    FRAUD_LAG_DAYS,
    LAGGED_WINDOWS_DAYS,
    LIMA_UTC_OFFSET_H,
    NO_PREVIOUS_S,
    SMALL_AMOUNT,
)
from features.geo import MAX_SPEED_KMH
from features.transaction import Transaction
from models.scorer import Reason

__all__ = ["history_reasons", "money", "plain_reasons", "reason_text"]

#: how currencies are written in Peru (ISO code otherwise)
SYMBOLS = {"PEN": "S/", "USD": "US$", "EUR": "€"}
#: a reason list holds at most this many entries (model's first, then history's)
MAX_REASONS = 5
_HOURS_30D = 30 * 24
_WINDOW_HOURS = {"1h": 1, "24h": 24, "7d": 7 * 24, "30d": _HOURS_30D}
_WINDOW_TEXT = {"1h": "the last hour", "24h": "the last 24 hours", "7d": "the last 7 days", "30d": "the last 30 days"}
_WINDOW_ADJ = {"24h": "24-hour", "7d": "7-day", "30d": "30-day"}
_USUAL_UNIT = {"1h": "", "24h": " a day", "7d": " a week"}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LAGGED = {
    f"merchant_fraud_rate_{n}d_lag{FRAUD_LAG_DAYS}d": f"{FRAUD_LAG_DAYS}-{FRAUD_LAG_DAYS + n} days ago"
    for n in LAGGED_WINDOWS_DAYS
}


# -- numbers for people ------------------------------------------------------------------


def money(amount: float, currency: str | None) -> str:
    """``S/ 4,800``, ``S/ 12.50``, ``US$ 1,250``, ``BRL 30``: whole units from 100 up.

    >>> money(4800.0, "PEN"), money(12.5, "PEN"), money(-3.0, "USD"), money(30.0, "BRL")
    ('S/ 4,800', 'S/ 12.50', '-US$ 3', 'BRL 30')
    """
    code = (currency or "PEN").upper()
    symbol = SYMBOLS.get(code, code)
    sign, a = ("-", -amount) if amount < 0 else ("", amount)
    digits = f"{a:,.0f}" if a >= 100 or float(a).is_integer() else f"{a:,.2f}"
    return f"{sign}{symbol} {digits}"


def number(x: float) -> str:
    """A count or a measure, rounded for people: ``412``, ``12.4``, ``0.3``, ``1,250``."""
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 0.05 else f"{x:.2g}"


def times(ratio: float) -> str:
    """``12.4×``, ``150×``."""
    return f"{number(ratio)}×"


def percent(share: float) -> str:
    """``18 %``, ``0.4 %``, ``100 %``."""
    p = share * 100.0
    return f"{p:.0f} %" if p >= 1 or p == 0 else f"{p:.1f} %"


def duration(seconds: float) -> str:
    """``40 seconds``, ``20 minutes``, ``3 hours``, ``12 days``."""
    s = max(0.0, seconds)
    for unit, size, until in (("second", 1, 90), ("minute", 60, 90 * 60), ("hour", 3600, 48 * 3600)):
        if s < until:
            n = round(s / size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    n = round(s / 86400)
    return f"{n} day{'' if n == 1 else 's'}"


def _lima(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC) + timedelta(hours=LIMA_UTC_OFFSET_H)


def _usual_count(f: Mapping[str, float], window: str, count: float) -> float | None:
    """The account's usual count per ``window`` (``count`` now) over the rest of its last
    30 days (None: unknown)."""
    total = f.get("account_tx_count_30d")
    if total is None or window == "30d":
        return None
    hours = _WINDOW_HOURS[window]
    return max(0.0, total - count) / (_HOURS_30D - hours) * hours


def _gap_s(f: Mapping[str, float]) -> float | None:
    """Seconds between this transaction and the previous located one, when known."""
    km, kmh = f.get("account_geo_distance_km", 0.0), f.get("account_geo_velocity_kmh", 0.0)
    if km > 0 and 0 < kmh < MAX_SPEED_KMH:
        return km / kmh * 3600.0
    gap = f.get("account_seconds_since_prev_tx")
    return gap if gap is not None and gap < NO_PREVIOUS_S else None


# -- one feature, said plainly ------------------------------------------------------------


def reason_text(name: str, value: float, f: Mapping[str, float], tx: Transaction) -> str:
    """The sentence for feature ``name`` = ``value`` of ``tx`` (``f``: its whole feature
    vector). Features without a sentence of their own read their catalogue text."""
    merchant = tx.merchant_id or "(none)"
    # the transaction's own amount as sent (and in soles when it was another currency);
    # windows, averages and balances are in soles, what the features were computed on
    own = money(tx.amount if tx.original_amount is None else tx.original_amount, tx.currency)
    if tx.original_amount is not None:
        own += f" ({money(tx.amount, 'PEN')})"
    on = value >= 0.5
    kind, _, window = name.rpartition("_")
    if name.startswith("account_amount_to_mean_"):
        if value == 1.0 and f.get("account_tx_count_30d", 2.0) <= 1.0:
            return f"{own}: the account's first transaction in 30 days"
        return f"{own} is {times(value)} this account's {_WINDOW_ADJ.get(window, window)} average"
    if kind == "account_tx_count" and window in _WINDOW_HOURS:
        usual = _usual_count(f, window, value)
        base = f"{value:,.0f} transaction{'' if value == 1 else 's'} in {_WINDOW_TEXT[window]}"
        return base if usual is None else f"{base} (usual: {number(usual)}{_USUAL_UNIT[window]})"
    if name == "account_small_tx_count_1h":
        return f"{value:,.0f} transactions under {money(SMALL_AMOUNT, 'PEN')} in the last hour (card testing?)"
    if kind in ("account_amount_sum", "account_amount_mean", "account_amount_max", "account_amount_std"):
        what = {"account_amount_sum": "spent by this account in", "account_amount_mean": "on average in",
                "account_amount_max": "the largest amount in", "account_amount_std": "typical spread of amounts in"}
        return f"{money(value, 'PEN')} {what[kind]} {_WINDOW_TEXT.get(window, window)}"
    if name == "account_amount_zscore_30d":
        ratio = f.get("account_amount_to_mean_30d") or 0.0
        mean = f" (average {money(tx.amount / ratio, 'PEN')})" if ratio > 0 else ""
        return f"{own} is {value:+.1f} standard deviations from this account's 30-day average{mean}"
    if name == "account_new_device":
        return "first transaction from this device" if on else "a device this account used before"
    if name == "account_new_ip":
        return "first transaction from this IP address" if on else "an IP address this account used before"
    if name == "account_new_merchant":
        return f"first transaction at merchant {merchant}" if on else f"merchant {merchant} used before"
    if name == "account_new_category":
        cat = tx.merchant_category or "(none)"
        return f"first transaction in category {cat}" if on else f"category {cat} used before"
    if name == "account_geo_distance_km":
        gap = _gap_s(f)
        return f"{number(value)} km from the previous transaction" + (f" {duration(gap)} earlier" if gap else "")
    if name == "account_geo_velocity_kmh":
        km, gap = f.get("account_geo_distance_km", 0.0), _gap_s(f)
        speed = f"over {number(MAX_SPEED_KMH)}" if value >= MAX_SPEED_KMH else number(value)
        trip = f" ({number(km)} km in {duration(gap)})" if km and gap else ""
        return f"travel at {speed} km/h from the previous transaction{trip}"
    if name == "account_seconds_since_prev_tx":
        if value >= NO_PREVIOUS_S:
            return "the account's first transaction in 30 days"
        return f"{duration(value)} after the account's previous transaction"
    if name == "account_seconds_since_merchant":
        if value >= NO_PREVIOUS_S:
            return f"no transaction at merchant {merchant} in 30 days"
        return f"{duration(value)} since the account last paid merchant {merchant}"
    if name == "account_merchant_tx_count":
        return f"{value:,.0f} earlier transactions of this account at merchant {merchant}"
    if name == "account_amount_to_balance":
        bal = f" ({money(tx.account_balance, 'PEN')})" if tx.account_balance is not None else ""
        return f"{own} is {times(value)} the account balance{bal}"
    if name == "account_balance_emptied" and on:
        bal = money(tx.account_balance or 0.0, 'PEN')
        return f"{own} takes (nearly) all of a {bal} balance"
    if name == "account_category_share":
        return f"{percent(value)} of this account's earlier spending is in category {tx.merchant_category or '(none)'}"
    if name == "account_age_days":
        return f"account opened {duration(value * 86400)} ago"
    if name.startswith("merchant_fraud_rate_"):
        when = _LAGGED.get(name) or _WINDOW_TEXT.get(window, window)
        when = f"in {when}" if name not in _LAGGED else when
        return f"merchant {merchant}: {percent(value)} of its transactions {when} were reported as fraud"
    if kind == "merchant_fraud_count":
        return f"merchant {merchant}: {value:,.0f} reported frauds in {_WINDOW_TEXT.get(window, window)}"
    if kind == "merchant_tx_count":
        return f"{value:,.0f} transactions at merchant {merchant} in {_WINDOW_TEXT.get(window, window)}"
    if name == "merchant_amount_mean_7d":
        return f"merchant {merchant}: average amount {money(value, 'PEN')} over the last 7 days"
    if name == "merchant_amount_to_mean_7d":
        return f"{own} is {times(value)} merchant {merchant}'s 7-day average"
    if name in ("tx_hour_sin", "tx_hour_cos", "tx_is_night"):
        night = " (at night)" if f.get("tx_is_night", 0.0) >= 0.5 else ""
        return f"at {_lima(tx.ts):%H:%M} Lima time{night}"
    if name in ("tx_dow_sin", "tx_dow_cos", "tx_is_weekend"):
        return f"on a {_DAYS[_lima(tx.ts).weekday()]} (Lima time)"
    if name == "tx_amount_log1p":
        return f"amount {own}"
    return describe(name, value)


# -- deviations from the account's own history ---------------------------------------------


def _deviations(f: Mapping[str, float]) -> list[str]:
    """Features that deviate strongly from the account's (or merchant's) history, strongest
    kind first. Thresholds are for wording, not for alerting: the model and rules decide."""
    out: list[str] = []
    if f.get("account_amount_to_mean_30d", 0.0) >= 3.0 and f.get("account_tx_count_30d", 0.0) >= 3.0:
        out.append("account_amount_to_mean_30d")
    count_1h = f.get("account_tx_count_1h", 0.0)
    usual = _usual_count(f, "1h", count_1h)
    if count_1h >= 3.0 and usual is not None and count_1h >= 3.0 * max(usual, 0.1):
        out.append("account_tx_count_1h")
    if f.get("account_small_tx_count_1h", 0.0) >= 3.0:
        out.append("account_small_tx_count_1h")
    if f.get("account_geo_velocity_kmh", 0.0) >= 500.0:
        out.append("account_geo_distance_km")
    for name in ("account_new_device", "account_new_ip", "account_balance_emptied"):
        if f.get(name, 0.0) >= 0.5:
            out.append(name)
    rates = [n for n in ("merchant_fraud_rate_30d", *_LAGGED) if f.get(n, 0.0) >= 0.05]
    if rates:
        out.append(max(rates, key=lambda n: f[n]))
    return out


def _covers(name: str) -> str:
    """Reasons that say the same thing count once (speed and distance, both clocks...)."""
    if name in ("account_geo_velocity_kmh", "account_geo_distance_km"):
        return "geo"
    if name.startswith("account_amount_to_mean_") or name == "account_amount_zscore_30d":
        return "amount-ratio"
    if name.startswith("merchant_fraud_rate_"):
        return "merchant-fraud"
    if name.startswith("tx_hour_") or name == "tx_is_night":
        return "time-of-day"
    if name.startswith("tx_dow_") or name == "tx_is_weekend":
        return "day-of-week"
    return name


def history_reasons(f: Mapping[str, float], tx: Transaction, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Reasons from the features' deviations alone, skipping what ``exclude`` already says."""
    said = {_covers(n) for n in exclude}
    out = []
    for name in _deviations(f):
        if _covers(name) in said:
            continue
        said.add(_covers(name))
        value = float(f[name])
        out.append({"feature": name, "value": value, "text": reason_text(name, value, f, tx),
                    "contribution": 0.0, "source": "history"})
    return out


def plain_reasons(model: Sequence[Reason], f: Mapping[str, float], tx: Transaction) -> list[dict[str, Any]]:
    """The reasons of one scored transaction: the model's first (with their contribution),
    then strong deviations from history the model did not name, at most :data:`MAX_REASONS`.

    >>> tx = Transaction("t1", "a1", ts=0.0, amount=50.0, device_id="d9")
    >>> [r["text"] for r in plain_reasons([], {"account_new_device": 1.0}, tx)]
    ['first transaction from this device']
    """
    out: list[dict[str, Any]] = []
    said: set[str] = set()
    for r in model:
        if _covers(r.feature) in said:
            continue
        said.add(_covers(r.feature))
        out.append({"feature": r.feature, "value": r.value, "text": reason_text(r.feature, r.value, f, tx),
                    "contribution": round(r.contribution, 6), "source": "model"})
    out += history_reasons(f, tx, exclude=[r["feature"] for r in out])
    return out[:MAX_REASONS]
