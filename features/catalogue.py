"""The feature catalogue: what every feature means, where it comes from, how to say it.

One entry per feature, in model-input order (account features, then merchant features).
``kuntur features`` prints it, alerts use :func:`describe` to turn a feature value into
the plain-language reason an analyst reads, and tests check that it matches exactly the
features :mod:`features.account` and :mod:`features.merchant` produce.

Source fields use the names of the Transaction JSON schema (``timestamp``, ``amount``,
...); ``label.is_fraud`` is the fraud outcome from the labels topic.

>>> describe("account_tx_count_1h", 7.0)
'7 transactions by this account in the last hour'
>>> describe("tx_is_night", 0.0)
'during the day (06:00-22:00 Lima time)'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from features.account import ACCOUNT_FEATURES
from features.merchant import MERCHANT_FEATURES
from features.transaction import ACCOUNT_TYPES, CHANNELS, TRANSACTION_TYPES

__all__ = [
    "CATALOGUE",
    "FEATURE_NAMES",
    "FEATURE_TYPES",
    "FeatureSpec",
    "WINDOW_NAMES",
    "describe",
    "format_catalogue",
    "spec",
]

FEATURE_TYPES = ("numeric", "binary", "cyclic", "one-hot", "ratio")
WINDOW_NAMES = ("1h", "24h", "7d", "30d")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Catalogue entry of one feature.

    ``template`` is formatted with ``value=`` to give an alert reason. For ``binary`` and
    ``one-hot`` features it describes the value 1 and ``template_off`` the value 0.
    """

    name: str
    description: str
    source_fields: tuple[str, ...]
    window: str | None
    type: str
    template: str
    template_off: str = ""


_PERIOD = {"1h": "hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days"}
# Exact tiled window definitions (see features.windows).
_SPAN = {
    "1h": "the last hour (the current 10-minute tile and the 5 before)",
    "24h": "the last 24 hours (the current 2-hour tile and the 11 before)",
    "7d": "the last 7 days (the current UTC day and the 6 before)",
    "30d": "the last 30 days (the current UTC day and the 29 before)",
}
_ACCOUNT_TIME = ("account_id", "timestamp")
_ACCOUNT_AMOUNT = ("account_id", "timestamp", "amount")
_MERCHANT_TIME = ("merchant_id", "timestamp")
_LIMA = "Lima time (UTC-5)"


def _account_windows() -> list[FeatureSpec]:
    specs = []
    rows = (
        (
            "tx_count",
            "Transactions by the account in the window, this one included.",
            _ACCOUNT_TIME,
            "{value:.0f} transactions by this account in the last {period}",
        ),
        (
            "amount_sum",
            "Total amount of the account's transactions in the window, this one included.",
            _ACCOUNT_AMOUNT,
            "PEN {value:,.2f} spent by this account in the last {period}",
        ),
        (
            "amount_mean",
            "Mean amount of the account's transactions in the window, this one included.",
            _ACCOUNT_AMOUNT,
            "average amount PEN {value:,.2f} over the last {period}",
        ),
        (
            "amount_std",
            "Population standard deviation of the amounts in the window, this one included.",
            _ACCOUNT_AMOUNT,
            "amounts vary by PEN {value:,.2f} (std) over the last {period}",
        ),
        (
            "amount_max",
            "Largest amount in the window, this one included.",
            _ACCOUNT_AMOUNT,
            "largest amount PEN {value:,.2f} in the last {period}",
        ),
    )
    for stem, description, sources, template in rows:
        for window in WINDOW_NAMES:
            period = _PERIOD[window]
            specs.append(
                FeatureSpec(
                    f"account_{stem}_{window}",
                    description.replace("the window", _SPAN[window]),
                    sources,
                    window,
                    "numeric",
                    template.replace("{period}", period),
                )
            )
    return specs


def _one_hots(prefix: str, field: str, values: tuple[str, ...], what: str) -> list[FeatureSpec]:
    specs = [
        FeatureSpec(
            f"{prefix}_{v}",
            f"1 if the {what} is '{v}'.",
            (field,),
            None,
            "one-hot",
            f"{what} is {v}",
            f"{what} is not {v}",
        )
        for v in values
    ]
    specs.append(
        FeatureSpec(
            f"{prefix}_unknown",
            f"1 if the {what} is absent or not one of {', '.join(values)}.",
            (field,),
            None,
            "one-hot",
            f"{what} not given or unrecognised",
            f"{what} given",
        )
    )
    return specs


def _binary(
    name: str, description: str, sources: tuple[str, ...], on: str, off: str
) -> FeatureSpec:
    return FeatureSpec(name, description, sources, None, "binary", on, off)


_ACCOUNT_SPECS = [
    *_account_windows(),
    FeatureSpec(
        "account_small_tx_count_1h",
        f"Transactions under PEN 10 by the account in {_SPAN['1h']}: card-testing probes.",
        _ACCOUNT_AMOUNT,
        "1h",
        "numeric",
        "{value:.0f} small (< PEN 10) transactions in the last hour",
    ),
    FeatureSpec(
        "account_seconds_since_prev_tx",
        "Seconds since the account's newest earlier transaction; 30 days when none.",
        _ACCOUNT_TIME,
        None,
        "numeric",
        "{value:,.0f} seconds since this account's previous transaction",
    ),
    FeatureSpec(
        "account_amount_to_mean_30d",
        "Amount divided by the account's 30-day mean amount before this transaction"
        " (1 with no history).",
        _ACCOUNT_AMOUNT,
        "30d",
        "ratio",
        "amount is {value:,.1f}x this account's 30-day average",
    ),
    FeatureSpec(
        "account_amount_zscore_30d",
        "Standard score of the amount against the account's 30-day history before it "
        "(std floored at 5% of the mean, clipped to +-50; 0 with under 2 transactions).",
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
    _binary(
        "tx_is_weekend",
        f"1 on Saturday or Sunday in {_LIMA}.",
        ("timestamp",),
        "on a weekend (Lima time)",
        "on a weekday (Lima time)",
    ),
    _binary(
        "tx_is_night",
        f"1 between 22:00 and 06:00 in {_LIMA}.",
        ("timestamp",),
        "at night (22:00-06:00 Lima time)",
        "during the day (06:00-22:00 Lima time)",
    ),
    _binary(
        "account_new_merchant",
        "1 if the account has history and this merchant is not among its last 16 merchants.",
        ("account_id", "merchant_id"),
        "merchant new for this account",
        "merchant used by this account before (or account new)",
    ),
    _binary(
        "account_new_device",
        "1 if the account has history and this device is not among its last 8 devices.",
        ("account_id", "device_id"),
        "device new for this account",
        "device used by this account before (or account new)",
    ),
    _binary(
        "account_new_ip",
        "1 if the account has history and this IP address is not among its last 8 IPs.",
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
        "(interval floored at 60 s, capped at 2000 km/h; 0 when not computable).",
        ("account_id", "timestamp", "latitude", "longitude"),
        None,
        "numeric",
        "implied travel speed of {value:,.0f} km/h since the previous located transaction",
    ),
    *_one_hots("tx_type", "transaction_type", TRANSACTION_TYPES, "transaction type"),
    *_one_hots("tx_channel", "channel", CHANNELS, "channel"),
    *_one_hots("account_type", "account_type", ACCOUNT_TYPES, "account type"),
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
        "Amount divided by the reported account balance (0 when absent; 100 when the "
        "balance is zero or negative; capped at 100).",
        ("amount", "account_balance"),
        None,
        "ratio",
        "amount is {value:,.2f}x the account balance",
    ),
]

_MERCHANT_SPECS = [
    *(
        FeatureSpec(
            f"merchant_tx_count_{w}",
            f"Transactions at the merchant in {_SPAN[w]}, this one included.",
            _MERCHANT_TIME,
            w,
            "numeric",
            f"{{value:.0f}} transactions at this merchant in the last {_PERIOD[w]}",
        )
        for w in WINDOW_NAMES
    ),
    FeatureSpec(
        "merchant_amount_mean_7d",
        f"Mean amount at the merchant in {_SPAN['7d']}, this transaction included.",
        (*_MERCHANT_TIME, "amount"),
        "7d",
        "numeric",
        "average amount PEN {value:,.2f} at this merchant over the last 7 days",
    ),
    *(
        FeatureSpec(
            f"merchant_fraud_count_{w}",
            f"Fraud labels received so far for transactions at the merchant in {_SPAN[w]}"
            " (by transaction event time).",
            (*_MERCHANT_TIME, "label.is_fraud"),
            w,
            "numeric",
            f"{{value:.0f}} reported frauds at this merchant in the last {_PERIOD[w]}",
        )
        for w in ("7d", "30d")
    ),
    *(
        FeatureSpec(
            f"merchant_fraud_rate_{w}",
            f"Reported frauds divided by transactions at the merchant in {_SPAN[w]} "
            "(0 with no transactions, capped at 1).",
            (*_MERCHANT_TIME, "label.is_fraud"),
            w,
            "ratio",
            f"{{value:.1%}} of this merchant's transactions in the last {_PERIOD[w]}"
            " reported as fraud",
        )
        for w in ("7d", "30d")
    ),
    _binary(
        "has_merchant",
        "1 if the transaction names a merchant (merchant features are all 0 otherwise).",
        ("merchant_id",),
        "merchant identified",
        "no merchant given",
    ),
]

#: Every feature, account features first then merchant features, in model-input order.
CATALOGUE: tuple[FeatureSpec, ...] = tuple(_ACCOUNT_SPECS + _MERCHANT_SPECS)
FEATURE_NAMES: tuple[str, ...] = ACCOUNT_FEATURES + MERCHANT_FEATURES

_BY_NAME = {s.name: s for s in CATALOGUE}
if tuple(_BY_NAME) != FEATURE_NAMES:  # pragma: no cover - caught by the unit tests too
    raise RuntimeError("feature catalogue is out of step with the feature extractors")


def spec(name: str) -> FeatureSpec:
    """The catalogue entry of ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]


def describe(name: str, value: float) -> str:
    """Plain-language reason text for one feature value.

    Binary and one-hot features read their on/off text (value >= 0.5 is on). A name
    that is not in the catalogue (e.g. a feature a model derives itself) falls back to
    ``"name = value"`` rather than failing an alert.

    >>> describe("merchant_fraud_rate_7d", 0.25)
    "25.0% of this merchant's transactions in the last 7 days reported as fraud"
    >>> describe("some_model_feature", 1.5)
    'some_model_feature = 1.5'
    """
    entry = _BY_NAME.get(name)
    if entry is None:
        return f"{name} = {value:g}"
    if entry.type in ("binary", "one-hot") and value < 0.5:
        return entry.template_off.format(value=value)
    return entry.template.format(value=value)


_COLUMNS = ("name", "type", "window", "source_fields", "description")


def _cells(entry: FeatureSpec) -> tuple[str, ...]:
    return (
        entry.name,
        entry.type,
        entry.window or "-",
        ", ".join(entry.source_fields),
        entry.description,
    )


def format_catalogue(fmt: str = "table") -> str:
    """The catalogue as aligned text (``"table"``), ``"json"`` or ``"markdown"``.

    >>> print(format_catalogue("table").splitlines()[0].split())
    ['NAME', 'TYPE', 'WINDOW', 'SOURCE', 'FIELDS', 'DESCRIPTION']
    """
    if fmt == "json":
        return json.dumps(
            [{**asdict(e), "source_fields": list(e.source_fields)} for e in CATALOGUE],
            indent=2,
            ensure_ascii=False,
        )
    rows = [_cells(e) for e in CATALOGUE]
    if fmt == "markdown":
        header = "| " + " | ".join(c.replace("_", " ") for c in _COLUMNS) + " |"
        lines = [header, "|" + "---|" * len(_COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "table":
        titles = tuple(c.replace("_", " ").upper() for c in _COLUMNS)
        widths = [max(len(r[i]) for r in (titles, *rows)) for i in range(len(_COLUMNS) - 1)]
        lines = []
        for r in (titles, *rows):
            cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
            lines.append("  ".join([*cells, r[-1]]))
        return "\n".join(lines)
    raise ValueError(f"unknown catalogue format {fmt!r}; use 'table', 'json' or 'markdown'")
