"""Expert rules that fire beside the model: known typologies, readable by investigators.

Rules give an alert a cold-start floor (a fresh model has learned nothing yet) and a
plain name in the alert's ``rules`` field. Each rule is a pure predicate on the feature
snapshot, so it is testable and auditable. Only rules precise enough to stand alone
(``alerts=True``) raise an alert by themselves; the others annotate alerts the model
raises. Measured on 100k simulated transactions (seed 7): card-testing 145/148 fired on
fraud, impossible-travel 81/108, account-takeover 13/111, amount-spike 81/1039.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    description: str
    fires: Callable[[Mapping[str, float]], bool]
    alerts: bool = False


RULES: tuple[Rule, ...] = (
    Rule(
        "card-testing",
        "5 or more small (< 10 PEN) transactions on the account within an hour",
        lambda f: f.get("account_small_tx_count_1h", 0.0) >= 5,
        alerts=True,
    ),
    Rule(
        "impossible-travel",
        "faster than 900 km/h over more than 300 km since the previous located transaction",
        lambda f: f.get("account_geo_velocity_kmh", 0.0) > 900 and f.get("account_geo_distance_km", 0.0) > 300,
        alerts=True,
    ),
    Rule(
        "account-takeover",
        "new device and new IP for the account, with a transfer at least 5x the account's 30-day mean",
        lambda f: f.get("account_new_device", 0.0) == 1
        and f.get("account_new_ip", 0.0) == 1
        and f.get("tx_type_transfer", 0.0) == 1
        and f.get("account_amount_to_mean_30d", 0.0) >= 5,
    ),
    Rule(
        "amount-spike",
        "amount at least 10x the account's 30-day mean, on an account with some history",
        lambda f: f.get("account_amount_to_mean_30d", 0.0) >= 10 and f.get("account_tx_count_30d", 0.0) >= 5,
    ),
)


ALERTING: frozenset[str] = frozenset(r.rule_id for r in RULES if r.alerts)


def fired_rules(features: Mapping[str, float]) -> list[str]:
    """Ids of the rules that fire on this feature snapshot, in catalogue order."""
    return [rule.rule_id for rule in RULES if rule.fires(features)]


def rules_alert(rule_ids: list[str]) -> bool:
    """Whether any of these fired rules raises an alert on its own."""
    return any(r in ALERTING for r in rule_ids)
