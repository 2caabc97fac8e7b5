"""Each rule fires on its typology and stays quiet on ordinary traffic."""

from __future__ import annotations

import pytest

from models.rules import RULES, fired_rules, rules_alert

ORDINARY = {
    "account_small_tx_count_1h": 1.0,
    "account_geo_velocity_kmh": 30.0,
    "account_geo_distance_km": 5.0,
    "account_new_device": 0.0,
    "account_new_ip": 0.0,
    "tx_type_transfer": 1.0,
    "account_amount_to_mean_30d": 1.2,
    "account_tx_count_30d": 40.0,
}


def test_ordinary_transaction_fires_nothing():
    assert fired_rules(ORDINARY) == []


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"account_small_tx_count_1h": 5.0}, "card-testing"),
        ({"account_geo_velocity_kmh": 1500.0, "account_geo_distance_km": 1000.0}, "impossible-travel"),
        ({"account_new_device": 1.0, "account_new_ip": 1.0, "account_amount_to_mean_30d": 6.0}, "account-takeover"),
        ({"account_amount_to_mean_30d": 12.0}, "amount-spike"),
    ],
)
def test_each_rule_fires_on_its_typology(changes, rule):
    assert rule in fired_rules({**ORDINARY, **changes})


def test_boundaries_are_exact():
    assert fired_rules({**ORDINARY, "account_small_tx_count_1h": 4.0}) == []
    # fast but short hops (GPS jitter between nearby points) are not impossible travel
    assert fired_rules({**ORDINARY, "account_geo_velocity_kmh": 2000.0, "account_geo_distance_km": 50.0}) == []
    # an amount spike on an account with no history is not a spike
    assert fired_rules({**ORDINARY, "account_amount_to_mean_30d": 50.0, "account_tx_count_30d": 2.0}) == []


def test_rule_ids_are_unique_and_described():
    ids = [r.rule_id for r in RULES]
    assert len(ids) == len(set(ids)) and all(r.description for r in RULES)


def test_only_precise_rules_raise_alerts_alone():
    assert rules_alert(["card-testing"]) and rules_alert(["amount-spike", "impossible-travel"])
    assert not rules_alert(["amount-spike", "account-takeover"]) and not rules_alert([])
