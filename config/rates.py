"""Exchange rates to soles (PEN): the one table every amount is converted with.

Amounts in a transaction are in its ``currency``; every window, ratio, rule ("< S/ 10") and
bound (``max_amount``) works in PEN, so a dollarised account's USD card payments and its PEN
transfers add up. A currency without a rate here (or in the ``currency_rates`` setting,
which replaces this table in a deployment) is dead-lettered as ``bad-currency``.

Versioned: change :data:`RATES_VERSION` with the table, so a backtest says which rates it
used. Reference: SBS's published average rates for the version's month.

>>> to_pen(100.0, "USD"), to_pen(5.0, "PEN")
(375.0, 5.0)
>>> parse_rates("USD=3.8, eur=4.1")["EUR"]
4.1
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PEN_PER_UNIT", "RATES_VERSION", "parse_rates", "to_pen"]

RATES_VERSION = "2026-11"

#: Soles per unit of each currency accepted.
PEN_PER_UNIT: Mapping[str, float] = {
    "PEN": 1.0,
    "USD": 3.75,
    "EUR": 4.05,
}


def to_pen(amount: float, currency: str, rates: Mapping[str, float] = PEN_PER_UNIT) -> float:
    """``amount`` of ``currency`` in soles (``KeyError`` for a currency without a rate)."""
    return amount * rates[currency.upper()]


def parse_rates(text: str) -> dict[str, float]:
    """``"USD=3.75,EUR=4.05"`` → a rates table (PEN is always 1); ``ValueError`` if malformed."""
    rates = {"PEN": 1.0}
    for part in text.split(","):
        if not part.strip():
            continue
        code, sep, value = part.partition("=")
        code = code.strip().upper()
        if not sep or len(code) != 3 or not code.isalpha():
            raise ValueError(f"bad currency rate {part.strip()!r}: write CODE=SOLES_PER_UNIT, e.g. USD=3.75")
        rate = float(value)
        if not rate > 0 or rate == float("inf"):
            raise ValueError(f"bad currency rate {part.strip()!r}: the rate must be a positive number")
        rates[code] = rate
    return rates
