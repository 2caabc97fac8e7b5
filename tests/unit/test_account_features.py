"""Every account feature on hand-computed examples; state size, round trip and decoding."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.account import (
    ACCOUNT_FEATURES,
    MAX_ENCODED_SIZE,
    AccountState,
    AccountUpdate,
    update_account,
)
from features.errors import StateDecodeError
from features.geo import haversine_km
from features.transaction import Transaction

T0 = 1_699_920_000.0  # 2023-11-14 00:00 UTC, a tile boundary at every level
DAY = 86400.0
LIMA = timezone(timedelta(hours=-5))
LIMA_XY = (-12.0464, -77.0428)  # Plaza de Armas, Lima
CUSCO_XY = (-13.5320, -71.9675)  # Plaza de Armas, Cusco


def tx(i: int | str, ts: float, amount: float = 10.0, **kw: object) -> Transaction:
    return Transaction(f"t{i}", "acc", ts, amount, **kw)  # type: ignore[arg-type]


def run(events: list[Transaction], state: AccountState | None = None) -> AccountUpdate:
    update = None
    for e in events:
        update = update_account(state, e)
        state = update.state
    assert update is not None
    return update


def lima_ts(*args: int) -> float:
    return datetime(*args, tzinfo=LIMA).timestamp()


# --- shape ----------------------------------------------------------------------------


def test_feature_names_are_exactly_the_documented_ones() -> None:
    f = run([tx(1, T0)]).features
    assert tuple(f) == ACCOUNT_FEATURES
    assert len(ACCOUNT_FEATURES) == len(set(ACCOUNT_FEATURES)) == 63
    for name in ("account_tx_count_1h", "account_amount_mean_30d", "account_small_tx_count_1h"):
        assert name in ACCOUNT_FEATURES
    assert all(type(v) is float and math.isfinite(v) for v in f.values())


def test_integer_inputs_still_give_float_features() -> None:
    events = [Transaction("t1", "a", int(T0), 10), Transaction("t2", "a", int(T0) + 60, 20)]
    f = run(events).features
    assert all(type(v) is float for v in f.values())
    assert f["account_seconds_since_prev_tx"] == 60.0


# --- window statistics -----------------------------------------------------------------


def test_count_sum_mean_std_max_by_hand() -> None:
    f = run([tx(1, T0, 100.0), tx(2, T0 + 60, 50.0), tx(3, T0 + 120, 30.0)]).features
    for w in ("1h", "24h", "7d", "30d"):
        assert f[f"account_tx_count_{w}"] == 3.0
        assert f[f"account_amount_sum_{w}"] == 180.0
        assert f[f"account_amount_mean_{w}"] == 60.0
        # population std of 100, 50, 30 around 60: sqrt((1600 + 100 + 900) / 3)
        assert f[f"account_amount_std_{w}"] == pytest.approx(math.sqrt(2600 / 3), rel=1e-6)
        assert f[f"account_amount_max_{w}"] == 100.0


def test_windows_differ_by_length() -> None:
    events = [
        tx(1, T0, 1000.0),  # 20 days before the last one: 30d only
        tx(2, T0 + 17 * DAY, 200.0),  # 3 days before: 7d and 30d
        tx(3, T0 + 20 * DAY - 5 * 3600, 40.0),  # 5 h before: 24h too
        tx(4, T0 + 20 * DAY, 8.0),  # now (small)
    ]
    f = run(events).features
    assert [f[f"account_tx_count_{w}"] for w in ("1h", "24h", "7d", "30d")] == [1, 2, 3, 4]
    assert [f[f"account_amount_sum_{w}"] for w in ("1h", "24h", "7d", "30d")] == [
        8.0,
        48.0,
        248.0,
        1248.0,
    ]
    assert [f[f"account_amount_max_{w}"] for w in ("1h", "24h", "7d", "30d")] == [
        8.0,
        40.0,
        200.0,
        1000.0,
    ]
    assert f["account_amount_mean_24h"] == 24.0
    assert f["account_amount_std_24h"] == 16.0


def test_small_transactions_in_the_last_hour() -> None:
    # card testing: a burst of tiny probes, then the real purchase
    probes = [tx(i, T0 + 30 * i, 1.0 + 0.5 * (i % 3)) for i in range(12)]
    f = run([*probes, tx("big", T0 + 400, 2500.0)]).features
    assert f["account_small_tx_count_1h"] == 12.0
    assert f["account_tx_count_1h"] == 13.0
    assert run([tx(1, T0, 9.99), tx(2, T0 + 1, 10.0)]).features["account_small_tx_count_1h"] == 1


def test_seconds_since_previous_transaction() -> None:
    assert run([tx(1, T0)]).features["account_seconds_since_prev_tx"] == 30 * DAY
    assert run([tx(1, T0), tx(2, T0 + 75.5)]).features["account_seconds_since_prev_tx"] == 75.5
    far = run([tx(1, T0), tx(2, T0 + 33 * DAY)]).features
    assert far["account_seconds_since_prev_tx"] == 30 * DAY  # capped
    # out of order: the gap to the newest event seen
    back = run([tx(1, T0), tx(2, T0 + 600), tx(3, T0 + 500)]).features
    assert back["account_seconds_since_prev_tx"] == 100.0


def test_amount_ratio_and_zscore_against_history_before() -> None:
    first = run([tx(1, T0, 80.0)]).features
    assert first["account_amount_to_mean_30d"] == 1.0  # no history
    assert first["account_amount_zscore_30d"] == 0.0
    second = run([tx(1, T0, 80.0), tx(2, T0 + 60, 20.0)]).features
    assert second["account_amount_to_mean_30d"] == 0.25
    assert second["account_amount_zscore_30d"] == 0.0  # needs two earlier transactions
    # history 100, 50: mean 75, std 25; amount 30 -> ratio 0.4, z = (30 - 75) / 25
    third = run([tx(1, T0, 100.0), tx(2, T0 + 60, 50.0), tx(3, T0 + 120, 30.0)]).features
    assert third["account_amount_to_mean_30d"] == pytest.approx(0.4)
    assert third["account_amount_zscore_30d"] == pytest.approx(-1.8)


def test_zscore_std_floor_and_clip() -> None:
    regular = [tx(i, T0 + 60 * i, 100.0) for i in range(5)]
    # constant history: std 0 is floored at 5% of the mean (5.0)
    f = run([*regular, tx("x", T0 + 400, 110.0)]).features
    assert f["account_amount_zscore_30d"] == pytest.approx(2.0)
    f = run([*regular, tx("y", T0 + 400, 10_000.0)]).features
    assert f["account_amount_zscore_30d"] == 50.0
    assert f["account_amount_to_mean_30d"] == 100.0
    f = run([*regular, tx("z", T0 + 400, 1.0)]).features
    assert f["account_amount_zscore_30d"] == pytest.approx(-19.8)


def test_log_amount() -> None:
    assert run([tx(1, T0, 99.0)]).features["tx_amount_log1p"] == pytest.approx(math.log(100.0))


# --- calendar in Lima time -------------------------------------------------------------


def test_cyclic_hour_and_day_in_lima_time() -> None:
    ts = lima_ts(2024, 3, 16, 23, 30)  # Saturday 23:30 in Lima = Sunday 04:30 UTC
    assert datetime.fromtimestamp(ts, UTC).weekday() == 6
    f = run([tx(1, ts)]).features
    assert f["tx_hour_sin"] == pytest.approx(math.sin(2 * math.pi * 23.5 / 24))
    assert f["tx_hour_cos"] == pytest.approx(math.cos(2 * math.pi * 23.5 / 24))
    assert f["tx_dow_sin"] == pytest.approx(math.sin(2 * math.pi * 5 / 7))
    assert f["tx_dow_cos"] == pytest.approx(math.cos(2 * math.pi * 5 / 7))
    assert f["tx_is_weekend"] == 1.0
    assert f["tx_is_night"] == 1.0
    noon = run([tx(1, lima_ts(2024, 3, 18, 12, 0))]).features  # Monday noon
    assert noon["tx_hour_sin"] == pytest.approx(0.0, abs=1e-12)
    assert noon["tx_hour_cos"] == pytest.approx(-1.0)
    assert (noon["tx_dow_sin"], noon["tx_dow_cos"]) == (0.0, 1.0)
    assert (noon["tx_is_weekend"], noon["tx_is_night"]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("hour", "minute", "night"),
    [(21, 59, 0.0), (22, 0, 1.0), (0, 0, 1.0), (5, 59, 1.0), (6, 0, 0.0)],
)
def test_night_is_22_to_06_lima(hour: int, minute: int, night: float) -> None:
    assert run([tx(1, lima_ts(2024, 3, 20, hour, minute))]).features["tx_is_night"] == night


def test_weekend_follows_the_lima_date_not_the_utc_date() -> None:
    friday_night = lima_ts(2024, 3, 15, 21, 0)  # already Saturday 02:00 in UTC
    assert run([tx(1, friday_night)]).features["tx_is_weekend"] == 0.0
    sunday_night = lima_ts(2024, 3, 17, 21, 0)  # Monday in UTC
    assert run([tx(1, sunday_night)]).features["tx_is_weekend"] == 1.0


# --- novelty ----------------------------------------------------------------------------


def test_new_merchant_device_ip() -> None:
    kw = {"merchant_id": "m1", "device_id": "d1", "ip_address": "10.0.0.1"}
    first = run([tx(1, T0, **kw)]).features
    assert (
        first["account_new_merchant"],
        first["account_new_device"],
        first["account_new_ip"],
    ) == (0.0, 0.0, 0.0)  # a new account has nothing to compare with
    same = run([tx(1, T0, **kw), tx(2, T0 + 60, **kw)]).features
    assert (same["account_new_merchant"], same["account_new_device"], same["account_new_ip"]) == (
        0.0,
        0.0,
        0.0,
    )
    other = run([tx(1, T0, **kw), tx(2, T0 + 60, merchant_id="m2", device_id="d1", ip_address="10.9.9.9")]).features
    assert (
        other["account_new_merchant"],
        other["account_new_device"],
        other["account_new_ip"],
    ) == (1.0, 0.0, 1.0)
    absent = run([tx(1, T0, **kw), tx(2, T0 + 60)]).features
    assert (
        absent["account_new_merchant"],
        absent["account_new_device"],
        absent["account_new_ip"],
    ) == (0.0, 0.0, 0.0)


def test_first_value_after_history_without_it_is_new() -> None:
    f = run([tx(1, T0), tx(2, T0 + 60, device_id="d1")]).features
    assert f["account_new_device"] == 1.0


def test_merchant_memory_keeps_the_16_most_recent() -> None:
    events = [tx(i, T0 + i, merchant_id=f"m{i}") for i in range(17)]  # m0 .. m16
    u = run(events)
    assert len(u.state.merchants) == 16
    assert (
        update_account(u.state, tx("a", T0 + 20, merchant_id="m0")).features["account_new_merchant"] == 1.0
    )  # evicted
    assert update_account(u.state, tx("b", T0 + 20, merchant_id="m1")).features["account_new_merchant"] == 0.0
    # using a merchant refreshes it: m1 survives one more new merchant, m2 does not
    v = run([tx("c", T0 + 21, merchant_id="m1"), tx("d", T0 + 22, merchant_id="new")], u.state)
    assert update_account(v.state, tx("e", T0 + 23, merchant_id="m1")).features["account_new_merchant"] == 0.0
    assert update_account(v.state, tx("f", T0 + 23, merchant_id="m2")).features["account_new_merchant"] == 1.0


# --- geo --------------------------------------------------------------------------------


def test_geo_velocity_lima_to_cusco() -> None:
    km = haversine_km(*LIMA_XY, *CUSCO_XY)
    assert 570.0 < km < 585.0  # ~575 km great circle
    lima = tx(1, T0, latitude=LIMA_XY[0], longitude=LIMA_XY[1])
    first = run([lima]).features
    assert (first["account_geo_distance_km"], first["account_geo_velocity_kmh"]) == (0.0, 0.0)
    hour_later = run([lima, tx(2, T0 + 3600, latitude=CUSCO_XY[0], longitude=CUSCO_XY[1])])
    assert hour_later.features["account_geo_distance_km"] == pytest.approx(km)
    assert hour_later.features["account_geo_velocity_kmh"] == pytest.approx(km)
    ten_minutes = run([lima, tx(2, T0 + 600, latitude=CUSCO_XY[0], longitude=CUSCO_XY[1])])
    assert ten_minutes.features["account_geo_velocity_kmh"] == 2000.0  # capped


def test_geo_uses_the_previous_located_transaction() -> None:
    lima = tx(1, T0, latitude=LIMA_XY[0], longitude=LIMA_XY[1])
    online = tx(2, T0 + 1800)  # no coordinates: features 0, remembered point kept
    cusco = tx(3, T0 + 7200, latitude=CUSCO_XY[0], longitude=CUSCO_XY[1])
    assert run([lima, online]).features["account_geo_distance_km"] == 0.0
    f = run([lima, online, cusco]).features
    assert f["account_geo_velocity_kmh"] == pytest.approx(haversine_km(*LIMA_XY, *CUSCO_XY) / 2)


def test_invalid_coordinates_are_ignored() -> None:
    lima = tx(1, T0, latitude=LIMA_XY[0], longitude=LIMA_XY[1])
    bad = tx(2, T0 + 60, latitude=float("nan"), longitude=-71.0)
    u = run([lima, bad])
    assert u.features["account_geo_distance_km"] == 0.0
    assert u.state.geo == (LIMA_XY[0], LIMA_XY[1], T0)


# --- categorical and static -------------------------------------------------------------


def _hot(features: dict[str, float]) -> set[str]:
    groups = ("tx_type_", "tx_channel_", "account_type_")
    return {k for k, v in features.items() if k.startswith(groups) and v == 1.0}


def test_one_hot_encodings_with_unknown_bucket() -> None:
    f = run([tx(1, T0, transaction_type="withdrawal", channel="atm", account_type="savings")])
    assert _hot(f.features) == {"tx_type_withdrawal", "tx_channel_atm", "account_type_savings"}
    g = run([tx(1, T0, transaction_type="crypto")]).features
    assert _hot(g) == {"tx_type_unknown", "tx_channel_unknown", "account_type_unknown"}
    for group in ("tx_type_", "tx_channel_", "account_type_"):
        assert sum(v for k, v in g.items() if k.startswith(group)) == 1.0


def test_account_age_and_balance_ratio() -> None:
    f = run([tx(1, T0, 50.0, account_balance=200.0, account_age_days=400.0)]).features
    assert (f["account_amount_to_balance"], f["account_age_days"]) == (0.25, 400.0)
    absent = run([tx(1, T0, 50.0)]).features
    assert (absent["account_amount_to_balance"], absent["account_age_days"]) == (0.0, 0.0)
    assert run([tx(1, T0, 50.0, account_balance=0.0)]).features["account_amount_to_balance"] == 100
    assert run([tx(1, T0, 5e6, account_balance=1.0)]).features["account_amount_to_balance"] == 100


# --- purity, idle, late -----------------------------------------------------------------


def test_update_does_not_modify_its_input_state() -> None:
    u = run([tx(i, T0 + 500 * i, 10.0 + i, merchant_id=f"m{i % 3}") for i in range(20)])
    before = u.state.to_bytes()
    snapshot = (u.state.tiles.tolist(), u.state.caches, u.state.merchants)
    for i, gap in enumerate((10.0, 900.0, 8000.0, 2 * DAY, -3000.0, -9000.0)):
        update_account(u.state, tx(f"x{i}", u.state.last_ts + gap, 77.0, merchant_id="zz"))
    assert u.state.to_bytes() == before
    assert (u.state.tiles.tolist(), u.state.caches, u.state.merchants) == snapshot


# --- state size ---------------------------------------------------------------------------


def _busy_account(n: int, seed: int = 1, merchants: int = 300, devices: int = 40, ips: int = 2000) -> AccountState:
    """``n`` transactions spread over 30 days (2000: ~67 a day, every 20 minutes)."""
    rnd = random.Random(seed)
    state = None
    for i in range(n):
        ts = T0 + 30 * DAY * i / n + rnd.uniform(0, 60)
        state = update_account(
            state,
            tx(
                i,
                ts,
                round(rnd.lognormvariate(4, 1.5), 2),
                merchant_id=f"m{rnd.randrange(merchants)}",
                device_id=f"d{rnd.randrange(devices)}",
                ip_address=f"10.0.{rnd.randrange(ips)}",
                latitude=-12 + rnd.uniform(-1, 1),
                longitude=-77 + rnd.uniform(-1, 1),
            ),
        ).state
    assert state is not None
    return state


def test_very_active_account_fits_in_1kb_plus_12_bytes_per_id_inside_the_tolerance() -> None:
    state = _busy_account(2000)
    size = len(state.to_bytes())
    # every 20 minutes: the ids of the last hour (3 or 4) are remembered, 12 bytes each
    assert 1 <= len(state.ids) <= 4
    assert size <= 1174 + 2 + 12 * len(state.ids)
    assert MAX_ENCODED_SIZE == 1174 + 2 + 12 * 1024 == 13464
    assert size > 700  # it really is busy: every day tile and most 2-hour tiles used


def test_typical_account_is_small() -> None:
    # one transaction a day at a handful of merchants, from one phone and two networks
    state = _busy_account(30, merchants=8, devices=1, ips=2)
    assert len(state.to_bytes()) < 340
    # header 10, id memory length 2, 3 memory lengths, category memory length 1, tile
    # bitmaps 14, cache bitmap 1, fraud memory length 1
    assert len(AccountState().to_bytes()) == 32


def test_old_transaction_ids_are_dropped() -> None:
    u = run([tx(i, T0 + i, 1.0) for i in range(10)])
    assert len(u.state.ids) == 10
    v = update_account(u.state, tx("later", T0 + 9 + 3601, 1.0))
    assert len(v.state.ids) == 1
    again = update_account(v.state, tx(3, T0 + 3, 1.0))  # a redelivery now: late
    assert again.late and not again.duplicate
    assert again.state.tiles == v.state.tiles


def test_bursts_do_not_break_the_bound() -> None:
    state = _busy_account(2000)
    dropped = 0
    for i in range(3000):  # 3000 more in the last 2 hours, all on new merchants
        u = update_account(state, tx(f"b{i}", state.last_ts + 2.0, 1.0, merchant_id=f"x{i}"))
        state, dropped = u.state, dropped + u.ids_dropped
    assert len(state.to_bytes()) <= MAX_ENCODED_SIZE
    # 1,801 inside the hour: the cap holds; past 1,024 each new id forgets the oldest
    assert len(state.ids) == 1024
    assert 3000 - 1024 <= dropped <= 3000 - 1024 + 4


# --- round trip ---------------------------------------------------------------------------

_tx_steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 1.0, 45.0, 700.0, 3500.0, 9000.0, DAY, 8 * DAY, 40 * DAY]),
        st.floats(-1.0, 1.0),
        st.floats(0.01, 1e6),
        st.integers(0, 5),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


def _stream(steps: list[tuple[float, float, float, int, bool]]) -> list[Transaction]:
    out, t = [], T0
    for i, (gap, jitter, amount, k, located) in enumerate(steps):
        t = max(t, t + gap * jitter)
        ts = t + gap * jitter if jitter < 0 else t
        out.append(
            tx(
                i if k else max(i - 1, 0),  # k == 0 repeats the previous id: a duplicate
                ts,
                amount,
                merchant_id=f"m{k}",
                device_id=f"d{k % 2}" if k else None,
                ip_address=f"ip{k}",
                latitude=-12.0 - k if located else None,
                longitude=-77.0 + k if located else None,
                channel=("pos", "online", None)[k % 3],
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(steps=_tx_steps, cut=st.integers(0, 30))
def test_round_trip_gives_identical_later_features(
    steps: list[tuple[float, float, float, int, bool]], cut: int
) -> None:
    events = _stream(steps)
    cut = min(cut, len(events))
    state = run(events[:cut]).state if cut else None
    decoded = AccountState.from_bytes(state.to_bytes()) if state is not None else None
    if state is not None:
        assert decoded == state
        assert decoded.to_bytes() == state.to_bytes()
    for e in events[cut:]:
        a, b = update_account(state, e), update_account(decoded, e)
        assert a.features == b.features
        assert (a.duplicate, a.late) == (b.duplicate, b.late)
        state, decoded = a.state, AccountState.from_bytes(b.state.to_bytes())


@settings(max_examples=100, deadline=None)
@given(steps=_tx_steps)
def test_features_are_always_finite_floats(
    steps: list[tuple[float, float, float, int, bool]],
) -> None:
    state = None
    for e in _stream(steps):
        u = update_account(state, e)
        assert tuple(u.features) == ACCOUNT_FEATURES
        assert all(type(v) is float and math.isfinite(v) for v in u.features.values())
        state = u.state


# --- decoding errors ----------------------------------------------------------------------


def test_decode_rejects_unknown_version_and_truncation() -> None:
    data = _busy_account(50).to_bytes()
    with pytest.raises(StateDecodeError, match="version 9"):
        AccountState.from_bytes(b"\x09" + data[1:])
    with pytest.raises(StateDecodeError, match="truncated"):
        AccountState.from_bytes(data[:-3])
    with pytest.raises(StateDecodeError, match="truncated"):
        AccountState.from_bytes(b"")
    with pytest.raises(StateDecodeError, match="trailing"):
        AccountState.from_bytes(data + b"\x00")
    assert issubclass(StateDecodeError, ValueError)


def test_decode_rejects_impossible_content() -> None:
    empty = bytearray(AccountState().to_bytes())
    bad = bytearray(empty)
    bad[10:12] = (2000).to_bytes(2, "little")  # 2,000 transaction ids: more than are ever kept
    with pytest.raises(StateDecodeError, match="exceeds"):
        AccountState.from_bytes(bytes(bad))
    bad = bytearray(empty)
    bad[12] = 17  # 17 merchants: more than are ever kept
    with pytest.raises(StateDecodeError, match="exceeds"):
        AccountState.from_bytes(bytes(bad))
    bad = bytearray(empty)
    bad[15] = 9  # 9 categories: more than are ever kept
    with pytest.raises(StateDecodeError, match="exceeds"):
        AccountState.from_bytes(bytes(bad))
    bad = bytearray(empty)
    bad[16] = 9  # 9 reported frauds: more than are ever kept
    with pytest.raises(StateDecodeError, match="reported frauds exceeds"):
        AccountState.from_bytes(bytes(bad))
    bad = bytearray(empty)
    bad[17] = 0xFF  # 10-minute level "single" bitmap with bits beyond 6 tiles
    with pytest.raises(StateDecodeError, match="bitmap"):
        AccountState.from_bytes(bytes(bad))
    bad = bytearray(empty)
    bad[17] = bad[18] = 0x01  # tile 0 claimed both single and multi
    with pytest.raises(StateDecodeError, match="both"):
        AccountState.from_bytes(bytes(bad))
