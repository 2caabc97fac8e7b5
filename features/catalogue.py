"""The feature catalogue: what every feature means, where it comes from, how to say it.

Derived from the specs in :mod:`features.definitions`, one entry per feature in
model-input order (account features, then merchant features). ``kuntur features``
prints it, alerts use :func:`describe` to turn a feature value into the plain-language
reason an analyst reads, and code that reads features by name checks the name with
:func:`feature` when it is defined (``models.rules`` does so at import).

>>> describe("account_tx_count_1h", 7.0)
'7 transactions by this account in the last hour'
>>> describe("tx_is_night", 0.0)
'during the day (06:00-22:00 Lima time)'
"""

from __future__ import annotations

import json
from difflib import get_close_matches

from features.definitions import ACCOUNT_FEATURES, ACCOUNT_SPECS, MERCHANT_FEATURES, MERCHANT_SPECS
from features.errors import UnknownFeatureError
from features.specs import FEATURE_TYPES, WINDOW_NAMES, FeatureSpec

__all__ = [
    "CATALOGUE",
    "FEATURE_NAMES",
    "FEATURE_TYPES",
    "FeatureSpec",
    "WINDOW_NAMES",
    "describe",
    "feature",
    "format_catalogue",
    "spec",
]

#: Every feature, account features first then merchant features, in model-input order.
CATALOGUE: tuple[FeatureSpec, ...] = ACCOUNT_SPECS + MERCHANT_SPECS
FEATURE_NAMES: tuple[str, ...] = ACCOUNT_FEATURES + MERCHANT_FEATURES

_BY_NAME = {s.name: s for s in CATALOGUE}
if len(_BY_NAME) != len(CATALOGUE):  # pragma: no cover - caught by the unit tests too
    raise RuntimeError("two feature specs have the same name")


def spec(name: str) -> FeatureSpec:
    """The catalogue entry of ``name`` (:class:`UnknownFeatureError`, a ``KeyError``, if none)."""
    entry = _BY_NAME.get(name)
    if entry is None:
        close = get_close_matches(name, FEATURE_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownFeatureError(f"{name!r} is not a feature in the catalogue{hint}")
    return entry


def feature(name: str) -> str:
    """``name``, checked to be a catalogue feature: call it where a name is defined.

    >>> feature("account_new_ip")
    'account_new_ip'
    >>> feature("account_new_ips")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    features.errors.UnknownFeatureError: 'account_new_ips' is not a feature ...; did you mean 'account_new_ip'?
    """
    return spec(name).name


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
#: Fields of the JSON output, in order (how a feature is computed is in the description).
_JSON_FIELDS = ("name", "description", "source_fields", "window", "type", "template", "template_off")


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
        rows = [{f: getattr(e, f) for f in _JSON_FIELDS} for e in CATALOGUE]
        for row in rows:
            row["source_fields"] = list(row["source_fields"])
        return json.dumps(rows, indent=2, ensure_ascii=False)
    cells = [_cells(e) for e in CATALOGUE]
    if fmt == "markdown":
        header = "| " + " | ".join(c.replace("_", " ") for c in _COLUMNS) + " |"
        lines = [header, "|" + "---|" * len(_COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells]
        return "\n".join(lines)
    if fmt == "table":
        titles = tuple(c.replace("_", " ").upper() for c in _COLUMNS)
        widths = [max(len(r[i]) for r in (titles, *cells)) for i in range(len(_COLUMNS) - 1)]
        lines = []
        for r in (titles, *cells):
            padded = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
            lines.append("  ".join([*padded, r[-1]]))
        return "\n".join(lines)
    raise ValueError(f"unknown catalogue format {fmt!r}; use 'table', 'json' or 'markdown'")
