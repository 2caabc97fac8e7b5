"""The catalogue describes exactly the features the extractors produce.

Every feature is recomputed here from its definition (its spec: a windowed aggregate
from its parameters, any other feature from a reference written from its description)
on a handcrafted stream, and compared with what the extractors return under its name.
Two values swapped in an extractor fail that comparison: the stream is checked to tell
every pair of features apart.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
import string
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from features.account import ACCOUNT_FEATURES, record_account_fraud, update_account
from features.catalogue import (
    CATALOGUE,
    FEATURE_NAMES,
    FEATURE_TYPES,
    WINDOW_NAMES,
    describe,
    feature,
    format_catalogue,
    spec,
)
from features.definitions import ACCOUNT_SPECS, MERCHANT_SPECS
from features.errors import UnknownFeatureError
from features.geo import haversine_km, speed_kmh, valid_point
from features.merchant import MERCHANT_FEATURES, NO_MERCHANT_FEATURES, record_merchant_fraud, update_merchant
from features.specs import FeatureSpec, window_span
from features.transaction import ACCOUNT_TYPES, CHANNELS, TRANSACTION_TYPES, Transaction
from features.transaction import SCHEMA_FIELDS as TRANSACTION_SCHEMA
from features.windows import WINDOWS

SCHEMA_FIELDS = {*TRANSACTION_SCHEMA, "label.is_fraud"}


def test_names_are_account_then_merchant_features_in_order() -> None:
    assert FEATURE_NAMES == ACCOUNT_FEATURES + MERCHANT_FEATURES
    assert tuple(s.name for s in CATALOGUE) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 76


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


def test_unknown_names_raise_with_a_suggestion() -> None:
    assert feature("account_new_ip") == "account_new_ip"
    with pytest.raises(UnknownFeatureError, match="did you mean 'account_tx_count_30d'"):
        feature("account_tx_count_30days")
    with pytest.raises(KeyError):  # spec() always raised KeyError; it still does
        spec("account_tx_count_30days")


# --- names come from parameters ----------------------------------------------------------


def test_windowed_names_are_built_from_their_parameters() -> None:
    windowed = [s for s in CATALOGUE if s.how is not None]
    assert len(windowed) == 31
    for s in windowed:
        assert s.name == f"{s.stage}_{s.on}_{s.how}_{s.window}"
        assert window_span(s.window) in s.description  # type: ignore[arg-type]
    assert {s.stage for s in ACCOUNT_SPECS} == {"account"}
    assert {s.stage for s in MERCHANT_SPECS} == {"merchant"}


def test_window_spans_follow_the_tiling() -> None:
    assert window_span("1h") == "the last hour (the current 10-minute tile and the 5 before)"
    assert window_span("7d") == "the last 7 days (the current UTC day and the 6 before)"
    assert window_span("30d") == "the last 30 days (the current UTC day and the 29 before)"
    assert WINDOW_NAMES == tuple(WINDOWS)


def test_specs_reject_what_the_catalogue_cannot_show() -> None:
    with pytest.raises(ValueError, match="type"):
        FeatureSpec("x", "X.", ("amount",), None, "fuzzy", "{value}")
    with pytest.raises(ValueError, match="window"):
        FeatureSpec("x", "X.", ("amount",), "2h", "numeric", "{value}")
    with pytest.raises(ValueError, match="stage"):
        FeatureSpec("x", "X.", ("amount",), None, "numeric", "{value}", stage="model")


# --- every feature recomputed from its definition ----------------------------------------

DAY = 86400.0
T0 = 1_699_920_000.0  # 2023-11-14 00:00 UTC
LIMA = timezone(timedelta(hours=-5))


def f32(x: float) -> float:
    return array("f", [x])[0]


@dataclass
class Seen:
    """What the reference knows when a transaction arrives at one entity."""

    tx: Transaction
    before: list[Transaction]  # this entity's earlier transactions, oldest first
    frauds: list[float] = field(default_factory=list)  # event times of reported frauds (remembered ones)


def _window(events: list[Transaction], window: str, newest: float) -> list[Transaction]:
    return [e for e in events if WINDOWS[window].contains(e.ts, newest)]


def aggregate(s: FeatureSpec, seen: Seen) -> float:
    """A windowed feature from its parameters alone: ``how`` of ``on`` over ``window``."""
    assert s.window is not None
    newest = seen.tx.ts
    events = _window([*seen.before, seen.tx], s.window, newest)
    amounts = [f32(e.amount) for e in events]
    values = {
        "tx": amounts,
        "amount": amounts,
        "small_tx": [a for a in amounts if a < 10.0],
        "fraud": [t for t in seen.frauds if WINDOWS[s.window].contains(t, newest)],
    }[s.on or ""]
    if s.how == "rate":
        return min(len(values) / len(events), 1.0) if events else 0.0
    how: dict[str, Callable[[list[float]], float]] = {
        "count": len,
        "sum": sum,
        "mean": statistics.fmean,
        "std": statistics.pstdev,
        "max": max,
    }
    return float(how[s.how or ""](values))


def _lima(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, LIMA)


def _hour_angle(seen: Seen) -> float:
    d = _lima(seen.tx.ts)
    return 2 * math.pi * (d.hour + d.minute / 60 + (d.second + d.microsecond / 1e6) / 3600) / 24


def _dow_angle(seen: Seen) -> float:
    return 2 * math.pi * _lima(seen.tx.ts).weekday() / 7


def _history_30d(seen: Seen) -> list[float]:
    return [f32(e.amount) for e in _window(seen.before, "30d", seen.tx.ts)]


def _ratio(seen: Seen) -> float:
    history = _history_30d(seen)
    if not history:
        return 1.0
    mean, amount = statistics.fmean(history), seen.tx.amount
    return amount / mean if mean * 1000.0 > amount else (1.0 if amount <= 0 else 1000.0)


def _zscore(seen: Seen) -> float:
    history = _history_30d(seen)
    if len(history) < 2:
        return 0.0
    mean = statistics.fmean(history)
    std = max(statistics.pstdev(history), 0.05 * mean)
    return max(-50.0, min(50.0, (seen.tx.amount - mean) / std))


def _new(attribute: str, capacity: int) -> Callable[[Seen], float]:
    def new(seen: Seen) -> float:
        value = getattr(seen.tx, attribute)
        if value is None or not seen.before:
            return 0.0
        recent: list[str] = []  # the last `capacity` distinct values, newest first
        for e in reversed(seen.before):
            v = getattr(e, attribute)
            if v is not None and v not in recent and len(recent) < capacity:
                recent.append(v)
        return float(value not in recent)

    return new


def _previous_fix(seen: Seen) -> Transaction | None:
    located = [e for e in seen.before if valid_point(e.latitude, e.longitude)]
    return located[-1] if located else None


def _distance(seen: Seen) -> float:
    prev, tx = _previous_fix(seen), seen.tx
    if prev is None or not valid_point(tx.latitude, tx.longitude):
        return 0.0
    return haversine_km(prev.latitude, prev.longitude, tx.latitude, tx.longitude)  # type: ignore[arg-type]


def _velocity(seen: Seen) -> float:
    prev = _previous_fix(seen)
    return speed_kmh(_distance(seen), seen.tx.ts - prev.ts) if prev else 0.0


def _to_balance(seen: Seen) -> float:
    balance = seen.tx.account_balance
    if balance is None:
        return 0.0
    return 100.0 if balance <= 0 else min(seen.tx.amount / balance, 100.0)


def _emptied(seen: Seen) -> float:
    balance = seen.tx.account_balance
    return float(balance is not None and balance > 0 and 0 <= balance - seen.tx.amount < 1.0)


def _ratio_in(window: str) -> Callable[[Seen], float]:
    def ratio(seen: Seen) -> float:
        history = [f32(e.amount) for e in _window(seen.before, window, seen.tx.ts)]
        if not history:
            return 1.0
        mean, amount = statistics.fmean(history), seen.tx.amount
        return amount / mean if mean * 1000.0 > amount else (1.0 if amount <= 0 else 1000.0)

    return ratio


def _lru(seen: Seen, attribute: str, capacity: int) -> dict[str, tuple[int, float]]:
    """The account's memory of ``attribute`` values: value -> (count, latest ts), LRU order."""
    memory: dict[str, tuple[int, float]] = {}
    for e in seen.before:
        v = getattr(e, attribute)
        if v is None:
            continue
        count, _ = memory.pop(v, (0, 0.0))
        memory[v] = (count + 1, e.ts)
        if len(memory) > capacity:
            del memory[next(iter(memory))]
    return memory


def _at_merchant(seen: Seen) -> float:
    return float(_lru(seen, "merchant_id", 16).get(seen.tx.merchant_id or "", (0, 0.0))[0])


def _since_merchant(seen: Seen) -> float:
    entry = _lru(seen, "merchant_id", 16).get(seen.tx.merchant_id or "")
    return min(abs(seen.tx.ts - math.floor(entry[1])), 30 * DAY) if entry else 30 * DAY


def _new_category(seen: Seen) -> float:
    category = seen.tx.merchant_category
    return float(category is not None and bool(seen.before) and category not in _lru(seen, "merchant_category", 8))


def _category_share(seen: Seen) -> float:
    memory = _lru(seen, "merchant_category", 8)
    entry = memory.get(seen.tx.merchant_category or "")
    return entry[0] / sum(c for c, _ in memory.values()) if entry else 0.0


def _lagged_rate(days: int) -> Callable[[Seen], float]:
    def rate(seen: Seen) -> float:
        def lagged(t: float) -> bool:
            return 7 <= math.floor(seen.tx.ts / DAY) - math.floor(t / DAY) < 7 + days

        n = sum(1 for e in seen.before if lagged(e.ts))
        f = sum(1 for t in seen.frauds if lagged(t))
        return min(f / n, 1.0) if n else 0.0

    return rate


def _merchant_ratio(seen: Seen) -> float:
    mean = statistics.fmean(f32(e.amount) for e in _window([*seen.before, seen.tx], "7d", seen.tx.ts))
    amount = seen.tx.amount
    return amount / mean if mean * 1000.0 > amount else (1.0 if amount <= 0 else 1000.0)


def _days_since_fraud(seen: Seen) -> float:
    """From the account's newest reported fraud (whole second) to this transaction, in days."""
    if not seen.frauds:
        return 30.0
    return min(max((seen.tx.ts - math.floor(max(seen.frauds))) / DAY, 0.0), 30.0)


def one_hot(s: FeatureSpec, seen: Seen) -> float:
    (source,) = s.source_fields
    value = getattr(seen.tx, source)
    if s.category is not None:
        return float(value == s.category)
    family = [t for t in CATALOGUE if t.type == "one-hot" and t.source_fields == s.source_fields]
    return float(value is None or value not in {t.category for t in family if t.category is not None})


#: Reference definitions of the features that are neither windowed aggregates nor one-hot.
REFERENCE: dict[str, Callable[[Seen], float]] = {
    "account_seconds_since_prev_tx": lambda s: min(s.tx.ts - s.before[-1].ts, 30 * DAY) if s.before else 30 * DAY,
    "account_amount_to_mean_30d": _ratio,
    "account_amount_zscore_30d": _zscore,
    "tx_amount_log1p": lambda s: math.log1p(s.tx.amount),
    "tx_hour_sin": lambda s: math.sin(_hour_angle(s)),
    "tx_hour_cos": lambda s: math.cos(_hour_angle(s)),
    "tx_dow_sin": lambda s: math.sin(_dow_angle(s)),
    "tx_dow_cos": lambda s: math.cos(_dow_angle(s)),
    "tx_is_weekend": lambda s: float(_lima(s.tx.ts).weekday() >= 5),
    "tx_is_night": lambda s: float(not 6 <= _lima(s.tx.ts).hour < 22),
    "account_new_merchant": _new("merchant_id", 16),
    "account_new_device": _new("device_id", 8),
    "account_new_ip": _new("ip_address", 8),
    "account_geo_distance_km": _distance,
    "account_geo_velocity_kmh": _velocity,
    "account_age_days": lambda s: max(s.tx.account_age_days or 0.0, 0.0),
    "account_amount_to_balance": _to_balance,
    "account_balance_emptied": _emptied,
    "account_amount_to_mean_24h": _ratio_in("24h"),
    "account_amount_to_mean_7d": _ratio_in("7d"),
    "account_merchant_tx_count": _at_merchant,
    "account_seconds_since_merchant": _since_merchant,
    "account_new_category": _new_category,
    "account_category_share": _category_share,
    "account_days_since_reported_fraud": _days_since_fraud,
    "merchant_fraud_rate_7d_lag7d": _lagged_rate(7),
    "merchant_fraud_rate_23d_lag7d": _lagged_rate(23),
    "merchant_amount_to_mean_7d": _merchant_ratio,
    "has_merchant": lambda s: 1.0,
}


def reference(s: FeatureSpec, seen: Seen) -> float:
    if s.how is not None:
        return aggregate(s, seen)
    if s.type == "one-hot":
        return one_hot(s, seen)
    return REFERENCE[s.name](seen)


def tolerance(s: FeatureSpec, seen: Seen, want: float) -> float:
    """How far the extractor may be from the reference: float32 sums, std noise floor."""
    if s.type in ("binary", "one-hot"):
        return 0.0
    if s.how == "std":  # float32 sums resolve a std to ~0.1 % of the mean
        window = _window([*seen.before, seen.tx], s.window or "", seen.tx.ts)
        return 2e-3 * statistics.fmean(f32(e.amount) for e in window) + 1e-6
    return 1e-4 * abs(want) + 1e-6


def _stream(seed: int) -> list[Transaction]:
    """Three accounts over ~45 days: bursts and gaps, small amounts, repeated and new
    merchants, devices and IPs, located and unlocated, every kind of one-hot value."""
    rnd = random.Random(seed)
    events = []
    for a in range(3):
        t = T0 + rnd.uniform(0, DAY)
        for i in range(130):
            t += rnd.choice([20.0, 90.0, 300.0, 1500.0, 2 * 3600.0, 9 * 3600.0, 1.7 * DAY, 6.5 * DAY])
            t += rnd.uniform(0, 60)
            small = rnd.random() < 0.2
            located = rnd.random() < 0.7
            amount = round(rnd.uniform(1, 9.9) if small else rnd.lognormvariate(4, 1.2), 2)
            amount = 0.0 if rnd.random() < 0.05 else amount  # card verifications
            balance = rnd.choice([None, 0.0, -50.0, 20.0, 5000.0, rnd.uniform(100, 9000), amount, amount + 0.5])
            balance = amount - 0.5 if rnd.random() < 0.05 else balance
            events.append(
                Transaction(
                    f"t{a}-{i}",
                    f"acc{a}",
                    t,
                    amount,
                    transaction_type=rnd.choice([*TRANSACTION_TYPES, None, "refund"]),
                    account_type=rnd.choice([*ACCOUNT_TYPES, None]),
                    channel=rnd.choice([*CHANNELS, None, "fax"]),
                    merchant_id=rnd.choice(["m0"] * 8 + [f"m{k}" for k in range(1, 24)] + [None] * 3),
                    merchant_category=rnd.choice(["c0"] * 6 + [f"c{k}" for k in range(1, 12)] + [None] * 2),
                    device_id=rnd.choice([f"d{k}" for k in range(12)] + [None]),
                    ip_address=rnd.choice([f"10.0.0.{k}" for k in range(14)] + [None]),
                    account_balance=balance,
                    account_age_days=rnd.choice([None, -3.0, 0.0, 12.0, 4000.0]),
                    latitude=rnd.uniform(-18, -3) if located else None,
                    longitude=rnd.uniform(-81, -69) if located else None,
                )
            )
    return sorted(events, key=lambda e: e.ts)


@dataclass
class Observed:
    """One feature of one transaction: the extractor's value and the reference's."""

    spec: FeatureSpec
    seen: Seen
    got: float
    want: float = field(init=False)
    tol: float = field(init=False)

    def __post_init__(self) -> None:
        self.want = reference(self.spec, self.seen)
        self.tol = tolerance(self.spec, self.seen, self.want)


def _observe(seed: int) -> list[list[Observed]]:
    """Run the extractors over the stream; per transaction, each feature with its context."""
    rnd = random.Random(seed)
    accounts: dict[str, list[Transaction]] = {}
    merchants: dict[str, list[Transaction]] = {}
    frauds: dict[str, list[float]] = {}
    account_frauds: dict[str, list[tuple[float, float]]] = {}  # per account, every reported fraud: (event, known)
    labels = random.Random(seed + 1)  # the account labels' own draws: the merchant ones stay as they were
    account_states: dict = {}
    merchant_states: dict = {}
    rows = []
    for tx in _stream(seed):
        u = update_account(account_states.get(tx.account_id), tx)
        reported = account_frauds.setdefault(tx.account_id, [])
        # the account remembers the MAX_FRAUDS reported frauds with the newest event times (ties: the
        # later recorded kept); one counts from FRAUD_KNOWN_AFTER_S (an hour) after the stream reached it
        remembered = sorted(reported, key=lambda r: math.floor(r[0]))[-8:]
        visible = [math.floor(t) for t, known in remembered if math.floor(known) <= tx.ts - 3600]
        seen = Seen(tx, accounts.setdefault(tx.account_id, [])[:], [float(t) for t in visible])
        row = [Observed(s, seen, u.features[s.name]) for s in ACCOUNT_SPECS]
        accounts[tx.account_id].append(tx)
        state = u.state
        if labels.random() < 0.35:  # a fraud label applied now, for this or an earlier transaction of the account
            earlier = labels.choice(accounts[tx.account_id][-40:]).ts
            state = record_account_fraud(state, earlier, known_at=tx.ts)
            reported.append((earlier, tx.ts))
        account_states[tx.account_id] = state
        if tx.merchant_id is not None:
            m = update_merchant(merchant_states.get(tx.merchant_id), tx)
            mseen = Seen(tx, merchants.setdefault(tx.merchant_id, [])[:], frauds.setdefault(tx.merchant_id, [])[:])
            row += [Observed(s, mseen, m.features[s.name]) for s in MERCHANT_SPECS]
            merchants[tx.merchant_id].append(tx)
            state = m.state
            if rnd.random() < 0.3:  # its fraud label arrives at once
                state = record_merchant_fraud(state, tx.ts)
                frauds[tx.merchant_id].append(tx.ts)
            merchant_states[tx.merchant_id] = state
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def observed() -> list[list[Observed]]:
    return _observe(seed=5)


def test_every_spec_gets_exactly_one_value() -> None:
    t = Transaction("t1", "a1", T0, 12.0, merchant_id="m1")
    account = update_account(None, t).features
    merchant = update_merchant(None, t).features
    # a dict cannot hold a name twice: equal lengths mean one value per spec, none extra
    assert list(account) == [s.name for s in ACCOUNT_SPECS] and len(account) == len(ACCOUNT_SPECS)
    assert list(merchant) == [s.name for s in MERCHANT_SPECS] and len(merchant) == len(MERCHANT_SPECS)
    assert all(type(v) is float for v in (*account.values(), *merchant.values()))


def test_every_feature_matches_its_definition(observed: list[list[Observed]]) -> None:
    """The extractor's value under each name is the feature that name is defined as."""
    checked = set()
    for row in observed:
        for o in row:
            assert abs(o.got - o.want) <= o.tol, (o.spec.name, o.seen.tx, o.got, o.want)
            checked.add(o.spec.name)
    assert checked == set(FEATURE_NAMES)


def test_the_stream_tells_every_two_features_apart(observed: list[list[Observed]]) -> None:
    """So swapping any two values in an extractor fails the definition test above."""
    apart: set[tuple[str, str]] = set()
    for row in observed:
        for a, b in itertools.combinations(row, 2):
            if a.seen is b.seen and abs(a.want - b.want) > max(a.tol, b.tol):
                apart.add((a.spec.name, b.spec.name))
    pairs = {
        (a.name, b.name) for specs in (ACCOUNT_SPECS, MERCHANT_SPECS) for a, b in itertools.combinations(specs, 2)
    }
    assert pairs - apart == set()
