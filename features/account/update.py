"""The account extractor: fold one transaction into the account state, emit its features.

Every feature's definition is its spec in :mod:`features.definitions`; this module
computes them and fills the feature dict by name, in spec order. The arithmetic is
unrolled for speed (it runs once per event): window totals are the cached older-tile
totals plus the head tile, and the dict is one literal.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from hashlib import blake2b
from math import cos, floor, log1p, pi, sin, sqrt
from zlib import crc32

from features.account.frauds import NO_FRAUD, fraud_features
from features.account.ids import remember_id
from features.account.layout import (
    DEFAULT_TTL_S,
    H1,
    H2,
    H3,
    L1,
    L2,
    L3,
    MAX_CATEGORIES,
    MAX_DEVICES,
    MAX_IPS,
    MAX_MERCHANTS,
    N1,
    N2,
    N3,
    N7,
    W1,
    W2,
    W3,
)
from features.account.state import EMPTY, AccountState, new_state
from features.definitions import (
    ACCOUNT_SPECS,
    AMOUNT_RATIO_CAP,
    BALANCE_RATIO_CAP,
    COUNT_CAP,
    EMPTIED_LEFT,
    LIMA_UTC_OFFSET_H,
    NIGHT_END_H,
    NIGHT_START_H,
    NO_PREVIOUS_S,
    SMALL_AMOUNT,
    ZSCORE_CAP,
    ZSCORE_MIN_STD_FRACTION,
)
from features.geo import haversine_km, speed_kmh
from features.transaction import Transaction
from features.windows import DAY_S, remember, zeros

__all__ = ["AccountUpdate", "update_account"]

OneHot = dict[str, float]


def _one_hot(source: str) -> tuple[dict[str | None, OneHot], OneHot]:
    """The one-hot features of ``source`` for each value of it, and for anything else.

    Built from the specs, so each value sets the feature named for it.
    """
    specs = [s for s in ACCOUNT_SPECS if s.type == "one-hot" and s.source_fields == (source,)]
    table: dict[str | None, OneHot] = {s.category: {t.name: float(t is s) for t in specs} for s in specs}
    return table, table.pop(None)


_TT_HOT, _TT_UNKNOWN = _one_hot("transaction_type")
_CH_HOT, _CH_UNKNOWN = _one_hot("channel")
_AT_HOT, _AT_UNKNOWN = _one_hot("account_type")
# 1970-01-01 was a Thursday; with Monday = 0 the epoch day has weekday 3.
_DOW_SIN = tuple(sin(2 * pi * d / 7) for d in range(7))
_DOW_COS = tuple(cos(2 * pi * d / 7) for d in range(7))
_HOUR_RAD_PER_S = 2 * pi / DAY_S
_LIMA_UTC_OFFSET_S = LIMA_UTC_OFFSET_H * 3600.0
_NIGHT_START_S = NIGHT_START_H * 3600.0
_NIGHT_END_S = NIGHT_END_H * 3600.0
_F32 = array("f", [0.0])  # scratch cell: storing and reading back rounds to float32
_L1_ZEROS = zeros(L1.end - L1.base)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """Result of :func:`update_account`.

    ``ids_dropped`` is how many remembered ids, still inside the lateness tolerance, the
    account forgot because its id memory passed ``MAX_IDS`` (a redelivery of one of them
    would be counted again); 0 but for the busiest accounts."""

    state: AccountState
    features: dict[str, float]
    duplicate: bool
    late: bool
    ids_dropped: int = 0


_U32_MAX = 2**32 - 1


def _ratio(amount: float, mean: float) -> float:
    """``amount / mean`` capped at AMOUNT_RATIO_CAP; 1 for nothing against nothing (zero amounts)."""
    if mean * AMOUNT_RATIO_CAP > amount:
        return amount / mean
    return 1.0 if amount <= 0.0 else AMOUNT_RATIO_CAP


def _second(ts: float) -> int:
    """The whole second of ``ts`` as the state stores it (uint32)."""
    second = floor(ts)
    return second if 0 <= second <= _U32_MAX else (0 if second < 0 else _U32_MAX)


_new_object = object.__new__
_set_field = object.__setattr__


def _update(state: AccountState, features: dict[str, float], dup: bool, late: bool, dropped: int) -> AccountUpdate:
    """Build an AccountUpdate without the frozen dataclass ``__init__`` (2x faster)."""
    u = _new_object(AccountUpdate)
    _set_field(u, "state", state)
    _set_field(u, "features", features)
    _set_field(u, "duplicate", dup)
    _set_field(u, "late", late)
    _set_field(u, "ids_dropped", dropped)
    return u


def update_account(
    state: AccountState | None,
    tx: Transaction,
    *,
    late_tolerance_s: float = 3600.0,
    ttl_s: float = DEFAULT_TTL_S,
) -> AccountUpdate:
    """Fold one transaction into the account state and return its feature vector.

    Each feature is defined by its spec in :mod:`features.definitions`; the special
    events (duplicate, late, idle) are described in :mod:`features.account`. The input
    state is not modified (unchanged parts are shared with the returned state).
    """
    ts = float(tx.ts)  # an int from a hand-built Transaction would leak into features
    amount = float(tx.amount)
    tid = int.from_bytes(blake2b(tx.transaction_id.encode(), digest_size=8).digest(), "little")  # ids.id_hash
    if state is not None and not ts - state.last_ts <= ttl_s:  # idle past ttl (or empty)
        state = None
    duplicate = late = False
    if state is None:
        history = False
        last = ts
        old = EMPTY
    else:
        history = True
        old = state
        last = state.last_ts
        if tid in state.ids:
            duplicate = True
        elif ts < last - late_tolerance_s:
            late = True
    counted = not (duplicate or late)

    _F32[0] = amount
    a = _F32[0]  # the amount as the tiles store it
    a2 = a * a
    small = 1.0 if a < SMALL_AMOUNT else 0.0

    # --- windows: add to the tile of ts in each level ---------------------------------
    tiles = old.tiles
    caches = c1, c2, c3 = old.caches
    in_30d = in_7d = in_24h = False
    if counted:
        before = tiles
        tiles = tiles[:]
        back = 0
        if history:
            back = floor(last / W1) - floor(ts / W1)
            if back <= -N1:  # every 10-min tile leaves (most events): L1.advance without the call
                tiles[L1.base : L1.end] = _L1_ZEROS
                c1 = L1.zero_caches
                back = 0
            elif back < 0:
                c1 = L1.advance(before, tiles, -back, c1)
                back = 0
        if back == 0:
            o = H1
            tiles[o] += 1.0
            tiles[o + 1] += a
            tiles[o + 2] += a2
            if a > tiles[o + 3]:
                tiles[o + 3] = a
            tiles[o + 4] += small
        elif back < N1:
            c1 = L1.add_older(tiles, back, (1.0, a, a2, a, small), c1)

        back = 0
        if history:
            back = floor(last / W2) - floor(ts / W2)
            if back < 0:
                c2 = L2.advance(before, tiles, -back, c2)
                back = 0
        if back == 0:
            o = H2
            tiles[o] += 1.0
            tiles[o + 1] += a
            tiles[o + 2] += a2
            if a > tiles[o + 3]:
                tiles[o + 3] = a
            in_24h = True
        elif back < N2:
            c2 = L2.add_older(tiles, back, (1.0, a, a2, a), c2)
            in_24h = True

        back = 0
        if history:
            back = floor(last / W3) - floor(ts / W3)
            if back < 0:
                c3 = L3.advance(before, tiles, -back, c3)
                back = 0
        if back == 0:
            o = H3
            tiles[o] += 1.0
            tiles[o + 1] += a
            tiles[o + 2] += a2
            if a > tiles[o + 3]:
                tiles[o + 3] = a
            in_30d = in_7d = True
        elif back < N3:
            c3 = L3.add_older(tiles, back, (1.0, a, a2, a), c3)
            in_30d = True
            in_7d = back < N7
        caches = (c1, c2, c3)

    # --- window aggregates: cached older-tile totals + the head tile -----------------
    t = c1[0]
    o = H1
    n1 = t[0] + tiles[o]
    s1 = t[1] + tiles[o + 1]
    q1 = t[2] + tiles[o + 2]
    m1 = tiles[o + 3]
    if t[3] > m1:
        m1 = t[3]
    small1 = t[4] + tiles[o + 4]
    t = c2[0]
    o = H2
    n24 = t[0] + tiles[o]
    s24 = t[1] + tiles[o + 1]
    q24 = t[2] + tiles[o + 2]
    m24 = tiles[o + 3]
    if t[3] > m24:
        m24 = t[3]
    t, u = c3
    o = H3
    hn, hs, hq, hm = tiles[o : o + 4]
    n7 = t[0] + hn
    s7 = t[1] + hs
    q7 = t[2] + hq
    m7 = t[3] if t[3] > hm else hm
    n30 = u[0] + hn
    s30 = u[1] + hs
    q30 = u[2] + hq
    m30 = u[3] if u[3] > hm else hm

    # Means and population stds (windows hold at least this transaction, except for
    # late or duplicate ones). Variance below 1e-6 of mean**2 is float32 noise: 0.
    mean1 = s1 / n1 if n1 else 0.0
    var = q1 / n1 - mean1 * mean1 if n1 else 0.0
    std1 = sqrt(var) if var > 1e-6 * mean1 * mean1 else 0.0
    mean24 = s24 / n24 if n24 else 0.0
    var = q24 / n24 - mean24 * mean24 if n24 else 0.0
    std24 = sqrt(var) if var > 1e-6 * mean24 * mean24 else 0.0
    mean7 = s7 / n7 if n7 else 0.0
    var = q7 / n7 - mean7 * mean7 if n7 else 0.0
    std7 = sqrt(var) if var > 1e-6 * mean7 * mean7 else 0.0
    mean30 = s30 / n30 if n30 else 0.0
    var = q30 / n30 - mean30 * mean30 if n30 else 0.0
    std30 = sqrt(var) if var > 1e-6 * mean30 * mean30 else 0.0

    # --- against the 30-day history before this transaction -------------------------
    if in_30d:
        n0, s0, q0 = n30 - 1.0, s30 - a, q30 - a2
    else:
        n0, s0, q0 = n30, s30, q30
    ratio = 1.0
    zscore = 0.0
    if n0 >= 1.0:
        mean0 = s0 / n0
        ratio = _ratio(amount, mean0)
        if n0 >= 2.0:
            var0 = q0 / n0 - mean0 * mean0
            std0 = sqrt(var0) if var0 > 0.0 else 0.0
            floor0 = ZSCORE_MIN_STD_FRACTION * mean0
            if std0 < floor0:
                std0 = floor0
            if std0 > 0.0:
                zscore = (amount - mean0) / std0
                if zscore > ZSCORE_CAP:
                    zscore = ZSCORE_CAP
                elif zscore < -ZSCORE_CAP:
                    zscore = -ZSCORE_CAP

    ratio24 = ratio7 = 1.0
    n0 = n24 - 1.0 if in_24h else n24
    if n0 >= 1.0:
        ratio24 = _ratio(amount, (s24 - a if in_24h else s24) / n0)
    n0 = n7 - 1.0 if in_7d else n7
    if n0 >= 1.0:
        ratio7 = _ratio(amount, (s7 - a if in_7d else s7) / n0)

    since_prev = NO_PREVIOUS_S
    if history:
        since_prev = abs(ts - last)
        if since_prev > NO_PREVIOUS_S:
            since_prev = NO_PREVIOUS_S

    # --- calendar in Lima time ------------------------------------------------------
    local = ts + _LIMA_UTC_OFFSET_S
    day = floor(local / DAY_S)
    second_of_day = local - day * DAY_S
    angle = second_of_day * _HOUR_RAD_PER_S
    dow = (day + 3) % 7
    is_night = 1.0 if second_of_day >= _NIGHT_START_S or second_of_day < _NIGHT_END_S else 0.0

    # --- novelty memories -----------------------------------------------------------
    merchants, devices, ips = old.merchants, old.devices, old.ips
    m_counts, m_seen = old.merchant_counts, old.merchant_seen
    new_merchant = new_device = new_ip = 0.0
    at_merchant = 0.0
    since_merchant = NO_PREVIOUS_S
    value = tx.merchant_id
    if value is not None:
        h = crc32(value.encode())  # stable_hash, inlined
        i = merchants.index(h) if h in merchants else -1
        if i >= 0:
            at_merchant = float(m_counts[i])
            since_merchant = abs(ts - m_seen[i])
            if since_merchant > NO_PREVIOUS_S:
                since_merchant = NO_PREVIOUS_S
        elif history:
            new_merchant = 1.0
        if counted:
            second = _second(ts)
            if i >= 0:
                count = m_counts[i] + 1 if m_counts[i] < COUNT_CAP else COUNT_CAP
                if m_seen[i] > second:
                    second = m_seen[i]
                merchants = (*merchants[:i], *merchants[i + 1 :], h)
                m_counts = (*m_counts[:i], *m_counts[i + 1 :], count)
                m_seen = (*m_seen[:i], *m_seen[i + 1 :], second)
            elif len(merchants) >= MAX_MERCHANTS:
                merchants = (*merchants[1:], h)
                m_counts = (*m_counts[1:], 1)
                m_seen = (*m_seen[1:], second)
            else:
                merchants = (*merchants, h)
                m_counts = (*m_counts, 1)
                m_seen = (*m_seen, second)
    categories, c_counts = old.categories, old.category_counts
    new_category = category_share = 0.0
    value = tx.merchant_category
    if value is not None:
        h = crc32(value.encode())  # stable_hash, inlined
        i = categories.index(h) if h in categories else -1
        if i >= 0:
            category_share = c_counts[i] / sum(c_counts)
        elif history:
            new_category = 1.0
        if counted:
            if i >= 0:
                count = c_counts[i] + 1 if c_counts[i] < COUNT_CAP else COUNT_CAP
                categories = (*categories[:i], *categories[i + 1 :], h)
                c_counts = (*c_counts[:i], *c_counts[i + 1 :], count)
            elif len(categories) >= MAX_CATEGORIES:
                categories = (*categories[1:], h)
                c_counts = (*c_counts[1:], 1)
            else:
                categories = (*categories, h)
                c_counts = (*c_counts, 1)
    value = tx.device_id
    if value is not None:
        h = crc32(value.encode())  # stable_hash, inlined
        if history and h not in devices:
            new_device = 1.0
        if counted and (not devices or devices[-1] != h):
            devices = remember(devices, h, MAX_DEVICES)
    value = tx.ip_address
    if value is not None:
        h = crc32(value.encode())  # stable_hash, inlined
        if history and h not in ips:
            new_ip = 1.0
        if counted and (not ips or ips[-1] != h):
            ips = remember(ips, h, MAX_IPS)

    # --- location -------------------------------------------------------------------
    geo = old.geo
    distance = velocity = 0.0
    lat, lon = tx.latitude, tx.longitude
    if lat is not None and lon is not None and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        if geo is not None:
            distance = haversine_km(geo[0], geo[1], lat, lon)
            velocity = speed_kmh(distance, ts - geo[2])
        if counted and (geo is None or ts >= geo[2]):
            geo = (lat, lon, ts)

    # --- static attributes ----------------------------------------------------------
    age = tx.account_age_days
    if age is None or not age > 0.0:  # absent, NaN or negative
        age = 0.0
    balance = tx.account_balance
    emptied = 0.0
    if balance is None or balance != balance:
        to_balance = 0.0
    elif balance <= 0.0 or amount >= BALANCE_RATIO_CAP * balance:
        to_balance = BALANCE_RATIO_CAP
    else:
        to_balance = amount / balance
    if balance is not None and balance > 0.0 and 0.0 <= balance - amount < EMPTIED_LEFT:
        emptied = 1.0

    frauds = old.frauds  # most accounts have none reported: skip the call
    frauds_30d, days_since_fraud = (
        fraud_features(frauds, old.fraud_known, ts, last if last > ts else ts) if frauds else NO_FRAUD
    )

    # By name, in spec order (the tests check both against features.definitions).
    features = {
        "account_tx_count_1h": n1,
        "account_tx_count_24h": n24,
        "account_tx_count_7d": n7,
        "account_tx_count_30d": n30,
        "account_amount_sum_1h": s1,
        "account_amount_sum_24h": s24,
        "account_amount_sum_7d": s7,
        "account_amount_sum_30d": s30,
        "account_amount_mean_1h": mean1,
        "account_amount_mean_24h": mean24,
        "account_amount_mean_7d": mean7,
        "account_amount_mean_30d": mean30,
        "account_amount_std_1h": std1,
        "account_amount_std_24h": std24,
        "account_amount_std_7d": std7,
        "account_amount_std_30d": std30,
        "account_amount_max_1h": m1,
        "account_amount_max_24h": m24,
        "account_amount_max_7d": m7,
        "account_amount_max_30d": m30,
        "account_small_tx_count_1h": small1,
        "account_seconds_since_prev_tx": since_prev,
        "account_amount_to_mean_30d": ratio,
        "account_amount_zscore_30d": zscore,
        "tx_amount_log1p": log1p(amount),
        "tx_hour_sin": sin(angle),
        "tx_hour_cos": cos(angle),
        "tx_dow_sin": _DOW_SIN[dow],
        "tx_dow_cos": _DOW_COS[dow],
        "tx_is_weekend": 1.0 if dow >= 5 else 0.0,
        "tx_is_night": is_night,
        "account_new_merchant": new_merchant,
        "account_new_device": new_device,
        "account_new_ip": new_ip,
        "account_geo_distance_km": distance,
        "account_geo_velocity_kmh": velocity,
        **_TT_HOT.get(tx.transaction_type, _TT_UNKNOWN),
        **_CH_HOT.get(tx.channel, _CH_UNKNOWN),
        **_AT_HOT.get(tx.account_type, _AT_UNKNOWN),
        "account_age_days": float(age),
        "account_amount_to_balance": to_balance,
        "account_balance_emptied": emptied,
        "account_amount_to_mean_24h": ratio24,
        "account_amount_to_mean_7d": ratio7,
        "account_merchant_tx_count": at_merchant,
        "account_seconds_since_merchant": since_merchant,
        "account_new_category": new_category,
        "account_category_share": category_share,
        "account_fraud_count_30d": frauds_30d,
        "account_days_since_reported_fraud": days_since_fraud,
    }

    if duplicate:
        return _update(old, features, True, False, 0)
    # --- id memory (features.account.ids): every id inside the tolerance of the newest ---
    # An id whose whole second s is <= newest - tolerance - 1 belongs to an event that is
    # now late (ts < s + 1): a redelivery of it is not counted again, so it is forgotten.
    # A late event is kept against the newest event time it came at (it was scored: a
    # redelivery soon after is a duplicate, not scored again).
    newest = ts if ts > last else last
    second = _second(newest if late else ts)
    ids, seen, dropped = remember_id(old.ids, old.id_seen, tid, second, newest - late_tolerance_s - 1.0)
    memories = (m_counts, m_seen, categories, c_counts, seen, old.frauds, old.fraud_known)
    new = new_state((newest, tiles, caches, ids, merchants, devices, ips, geo, *memories))
    return _update(new, features, False, late, dropped)
