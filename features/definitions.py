"""Every feature, defined once: its spec, in model-input order.

The catalogue (:mod:`features.catalogue`, ``kuntur features``), the vector order
(:data:`ACCOUNT_FEATURES`, :data:`MERCHANT_FEATURES`, ``FEATURE_NAMES``) and the alert
reason texts are all derived from the specs below; the extractors fill their feature
dicts by these names and ``tests/unit/test_catalogue.py`` recomputes every feature from
its definition here. To add a feature: add its spec, compute it in the extractor its
``stage`` names, and give the test its reference definition.

The parameters of the definitions (thresholds, caps, memory sizes) are constants here,
so the description says what the code does. Changing one that the state layout depends
on (the memory sizes) needs a new state layout version.

Source fields use the names of the Transaction JSON schema (``timestamp``, ``amount``,
...); ``label.is_fraud`` is the fraud outcome from the labels topic.
"""

from __future__ import annotations

from features.geo import MAX_SPEED_KMH, MIN_INTERVAL_S
from features.specs import FeatureSpec, binary, one_hot, window_period, windowed
from features.transaction import ACCOUNT_TYPES, CHANNELS, TRANSACTION_TYPES
from features.windows import DAY_S

__all__ = ["ACCOUNT_FEATURES", "ACCOUNT_SPECS", "MERCHANT_FEATURES", "MERCHANT_SPECS"]

SMALL_AMOUNT = 10.0  # PEN; card testers probe with tiny amounts
NO_PREVIOUS_S = 30 * DAY_S
AMOUNT_RATIO_CAP = 1000.0
ZSCORE_CAP = 50.0
ZSCORE_MIN_STD_FRACTION = 0.05
BALANCE_RATIO_CAP = 100.0
MAX_MERCHANTS = 16
MAX_CATEGORIES = 8
MAX_DEVICES = 8
MAX_IPS = 8
LIMA_UTC_OFFSET_H = -5  # Peru keeps no daylight saving time
NIGHT_START_H = 22
NIGHT_END_H = 6
#: Label-aware risk counts only transactions at least this many days old (UTC day tiles):
#: with labels reported days late, a fraction over the last few days would divide by
#: transactions whose outcome cannot be known yet (the literature's "delay period").
FRAUD_LAG_DAYS = 7
#: Lengths (days) of the label-aware windows that end FRAUD_LAG_DAYS before today.
LAGGED_WINDOWS_DAYS = (7, 30 - FRAUD_LAG_DAYS)
#: Reported frauds an account remembers (their transactions' event times, newest kept).
MAX_FRAUDS = 8
#: An applied fraud label counts toward its account's features from this long (event time)
#: after the scored stream reached it: the margin within which a worker's account stage,
#: ahead of its scoring stage, still sees it exactly when `kuntur evaluate` does.
FRAUD_KNOWN_AFTER_S = 3600.0
EMPTIED_LEFT = 1.0  # PEN; a transaction that leaves less than this (and does not overdraw) empties the account
COUNT_CAP = 65535

_ACCOUNT_TIME = ("account_id", "timestamp")
_ACCOUNT_AMOUNT = ("account_id", "timestamp", "amount")
_MERCHANT_TIME = ("merchant_id", "timestamp")
_LIMA = f"Lima time (UTC{LIMA_UTC_OFFSET_H:+d})"
_NIGHT = f"{NIGHT_START_H:02d}:00-{NIGHT_END_H:02d}:00"
_ALL = ("1h", "24h", "7d", "30d")


def _account_window(
    on: str, how: str, description: str, sources: tuple[str, ...], template: str
) -> tuple[FeatureSpec, ...]:
    return windowed("account", on, how, _ALL, description, sources, template)


ACCOUNT_SPECS: tuple[FeatureSpec, ...] = (
    *_account_window(
        "tx",
        "count",
        "Transactions by the account in {span}, this one included.",
        _ACCOUNT_TIME,
        "{value:.0f} transactions by this account in the last {period}",
    ),
    *_account_window(
        "amount",
        "sum",
        "Total amount of the account's transactions in {span}, this one included.",
        _ACCOUNT_AMOUNT,
        "PEN {value:,.2f} spent by this account in the last {period}",
    ),
    *_account_window(
        "amount",
        "mean",
        "Mean amount of the account's transactions in {span}, this one included.",
        _ACCOUNT_AMOUNT,
        "average amount PEN {value:,.2f} over the last {period}",
    ),
    *_account_window(
        "amount",
        "std",
        "Population standard deviation of the amounts in {span}, this one included.",
        _ACCOUNT_AMOUNT,
        "amounts vary by PEN {value:,.2f} (std) over the last {period}",
    ),
    *_account_window(
        "amount",
        "max",
        "Largest amount in {span}, this one included.",
        _ACCOUNT_AMOUNT,
        "largest amount PEN {value:,.2f} in the last {period}",
    ),
    *windowed(
        "account",
        "small_tx",
        "count",
        ("1h",),
        f"Transactions under PEN {SMALL_AMOUNT:g} by the account in {{span}}: card-testing probes.",
        _ACCOUNT_AMOUNT,
        f"{{value:.0f}} small (< PEN {SMALL_AMOUNT:g}) transactions in the last {{period}}",
    ),
    FeatureSpec(
        "account_seconds_since_prev_tx",
        "Seconds since the account's newest earlier-seen transaction (absolute: it can be newer than this"
        f" one), capped at {NO_PREVIOUS_S / DAY_S:g} days; {NO_PREVIOUS_S / DAY_S:g} days when none.",
        _ACCOUNT_TIME,
        None,
        "numeric",
        "{value:,.0f} seconds since this account's previous transaction",
    ),
    FeatureSpec(
        "account_amount_to_mean_30d",
        "Amount divided by the account's 30-day mean amount before this transaction"
        f" (1 with no history, capped at {AMOUNT_RATIO_CAP:g}).",
        _ACCOUNT_AMOUNT,
        "30d",
        "ratio",
        "amount is {value:,.1f}x this account's 30-day average",
    ),
    FeatureSpec(
        "account_amount_zscore_30d",
        "Standard score of the amount against the account's 30-day history before it "
        f"(std floored at {ZSCORE_MIN_STD_FRACTION:.0%} of the mean, clipped to +-{ZSCORE_CAP:g};"
        " 0 with under 2 transactions).",
        _ACCOUNT_AMOUNT,
        "30d",
        "numeric",
        "amount is {value:+.1f} standard deviations from this account's 30-day average",
    ),
    FeatureSpec(
        "tx_amount_log1p",
        "Natural log of (1 + amount): the amount on a scale where doubling adds ~0.7.",
        ("amount",),
        None,
        "numeric",
        "amount on a log scale: {value:.2f}",
    ),
    FeatureSpec(
        "tx_hour_sin",
        f"Sine of the time of day (fractional hour / 24) in {_LIMA}.",
        ("timestamp",),
        None,
        "cyclic",
        "time of day, sine component {value:+.2f} (Lima time)",
    ),
    FeatureSpec(
        "tx_hour_cos",
        f"Cosine of the time of day (fractional hour / 24) in {_LIMA}.",
        ("timestamp",),
        None,
        "cyclic",
        "time of day, cosine component {value:+.2f} (Lima time)",
    ),
    FeatureSpec(
        "tx_dow_sin",
        f"Sine of the day of week (Monday = 0, / 7) in {_LIMA}.",
        ("timestamp",),
        None,
        "cyclic",
        "day of week, sine component {value:+.2f} (Lima time)",
    ),
    FeatureSpec(
        "tx_dow_cos",
        f"Cosine of the day of week (Monday = 0, / 7) in {_LIMA}.",
        ("timestamp",),
        None,
        "cyclic",
        "day of week, cosine component {value:+.2f} (Lima time)",
    ),
    binary(
        "tx_is_weekend",
        f"1 on Saturday or Sunday in {_LIMA}.",
        ("timestamp",),
        "on a weekend (Lima time)",
        "on a weekday (Lima time)",
    ),
    binary(
        "tx_is_night",
        f"1 between {NIGHT_START_H:02d}:00 and {NIGHT_END_H:02d}:00 in {_LIMA}.",
        ("timestamp",),
        f"at night ({_NIGHT} Lima time)",
        f"during the day ({NIGHT_END_H:02d}:00-{NIGHT_START_H:02d}:00 Lima time)",
    ),
    binary(
        "account_new_merchant",
        f"1 if the account has history and this merchant is not among its last {MAX_MERCHANTS} merchants.",
        ("account_id", "merchant_id"),
        "merchant new for this account",
        "merchant used by this account before (or account new)",
    ),
    binary(
        "account_new_device",
        f"1 if the account has history and this device is not among its last {MAX_DEVICES} devices.",
        ("account_id", "device_id"),
        "device new for this account",
        "device used by this account before (or account new)",
    ),
    binary(
        "account_new_ip",
        f"1 if the account has history and this IP address is not among its last {MAX_IPS} IPs.",
        ("account_id", "ip_address"),
        "IP address new for this account",
        "IP address used by this account before (or account new)",
    ),
    FeatureSpec(
        "account_geo_distance_km",
        "Great-circle distance (km) from the account's newest earlier located transaction.",
        ("account_id", "latitude", "longitude"),
        None,
        "numeric",
        "{value:,.0f} km from this account's previous transaction location",
    ),
    FeatureSpec(
        "account_geo_velocity_kmh",
        "Travel speed (km/h) implied since the newest earlier located transaction "
        f"(interval floored at {MIN_INTERVAL_S:g} s, capped at {MAX_SPEED_KMH:g} km/h; 0 when not computable).",
        ("account_id", "timestamp", "latitude", "longitude"),
        None,
        "numeric",
        "implied travel speed of {value:,.0f} km/h since the previous located transaction",
    ),
    *one_hot("account", "tx_type", "transaction_type", TRANSACTION_TYPES, "transaction type"),
    *one_hot("account", "tx_channel", "channel", CHANNELS, "channel"),
    *one_hot("account", "account_type", "account_type", ACCOUNT_TYPES, "account type"),
    FeatureSpec(
        "account_age_days",
        "Age of the account in days as reported by the bank (0 when absent).",
        ("account_age_days",),
        None,
        "numeric",
        "account opened {value:,.0f} days ago",
    ),
    FeatureSpec(
        "account_amount_to_balance",
        "Amount divided by the reported account balance (0 when absent; "
        f"{BALANCE_RATIO_CAP:g} when the balance is zero or negative; capped at {BALANCE_RATIO_CAP:g}).",
        ("amount", "account_balance"),
        None,
        "ratio",
        "amount is {value:,.2f}x the account balance",
    ),
    binary(
        "account_balance_emptied",
        f"1 if the reported balance is positive and the transaction leaves less than PEN {EMPTIED_LEFT:g} of it"
        " without overdrawing it (0 <= balance - amount < 1): the account drained in one go, the signature of a"
        " takeover cash-out.",
        ("amount", "account_balance"),
        "takes (nearly) the whole account balance",
        "leaves money in the account (or no balance given)",
    ),
    *(
        FeatureSpec(
            f"account_amount_to_mean_{w}",
            f"Amount divided by the account's {w} mean amount before this transaction"
            f" (1 with no history in {w}, capped at {AMOUNT_RATIO_CAP:g}): the amount against a shorter horizon"
            " than the 30-day ratio.",
            _ACCOUNT_AMOUNT,
            w,
            "ratio",
            f"amount is {{value:,.1f}}x this account's {window_period(w)} average",
        )
        for w in ("24h", "7d")
    ),
    FeatureSpec(
        "account_merchant_tx_count",
        "Earlier transactions of the account at this merchant, counted while the merchant stays among its"
        f" last {MAX_MERCHANTS} merchants (0 for a new merchant; saturates at {COUNT_CAP}).",
        ("account_id", "merchant_id"),
        None,
        "numeric",
        "{value:,.0f} earlier transactions of this account at this merchant",
    ),
    FeatureSpec(
        "account_seconds_since_merchant",
        "Seconds since the account's latest earlier transaction at this merchant (absolute, from its whole"
        f" second), capped at {NO_PREVIOUS_S / DAY_S:g} days; {NO_PREVIOUS_S / DAY_S:g} days when none among its"
        f" last {MAX_MERCHANTS} merchants.",
        ("account_id", "merchant_id", "timestamp"),
        None,
        "numeric",
        "{value:,.0f} seconds since this account last paid this merchant",
    ),
    binary(
        "account_new_category",
        f"1 if the account has history and this merchant category is not among its last {MAX_CATEGORIES}"
        " categories.",
        ("account_id", "merchant_category"),
        "merchant category new for this account",
        "merchant category used by this account before (or account new)",
    ),
    FeatureSpec(
        "account_category_share",
        "Share of the account's earlier transactions (those with a category, while it is among the last"
        f" {MAX_CATEGORIES}) that were in this merchant category; 0 when new or absent.",
        ("account_id", "merchant_category"),
        None,
        "ratio",
        "{value:.0%} of this account's earlier spending is in this category",
    ),
    *windowed(
        "account",
        "fraud",
        "count",
        ("30d",),
        "Reported frauds among the account's transactions in {span}, by transaction event time: fraud labels"
        f" applied (the scored stream had reached their report time) at least {FRAUD_KNOWN_AFTER_S / 3600:g} hour"
        " of event time before this transaction, never earlier; a repeated label counts once; among the"
        f" {MAX_FRAUDS} the account remembers (the newest by event time).",
        (*_ACCOUNT_TIME, "label.is_fraud"),
        "{value:.0f} reported frauds on this account's transactions in the last {period}",
    ),
    FeatureSpec(
        "account_days_since_reported_fraud",
        "Days from the event time of the account's most recent reported fraud (counted as in"
        " account_fraud_count_30d: a label applied at least"
        f" {FRAUD_KNOWN_AFTER_S / 3600:g} hour before) to this transaction, capped at {NO_PREVIOUS_S / DAY_S:g};"
        f" {NO_PREVIOUS_S / DAY_S:g} when none, 0 when that fraud is later than this transaction.",
        (*_ACCOUNT_TIME, "label.is_fraud"),
        None,
        "numeric",
        "{value:,.1f} days since this account's latest reported fraud",
    ),
)

MERCHANT_SPECS: tuple[FeatureSpec, ...] = (
    *windowed(
        "merchant",
        "tx",
        "count",
        _ALL,
        "Transactions at the merchant in {span}, this one included.",
        _MERCHANT_TIME,
        "{value:.0f} transactions at this merchant in the last {period}",
    ),
    *windowed(
        "merchant",
        "amount",
        "mean",
        ("7d",),
        "Mean amount at the merchant in {span}, this transaction included.",
        (*_MERCHANT_TIME, "amount"),
        "average amount PEN {value:,.2f} at this merchant over the last {period}",
    ),
    *windowed(
        "merchant",
        "fraud",
        "count",
        ("7d", "30d"),
        "Fraud labels received so far for transactions at the merchant in {span} (by transaction event time).",
        (*_MERCHANT_TIME, "label.is_fraud"),
        "{value:.0f} reported frauds at this merchant in the last {period}",
    ),
    *windowed(
        "merchant",
        "fraud",
        "rate",
        ("7d", "30d"),
        "Reported frauds divided by transactions at the merchant in {span} (0 with no transactions, capped at 1).",
        (*_MERCHANT_TIME, "label.is_fraud"),
        "{value:.1%} of this merchant's transactions in the last {period} reported as fraud",
        kind="ratio",
    ),
    *(
        FeatureSpec(
            f"merchant_fraud_rate_{n}d_lag{FRAUD_LAG_DAYS}d",
            f"Reported frauds divided by transactions at the merchant over the {n} UTC days that end"
            f" {FRAUD_LAG_DAYS} days before today (day tiles {FRAUD_LAG_DAYS} to {FRAUD_LAG_DAYS + n - 1} back), so"
            " that the denominator holds transactions whose outcome could have been reported; labels count only"
            " once they arrived (0 with no transactions, capped at 1).",
            (*_MERCHANT_TIME, "label.is_fraud"),
            None,  # a window of its own (in the 30-day tiles), defined by the description
            "ratio",
            f"{{value:.1%}} of this merchant's transactions {FRAUD_LAG_DAYS}-{FRAUD_LAG_DAYS + n} days ago"
            " reported as fraud",
            stage="merchant",
        )
        for n in LAGGED_WINDOWS_DAYS
    ),
    FeatureSpec(
        "merchant_amount_to_mean_7d",
        "Amount divided by the merchant's mean amount over the last 7 days, this transaction included"
        f" (1 when that mean is 0; capped at {AMOUNT_RATIO_CAP:g}).",
        (*_MERCHANT_TIME, "amount"),
        "7d",
        "ratio",
        "amount is {value:,.1f}x this merchant's 7-day average",
        stage="merchant",
    ),
    binary(
        "has_merchant",
        "1 if the transaction names a merchant (merchant features are all 0 otherwise).",
        ("merchant_id",),
        "merchant identified",
        "no merchant given",
        stage="merchant",
    ),
)

#: Account features in model-input order: what ``update_account`` returns.
ACCOUNT_FEATURES: tuple[str, ...] = tuple(s.name for s in ACCOUNT_SPECS)
#: Merchant features in model-input order: what ``update_merchant`` returns.
MERCHANT_FEATURES: tuple[str, ...] = tuple(s.name for s in MERCHANT_SPECS)

if {s.stage for s in ACCOUNT_SPECS} != {"account"} or {s.stage for s in MERCHANT_SPECS} != {"merchant"}:
    raise RuntimeError("a feature spec is listed under the other stage's features")  # pragma: no cover
