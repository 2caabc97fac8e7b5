"""Each rule fires on its typology and stays quiet on ordinary traffic."""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path

import pytest

import models.rules
from features.catalogue import FEATURE_NAMES
from features.errors import UnknownFeatureError
from models.rules import RULES, Condition, fired_rules, rules_alert

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


def test_rules_read_only_catalogue_features():
    assert {name for r in RULES for name in r.features} <= set(FEATURE_NAMES)
    assert RULES[0].features == ("account_small_tx_count_1h",)


def _import_rules_with(source: str) -> None:
    """Import a variant of models/rules.py under another module name."""
    spec = importlib.util.spec_from_loader("_rules_variant", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_rules_variant"] = module
    try:
        exec(compile(source, "models/rules.py", "exec"), module.__dict__)
    finally:
        del sys.modules["_rules_variant"]


def test_a_misspelt_or_renamed_feature_fails_at_import():
    source = Path(models.rules.__file__).read_text()
    _import_rules_with(source)  # the module as it is imports cleanly
    for old, new in [
        ('"account_new_ip"', '"account_new_ips"'),  # misspelt
        ('"account_tx_count_30d"', '"account_tx_count_30_days"'),  # renamed in the catalogue
    ]:
        assert old in source
        with pytest.raises(UnknownFeatureError, match=new.strip('"')):
            _import_rules_with(source.replace(old, new))


def test_conditions_check_their_feature_and_operator():
    with pytest.raises(UnknownFeatureError, match="did you mean 'account_new_device'"):
        Condition("account_new_devices", "==", 1.0)
    with pytest.raises(ValueError, match="operator"):
        Condition("account_new_device", "~", 1.0)


def test_a_missing_feature_is_an_error_not_zero():
    """The old `.get(name, 0.0)` read a missing feature as 0 and quietly never fired."""
    with pytest.raises(KeyError, match="account_small_tx_count_1h"):
        fired_rules({k: v for k, v in ORDINARY.items() if k != "account_small_tx_count_1h"})


def test_docstring_examples_run():
    result = doctest.testmod(models.rules)
    assert result.attempted > 0 and result.failed == 0
