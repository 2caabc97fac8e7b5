"""Event-time window arithmetic: tile boundaries, expiry, disorder, lateness, duplicates."""

from __future__ import annotations

import doctest
import math
import random
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import features.account
import features.catalogue
import features.geo
import features.merchant
import features.specs
import features.windows
from features.account import AccountState, update_account
from features.transaction import Transaction
from features.windows import (
    WINDOWS,
    TileLevel,
    is_expired,
    remember,
    stable_hash,
)

# 2023-11-14 00:00:00 UTC: a multiple of every tile width (600 s, 7200 s, 1 day).
T0 = 1_699_920_000.0
DAY = 86400.0
HOUR = 3600.0


def tx(i: int | str, ts: float, amount: float = 10.0, **kw: object) -> Transaction:
    return Transaction(f"t{i}", "acc", ts, amount, **kw)  # type: ignore[arg-type]


def run(events: list[Transaction], state: AccountState | None = None):
    update = None
    for e in events:
        update = update_account(state, e)
        state = update.state
    assert update is not None
    return update


def f32(x: float) -> float:
    return array("f", [x])[0]


# --- the reference definition ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tile_s", "tiles"),
    [("1h", 600.0, 6), ("24h", 7200.0, 12), ("7d", DAY, 7), ("30d", DAY, 30)],
)
def test_window_shapes(name: str, tile_s: float, tiles: int) -> None:
    w = WINDOWS[name]
    assert (w.tile_s, w.tiles) == (tile_s, tiles)
    assert w.length_s == {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}[name]


@pytest.mark.parametrize("name", ["1h", "24h", "7d", "30d"])
def test_window_contains_at_the_edges(name: str) -> None:
    w = WINDOWS[name]
    newest = T0 + w.length_s  # start of a tile: the oldest tile in the window starts
    oldest_start = newest - (w.tiles - 1) * w.tile_s
    assert w.contains(oldest_start, newest)
    assert not w.contains(oldest_start - 0.001, newest)
    assert not w.contains(newest - w.length_s, newest)  # exactly one length back: never
    assert w.contains(newest, newest)
    # late in the newest tile the window still starts at the same tile boundary
    assert w.contains(oldest_start, newest + w.tile_s - 0.001)


# --- windows as computed by update_account ---------------------------------------------


@pytest.mark.parametrize(("name", "length"), [("1h", HOUR), ("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)])
def test_event_exactly_at_the_window_edge(name: str, length: float) -> None:
    # T0 starts a tile; an event one second short of a window length later still sees
    # it, one exactly a window length later does not.
    inside = run([tx(1, T0, 100.0), tx(2, T0 + length - 1, 1.0)]).features
    assert inside[f"account_tx_count_{name}"] == 2.0
    assert inside[f"account_amount_sum_{name}"] == 101.0
    assert inside[f"account_amount_max_{name}"] == 100.0
    outside = run([tx(1, T0, 100.0), tx(2, T0 + length, 1.0)]).features
    assert outside[f"account_tx_count_{name}"] == 1.0
    assert outside[f"account_amount_sum_{name}"] == 1.0
    assert outside[f"account_amount_max_{name}"] == 1.0


def test_windows_are_tiled_not_sliding() -> None:
    # 3301 s apart but six 10-minute tiles apart: the documented tiling drops it.
    f = run([tx(1, T0 + 599, 5.0), tx(2, T0 + 3900, 7.0)]).features
    assert f["account_tx_count_1h"] == 1.0
    assert f["account_tx_count_24h"] == 2.0
    # ... while 3599 s apart inside the same tile run counts.
    f = run([tx(1, T0 + 600, 5.0), tx(2, T0 + 4199, 7.0)]).features
    assert f["account_tx_count_1h"] == 2.0


def test_counts_include_the_current_transaction() -> None:
    f = run([tx(1, T0, 42.0)]).features
    assert [f[f"account_tx_count_{w}"] for w in ("1h", "24h", "7d", "30d")] == [1.0] * 4
    assert f["account_amount_mean_30d"] == 42.0
    assert f["account_amount_std_30d"] == 0.0


def test_tiles_older_than_30_days_are_dropped() -> None:
    events = [tx(i, T0 + i * 3 * DAY, 100.0 + i) for i in range(10)]  # days 0..27
    u = run(events)
    assert u.features["account_tx_count_30d"] == 10.0
    later = update_account(u.state, tx("x", T0 + 31 * DAY, 1.0))  # days 0 (and 1) leave
    assert later.features["account_tx_count_30d"] == 10.0  # 9 days left in: 3..27, + this
    assert later.features["account_amount_sum_30d"] == pytest.approx(sum(range(101, 110)) + 1)
    assert later.features["account_amount_max_30d"] == 109.0
    assert (
        update_account(later.state, tx("y", T0 + 60 * DAY, 2.0)).features["account_tx_count_30d"] == 2.0
    )  # day 31 is the oldest of the 30 days ending on day 60
    last = update_account(later.state, tx("y", T0 + 61 * DAY, 2.0))
    assert last.features["account_tx_count_30d"] == 1.0
    assert last.features["account_amount_sum_30d"] == 2.0
    assert len(last.state.to_bytes()) < len(later.state.to_bytes())


def test_idle_account_expires_and_restarts_empty() -> None:
    u = run([tx(1, T0, 10.0, merchant_id="m1"), tx(2, T0 + 60, 10.0, merchant_id="m1")])
    assert not is_expired(u.state, T0 + 60 + 35 * DAY, 35 * DAY)
    assert is_expired(u.state, T0 + 60 + 35 * DAY + 1, 35 * DAY)
    back = update_account(u.state, tx(3, T0 + 60 + 36 * DAY, 10.0, merchant_id="m2"))
    assert back.features["account_new_merchant"] == 0.0  # no history any more
    assert back.features["account_seconds_since_prev_tx"] == 30 * DAY
    assert back.state.merchants == (stable_hash("m2"),)


def _arrive(order: list[int], events: list[Transaction]) -> AccountState:
    state = None
    for i in order:
        u = update_account(state, events[i])
        assert not u.late and not u.duplicate
        state = u.state
    assert state is not None
    return state


def test_out_of_order_within_tolerance_equals_in_order() -> None:
    # Amounts are multiples of 0.25, so float32 sums are exact in any order.
    events = [tx(i, T0 + 7000 + 97 * i, 1.25 + i) for i in range(30)]  # ~48 min, 3 tiles
    in_order = _arrive(list(range(30)), events)
    shuffled = list(range(30))
    random.Random(7).shuffle(shuffled)
    disordered = _arrive(shuffled, events)
    assert disordered.last_ts == in_order.last_ts
    assert disordered.tiles == in_order.tiles
    assert disordered.caches == in_order.caches
    probe = tx("p", T0 + 7000 + 97 * 30, 3.0)
    assert update_account(disordered, probe).features == update_account(in_order, probe).features


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 40 * 3600), min_size=2, max_size=25, unique=True),
    seed=st.integers(0, 10_000),
)
def test_bounded_disorder_equals_in_order(offsets: list[int], seed: int) -> None:
    offsets.sort()
    events = [tx(i, T0 + 5000 + off, 0.5 * (i % 13 + 1)) for i, off in enumerate(offsets)]
    # Disorder each event by less than the tolerance: sort by a jittered time.
    rnd = random.Random(seed)
    order = sorted(range(len(events)), key=lambda i: offsets[i] + rnd.uniform(0, 3500))
    newest = -math.inf
    for i in order:  # the construction never makes an event late
        assert offsets[i] >= newest - 3600
        newest = max(newest, offsets[i])
    a, b = _arrive(list(range(len(events))), events), _arrive(order, events)
    assert (a.last_ts, a.tiles, a.caches) == (b.last_ts, b.tiles, b.caches)


def test_out_of_order_event_lands_in_its_own_tile() -> None:
    u = run([tx(1, T0, 1.0), tx(2, T0 + 2 * HOUR + 60, 2.0)])
    # 111 minutes behind the newest event: within a 3-hour tolerance
    v = update_account(u.state, tx(3, T0 + 10 * 60, 4.0), late_tolerance_s=3 * HOUR)
    assert not v.late
    f = v.features  # windows end at the newest event (T0 + 2h1m)
    assert f["account_tx_count_1h"] == 1.0  # the late one's tile is outside the last hour
    assert f["account_tx_count_24h"] == 3.0
    assert f["account_amount_sum_24h"] == 7.0
    assert v.state.last_ts == T0 + 2 * HOUR + 60


def test_too_late_event_is_featurised_but_not_counted() -> None:
    u = run([tx(1, T0, 10.0), tx(2, T0 + 2 * HOUR, 20.0)])
    late = update_account(u.state, tx(3, T0 + 2 * HOUR - 3601, 500.0))
    assert late.late and not late.duplicate
    assert late.state.tiles == u.state.tiles
    assert late.state.last_ts == u.state.last_ts
    assert late.features["account_tx_count_24h"] == 2.0
    assert late.features["account_amount_sum_24h"] == 30.0
    assert late.features["tx_amount_log1p"] == pytest.approx(math.log1p(500.0))
    assert late.features["account_amount_to_mean_30d"] == pytest.approx(500.0 / 15.0)
    # its id is remembered: a redelivery is a duplicate, not a second late event
    again = update_account(late.state, tx(3, T0 + 2 * HOUR - 3601, 500.0))
    assert again.duplicate and not again.late


def test_exactly_at_the_tolerance_is_not_late() -> None:
    u = run([tx(1, T0 + 2 * HOUR, 20.0)])
    edge = update_account(u.state, tx(2, T0 + HOUR, 5.0))
    assert not edge.late
    assert edge.features["account_tx_count_24h"] == 2.0
    assert update_account(u.state, tx(3, T0 + HOUR - 0.5, 5.0)).late


def test_duplicates_are_not_counted_twice() -> None:
    first = run([tx(1, T0, 10.0), tx(2, T0 + 60, 20.0)])
    dup = update_account(first.state, tx(2, T0 + 60, 20.0))
    assert dup.duplicate and not dup.late
    assert dup.state is first.state
    assert dup.features["account_tx_count_1h"] == 2.0
    assert dup.features["account_amount_sum_1h"] == 30.0
    nxt = update_account(dup.state, tx(3, T0 + 120, 5.0))
    assert nxt.features["account_tx_count_1h"] == 3.0


def test_duplicate_memory_keeps_every_id_inside_the_tolerance() -> None:
    u = run([tx(i, T0 + i, 1.0) for i in range(13)])
    assert len(u.state.ids) == 13  # not only the last 12 (tests/unit/test_account_dedup.py)
    assert update_account(u.state, tx(12, T0 + 12, 1.0)).duplicate
    assert update_account(u.state, tx(1, T0 + 13, 1.0)).duplicate
    assert update_account(u.state, tx(0, T0 + 13, 1.0)).duplicate


# --- brute-force reference over random event streams ----------------------------------


def _reference(events: list[tuple[float, float]], newest: float, name: str) -> tuple:
    w = WINDOWS[name]
    xs = [a for t, a in events if w.contains(t, newest)]
    n = len(xs)
    if not n:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    mean = sum(xs) / n
    var = max(sum(x * x for x in xs) / n - mean * mean, 0.0)
    return float(n), sum(xs), mean, math.sqrt(var), max(xs)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 30.0, 500.0, 3000.0, 7000.0, 30000.0, 1.2 * DAY, 9 * DAY]),
            st.floats(-1.0, 1.0),
            st.floats(0.01, 5000.0),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_windows_match_a_brute_force_reference(steps: list[tuple[float, float, float]]) -> None:
    state = None
    counted: list[tuple[float, float]] = []
    newest = -math.inf
    for i, (gap, jitter, amount) in enumerate(steps):
        ts = (newest if counted else T0) + gap * jitter
        u = update_account(state, tx(i, ts, amount))
        state = u.state
        assert u.late == (ts < newest - 3600)
        if not u.late:
            counted.append((ts, f32(amount)))
            newest = max(newest, ts)
        for name in ("1h", "24h", "7d", "30d"):
            n, total, mean, std, mx = _reference(counted, newest, name)
            f = u.features
            assert f[f"account_tx_count_{name}"] == n
            assert f[f"account_amount_sum_{name}"] == pytest.approx(total, rel=1e-6)
            assert f[f"account_amount_mean_{name}"] == pytest.approx(mean, rel=1e-6)
            assert f[f"account_amount_max_{name}"] == mx
            # float32 sums resolve the std to ~0.1% of the mean
            assert f[f"account_amount_std_{name}"] == pytest.approx(std, abs=2e-3 * mean + 1e-6)


# --- building blocks -------------------------------------------------------------------


def test_tile_level_advance_and_out_of_order_add() -> None:
    level = TileLevel(base=0, tiles=4, kinds="csm", spans=(2, 4))
    old = array("f", [1, 1, 1, 2, 5, 4, 1, 2, 2, 3, 9, 9])  # rows: (count, sum, max)
    caches = level.recompute(old)
    assert caches[0] == (1.0, 2.0, 2.0)  # older part of the 2-tile window: row 2
    assert caches[1] == (4.0, 8.0, 4.0)  # rows 0..2
    new = old[:]
    caches = level.advance(old, new, 2, caches)
    assert new.tolist() == [1, 2, 2, 3, 9, 9, 0, 0, 0, 0, 0, 0]
    assert level.totals(new, caches[0]) == (0.0, 0.0, 0.0)
    assert level.totals(new, caches[1]) == (4.0, 11.0, 9.0)
    assert caches == level.recompute(new)
    caches = level.add_older(new, 1, (1.0, 0.5, 7.0), caches)
    assert new.tolist() == [1, 2, 2, 3, 9, 9, 1, 0.5, 7, 0, 0, 0]
    assert caches == level.recompute(new)
    new2 = new[:]
    assert level.advance(new, new2, 4, caches) == level.zero_caches
    assert not any(new2)


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2), st.floats(0.01, 1e6)), max_size=40),
    kinds=st.sampled_from(["cssmc", "cssm", "csc", "c"]),
)
def test_incremental_caches_track_a_recomputation(ops: list[tuple[int, int, float]], kinds: str) -> None:
    """Counts and maxima exactly, float sums to rounding, and 0 when the window empties."""
    level = TileLevel(base=3, tiles=10, kinds=kinds, spans=(4, 10))
    tiles = array("f", bytes(4 * level.end))
    caches = level.recompute(tiles)
    biggest = 1.0  # float sums are exact up to rounding relative to the largest term seen
    for steps, back, amount in ops:
        biggest = max(biggest, amount * amount)
        new = tiles[:]
        caches = level.advance(tiles, new, steps, caches)
        tiles = new
        row = tuple({"c": 1.0, "s": amount, "m": amount}[k] for k in kinds)
        if kinds.startswith("cssm"):
            row = (1.0, amount, amount * amount, amount) + row[4:]
        if back == 0:
            h = level.head
            for j, k in enumerate(kinds):
                tiles[h + j] = max(tiles[h + j], row[j]) if k == "m" else tiles[h + j] + row[j]
        else:
            caches = level.add_older(tiles, back, row, caches)
        for got, want in zip(caches, level.recompute(tiles), strict=True):
            for j, k in enumerate(kinds):
                if k == "s":
                    assert got[j] == pytest.approx(want[j], rel=1e-9, abs=1e-14 * biggest * len(ops))
                else:
                    assert got[j] == want[j]
            if want[0] == 0:
                assert got == want  # an emptied window is exactly zero


def test_tile_level_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="spans"):
        TileLevel(0, 5, "c", spans=(6,))
    with pytest.raises(ValueError, match="kinds"):
        TileLevel(0, 5, "cx", spans=(5,))


def test_stable_hash_is_crc32_and_process_independent() -> None:
    assert stable_hash("merchant-42") == 3187588786
    assert stable_hash("") == 0
    assert stable_hash("ñandú") == stable_hash("ñandú") != stable_hash("nandu")


def test_remember_is_a_bounded_lru() -> None:
    m: tuple[int, ...] = ()
    for item in (1, 2, 3):
        m = remember(m, item, 3)
    assert m == (1, 2, 3)
    assert remember(m, 3, 3) is m  # already newest: unchanged
    assert remember(m, 1, 3) == (2, 3, 1)
    assert remember(m, 4, 3) == (2, 3, 4)
    assert remember((), 9, 3) == (9,)


@pytest.mark.parametrize(
    "module",
    [features.windows, features.account, features.merchant, features.geo, features.catalogue, features.specs],
    ids=lambda m: m.__name__,
)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
