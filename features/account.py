"""Per-account rolling state and the account feature vector.

:func:`update_account` is the one implementation of account features: the Faust agent
calls it with the state decoded from its table, the offline evaluator with the state it
holds in a dict. It never mutates its input state; it returns a new one.

Window semantics are those of :mod:`features.windows` (tiles of 10 min / 2 h / 1 day;
each window ends at the account's newest event time). In short:

* ``account_tx_count_*``, ``_amount_sum_*``, ``_mean_*``, ``_std_*`` (population, ddof 0)
  and ``_max_*`` and ``account_small_tx_count_1h`` (amounts < 10) *include* the current
  transaction. Amounts in the windows are float32, so a std below ~0.1 % of the mean
  is indistinguishable from rounding and reads as exactly 0.
* ``account_amount_to_mean_30d`` and ``account_amount_zscore_30d`` compare the amount
  with the account's 30-day history *before* it. With no history the ratio is 1 and the
  z-score 0 (z-score needs 2 earlier transactions). The z-score's denominator is the
  history's std floored at 5 % of its mean, so a perfectly regular history does not turn
  a small change into a huge score; it is clipped to +-50.
* ``account_seconds_since_prev_tx`` is ``|ts - newest earlier event time|``, capped at
  (and, with no history, equal to) 30 days.
* ``account_new_merchant/_device/_ip`` are 1 when the account has history and the value
  is not among the last 16 merchants / 8 devices / 8 IPs it used (a least-recently-used
  memory of CRC-32 hashes); 0 when the value is absent or the account is new.
* ``account_geo_distance_km`` / ``account_geo_velocity_kmh``: from the newest earlier
  transaction that had coordinates (:mod:`features.geo`); 0 when not computable.
* ``tx_*`` describe the transaction alone: log1p(amount); hour of day (fractional) and
  day of week as sin/cos in Lima time (UTC-5, no DST); weekend (Sat/Sun) and night
  (22:00-06:00) flags; one-hot type / channel / account type with an ``unknown`` bucket.
* ``account_age_days`` (0 when absent); ``account_amount_to_balance`` is amount/balance,
  0 when the balance is absent, capped at 100 (also for a zero or negative balance).

Special events:

* *duplicate* -- the transaction id is among the last 12 ids seen: the state is returned
  unchanged and the features are computed against it (not counted a second time). Ids
  are forgotten once the newest event moves more than ``late_tolerance_s`` past them:
  a redelivery of an event that old is late, so it is not counted either.
* *late* -- more than ``late_tolerance_s`` behind the newest event: windows, memories and
  location are not updated (only its id is remembered, so a redelivery reads as a
  duplicate); features are computed against the current windows, which do not contain it.
* *idle* -- an account idle for more than ``ttl_s`` starts again from empty state.

State is stored as bytes (:meth:`AccountState.to_bytes`, a version byte first): at most
:data:`MAX_ENCODED_SIZE` (1013) bytes whatever the activity, about 280 for an account
with a transaction a day. Bump :data:`STATE_VERSION` (and the table name) whenever the
layout or the meaning of a tile changes.

>>> from features.transaction import Transaction
>>> u = update_account(None, Transaction("t1", "a1", ts=1_700_000_000.0, amount=25.0))
>>> u.features["account_tx_count_1h"], u.features["account_amount_mean_30d"], u.late
(1.0, 25.0, False)
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass
from math import cos, floor, log1p, pi, sin, sqrt
from typing import NamedTuple
from zlib import crc32

from features.errors import StateDecodeError
from features.geo import haversine_km, speed_kmh
from features.transaction import ACCOUNT_TYPES, CHANNELS, TRANSACTION_TYPES, Transaction
from features.windows import (
    DAY_S,
    WINDOWS,
    Cache,
    TileLevel,
    bit_positions,
    gather,
    is_expired,
    le_bytes,
    positions_bitmap,
    remember,
    structs,
    zeros,
)

__all__ = [
    "ACCOUNT_FEATURES",
    "MAX_ENCODED_SIZE",
    "AccountState",
    "AccountUpdate",
    "is_expired",
    "update_account",
]

#: Layout version: the first byte of :meth:`AccountState.to_bytes`.
STATE_VERSION = 1
DEFAULT_TTL_S = 35 * DAY_S
SMALL_AMOUNT = 10.0  # PEN; card testers probe with tiny amounts
NO_PREVIOUS_S = 30 * DAY_S
MAX_IDS = 12
MAX_MERCHANTS = 16
MAX_DEVICES = 8
MAX_IPS = 8
LIMA_UTC_OFFSET_S = -5 * 3600.0
RATIO_CAP = 100.0
AMOUNT_RATIO_CAP = 1000.0
ZSCORE_CAP = 50.0
ZSCORE_MIN_STD_FRACTION = 0.05

_WINDOW_NAMES = ("1h", "24h", "7d", "30d")
_TT = (*TRANSACTION_TYPES, "unknown")
_CH = (*CHANNELS, "unknown")
_AT = (*ACCOUNT_TYPES, "unknown")

ACCOUNT_FEATURES: tuple[str, ...] = (
    *(f"account_tx_count_{w}" for w in _WINDOW_NAMES),
    *(f"account_amount_sum_{w}" for w in _WINDOW_NAMES),
    *(f"account_amount_mean_{w}" for w in _WINDOW_NAMES),
    *(f"account_amount_std_{w}" for w in _WINDOW_NAMES),
    *(f"account_amount_max_{w}" for w in _WINDOW_NAMES),
    "account_small_tx_count_1h",
    "account_seconds_since_prev_tx",
    "account_amount_to_mean_30d",
    "account_amount_zscore_30d",
    "tx_amount_log1p",
    "tx_hour_sin",
    "tx_hour_cos",
    "tx_dow_sin",
    "tx_dow_cos",
    "tx_is_weekend",
    "tx_is_night",
    "account_new_merchant",
    "account_new_device",
    "account_new_ip",
    "account_geo_distance_km",
    "account_geo_velocity_kmh",
    *(f"tx_type_{v}" for v in _TT),
    *(f"tx_channel_{v}" for v in _CH),
    *(f"account_type_{v}" for v in _AT),
    "account_age_days",
    "account_amount_to_balance",
)


def _one_hot(
    values: tuple[str, ...],
) -> tuple[dict[str | None, tuple[float, ...]], tuple[float, ...]]:
    table: dict[str | None, tuple[float, ...]] = {
        v: tuple(1.0 if j == i else 0.0 for j in range(len(values))) for i, v in enumerate(values)
    }
    return table, table.pop("unknown")


_TT_HOT, _TT_UNKNOWN = _one_hot(_TT)
_CH_HOT, _CH_UNKNOWN = _one_hot(_CH)
_AT_HOT, _AT_UNKNOWN = _one_hot(_AT)
# 1970-01-01 was a Thursday; with Monday = 0 the epoch day has weekday 3.
_DOW_SIN = tuple(sin(2 * pi * d / 7) for d in range(7))
_DOW_COS = tuple(cos(2 * pi * d / 7) for d in range(7))
_HOUR_RAD_PER_S = 2 * pi / DAY_S
_NIGHT_START_S = 22 * 3600.0
_NIGHT_END_S = 6 * 3600.0

# The three tile levels live in one flat float32 array, row-major. Columns: count, sum,
# sum of squares, max [, count of small amounts at the 10-minute level].
_W1, _N1 = WINDOWS["1h"].tile_s, WINDOWS["1h"].tiles
_W2, _N2 = WINDOWS["24h"].tile_s, WINDOWS["24h"].tiles
_W3, _N3 = WINDOWS["30d"].tile_s, WINDOWS["30d"].tiles
_N7 = WINDOWS["7d"].tiles
_L1 = TileLevel(0, _N1, "cssmc", spans=(_N1,))
_L2 = TileLevel(_L1.end, _N2, "cssm", spans=(_N2,))
_L3 = TileLevel(_L2.end, _N3, "cssm", spans=(_N7, _N3))
_LEVELS = (_L1, _L2, _L3)
_H1, _H2, _H3 = _L1.head, _L2.head, _L3.head
_ZERO_TILES = zeros(_L3.end)
_ZERO_CACHES = (_L1.zero_caches, _L2.zero_caches, _L3.zero_caches)
_Z5, _Z4 = _L1.zero_caches[0], _L2.zero_caches[0]
_U16_MAX = 65535
_F32 = array("f", [0.0])  # scratch cell: storing and reading back rounds to float32
_INF = math.inf

# Wire layout (little-endian): version, last_ts, flags [, lat, lon, geo_ts], then four
# hash memories (count byte + uint32s), then the three tile levels (see _pack_level).
_HEAD = struct.Struct("<BdB")
_HEAD_REST = struct.Struct("<dB")
_GEO = struct.Struct("<ddd")
_BITS = {_N1: struct.Struct("<BB"), _N2: struct.Struct("<HH"), _N3: struct.Struct("<II")}
_FLAG_GEO = 1
# Cached window totals (count, sum, sum_sq, max [, small count]) of the windows whose
# older tiles are not empty: 1h, 24h, 7d, 30d. Counts and maxima are float32-exact.
_CACHE5 = struct.Struct("<fddff")
_CACHE4 = struct.Struct("<fddf")
_MEMORY = structs("B%dI", 16)
_FLOATS = structs("%df", _N3)
_MULTI4 = [struct.Struct(f"<{m}H{3 * m}f") for m in range(_N3 + 1)]
_MULTI5 = [struct.Struct(f"<{2 * m}H{3 * m}f") for m in range(_N1 + 1)]
_CACHE_LAYOUTS = ((1, _CACHE5, _Z5), (2, _CACHE4, _Z4), (4, _CACHE4, _Z4), (8, _CACHE4, _Z4))


class AccountState(NamedTuple):
    """Compact per-account state; an immutable value.

    ``tiles`` is one float32 array holding the 10-minute, 2-hour and day tile levels
    (:class:`~features.windows.TileLevel`: count, sum, sum of squares, max, plus the
    small-amount count at the 10-minute level) ending at the tiles of ``last_ts``;
    ``caches`` are the windows' totals over their older tiles, kept incrementally and
    encoded with the tiles (1h, 24h, then 7d and 30d; see ``TileLevel``). The hash
    memories are tuples of uint32, newest last. ``geo`` is ``(lat, lon, ts)`` of the
    newest transaction with coordinates, or ``None``. ``AccountState()`` is the empty
    state (no history).

    The encoding is at most :data:`MAX_ENCODED_SIZE` bytes whatever the activity: empty
    tiles are not stored and single-transaction tiles take 4 bytes.
    """

    last_ts: float = -_INF
    tiles: array[float] = _ZERO_TILES
    caches: tuple[tuple[Cache, ...], ...] = _ZERO_CACHES
    ids: tuple[int, ...] = ()
    merchants: tuple[int, ...] = ()
    devices: tuple[int, ...] = ()
    ips: tuple[int, ...] = ()
    geo: tuple[float, float, float] | None = None

    def to_bytes(self) -> bytes:
        """Encode to the versioned little-endian layout (≤ :data:`MAX_ENCODED_SIZE` bytes).

        Layout: version u8, last_ts f64, flags u8, [lat, lon, geo_ts f64], four hash
        memories (count u8 + uint32 each: ids, merchants, devices, IPs), the three tile
        levels (see ``_pack_level``), then a u8 bitmap of the non-empty window caches
        (1h, 24h, 7d, 30d) and those caches. Per-tile counts are uint16 and saturate at
        65,535 events in one tile.
        """
        geo = self.geo
        parts = [_HEAD.pack(STATE_VERSION, self.last_ts, _FLAG_GEO if geo else 0)]
        if geo is not None:
            parts.append(_GEO.pack(*geo))
        for memory in (self.ids, self.merchants, self.devices, self.ips):
            parts.append(_MEMORY[len(memory)].pack(len(memory), *memory))
        tiles = self.tiles
        _pack_level(parts, tiles, _L1)
        _pack_level(parts, tiles, _L2)
        _pack_level(parts, tiles, _L3)
        (c1,), (c24,), (c7, c30) = self.caches
        parts.append(
            bytes([(c1[0] != 0) | (c24[0] != 0) << 1 | (c7[0] != 0) << 2 | (c30[0] != 0) << 3])
        )
        if c1[0]:
            parts.append(_CACHE5.pack(*c1))
        for cache in (c24, c7, c30):
            if cache[0]:
                parts.append(_CACHE4.pack(*cache))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> AccountState:
        """Decode :meth:`to_bytes` output; :class:`StateDecodeError` if it is not that."""
        if not data:
            raise StateDecodeError("account state truncated: no bytes")
        if data[0] != STATE_VERSION:
            version = data[0]
            raise StateDecodeError(
                f"account state has layout version {version}, this code reads {STATE_VERSION}"
            )
        try:
            last_ts, flags = _HEAD_REST.unpack_from(data, 1)
            pos = _HEAD.size
            geo = None
            if flags & _FLAG_GEO:
                geo = _GEO.unpack_from(data, pos)
                pos += _GEO.size
            memories = []
            for capacity in (MAX_IDS, MAX_MERCHANTS, MAX_DEVICES, MAX_IPS):
                n = data[pos]
                if n > capacity:
                    raise StateDecodeError(f"account state memory of {n} hashes exceeds {capacity}")
                layout = _MEMORY[n]
                memories.append(layout.unpack_from(data, pos)[1:])
                pos += layout.size
            tiles = _ZERO_TILES[:]
            pos = _unpack_level(data, pos, tiles, _L1)
            pos = _unpack_level(data, pos, tiles, _L2)
            pos = _unpack_level(data, pos, tiles, _L3)
            present = data[pos]
            pos += 1
            if present >> 4:
                raise StateDecodeError(f"account state cache bitmap {present:#x} is invalid")
            caches = []
            for bit, layout, zero in _CACHE_LAYOUTS:
                if present & bit:
                    caches.append(layout.unpack_from(data, pos))
                    pos += layout.size
                else:
                    caches.append(zero)
        except (struct.error, IndexError):
            raise StateDecodeError(
                f"account state truncated: {len(data)} bytes do not hold a whole state"
            ) from None
        if pos != len(data):
            raise StateDecodeError(f"account state has {len(data) - pos} unexpected trailing bytes")
        ids, merchants, devices, ips = memories
        c1, c24, c7, c30 = caches
        return cls(last_ts, tiles, ((c1,), (c24,), (c7, c30)), ids, merchants, devices, ips, geo)


def _pack_level(parts: list[bytes], tiles: array[float], level: TileLevel) -> None:
    """Bitmaps of single- and multi-transaction tiles, then their values.

    A single-transaction tile is fully described by its amount (count 1, sum = max =
    amount, sum_sq = amount**2 in float32, small = amount < 10), so it takes 4 bytes;
    the other non-empty tiles store uint16 counts (and small counts) then float32 sums,
    sums of squares and maxima, column by column.
    """
    width, base, end, n = level.width, level.base, level.end, level.tiles
    counts = tiles[base:end:width]
    single = [i for i, c in enumerate(counts) if c == 1.0]
    multi = [i for i, c in enumerate(counts) if c > 1.0]
    parts.append(_BITS[n].pack(positions_bitmap(single), positions_bitmap(multi)))
    if single:
        parts.append(_FLOATS[len(single)].pack(*gather(tiles[base + 1 : end : width], single)))
    if multi:
        m = len(multi)
        columns = [gather(tiles[base + j : end : width], multi) for j in range(width)]
        ints = [*columns[0], *columns[4]] if width == 5 else columns[0]
        try:
            packed_ints = array("H", map(int, ints))
        except OverflowError:  # more than 65,535 events in a tile: saturate
            packed_ints = array("H", [min(int(c), _U16_MAX) for c in ints])
        if m == n:  # every tile used: the float32 columns are copied as they are
            parts.append(le_bytes(packed_ints))
            parts += [le_bytes(col) for col in columns[1:4]]  # type: ignore[arg-type]
        else:
            layout = (_MULTI5 if width == 5 else _MULTI4)[m]
            parts.append(layout.pack(*packed_ints, *columns[1], *columns[2], *columns[3]))


def _unpack_level(data: bytes, pos: int, tiles: array[float], level: TileLevel) -> int:
    """Inverse of :func:`_pack_level`: fill the level's tiles, return the next offset."""
    n, width, base = level.tiles, level.width, level.base
    bits = _BITS[n]
    single_bits, multi_bits = bits.unpack_from(data, pos)
    pos += bits.size
    if single_bits & multi_bits:
        raise StateDecodeError("account state has a tile marked both single and multi")
    if (single_bits | multi_bits) >> n:
        raise StateDecodeError(f"account state tile bitmap has bits beyond {n} tiles")
    if single_bits:
        single = bit_positions(single_bits)
        layout = _FLOATS[len(single)]
        amounts = layout.unpack_from(data, pos)
        pos += layout.size
        for i, v in zip(single, amounts, strict=True):
            o = base + i * width
            tiles[o] = 1.0
            tiles[o + 1] = tiles[o + 3] = v
            tiles[o + 2] = v * v  # the array rounds to float32, as on insertion
            if width == 5 and v < SMALL_AMOUNT:
                tiles[o + 4] = 1.0
    if multi_bits:
        multi = bit_positions(multi_bits)
        m = len(multi)
        layout = (_MULTI5 if width == 5 else _MULTI4)[m]
        values = layout.unpack_from(data, pos)
        pos += layout.size
        ints = 2 * m if width == 5 else m
        columns = [values[:m], values[ints : ints + m], values[ints + m : ints + 2 * m]]
        columns.append(values[ints + 2 * m :])
        if width == 5:
            columns.append(values[m:ints])
        if m == n:  # every tile used: one strided copy per column
            for j, col in enumerate(columns):
                tiles[base + j : level.end : width] = array("f", col)
        else:
            for j, col in enumerate(columns):
                for i, v in zip(multi, col, strict=True):
                    tiles[base + i * width + j] = v
    return pos


#: Upper bound of ``len(AccountState.to_bytes())``: every memory full, every tile multi.
MAX_ENCODED_SIZE = (
    _HEAD.size
    + _GEO.size
    + 4  # memory lengths
    + 4 * (MAX_IDS + MAX_MERCHANTS + MAX_DEVICES + MAX_IPS)
    + sum(b.size for b in _BITS.values())
    + _N1 * (2 + 12 + 2)
    + _N2 * (2 + 12)
    + _N3 * (2 + 12)
    + 1
    + _CACHE5.size
    + 3 * _CACHE4.size
)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """Result of :func:`update_account`."""

    state: AccountState
    features: dict[str, float]
    duplicate: bool
    late: bool


_new_object = object.__new__
_set_field = object.__setattr__


def _update(
    state: AccountState, features: dict[str, float], dup: bool, late: bool
) -> AccountUpdate:
    """Build an AccountUpdate without the frozen dataclass ``__init__`` (2x faster)."""
    u = _new_object(AccountUpdate)
    _set_field(u, "state", state)
    _set_field(u, "features", features)
    _set_field(u, "duplicate", dup)
    _set_field(u, "late", late)
    return u


def update_account(
    state: AccountState | None,
    tx: Transaction,
    *,
    late_tolerance_s: float = 3600.0,
    ttl_s: float = DEFAULT_TTL_S,
) -> AccountUpdate:
    """Fold one transaction into the account state and return its feature vector.

    See the module docstring for every feature's exact definition. The input state is
    not modified (unchanged parts are shared with the returned state).
    """
    ts = float(tx.ts)  # an int from a hand-built Transaction would leak into features
    amount = float(tx.amount)
    tid = crc32(tx.transaction_id.encode())  # stable_hash, inlined
    if state is not None and not ts - state.last_ts <= ttl_s:  # idle past ttl (or empty)
        state = None
    duplicate = late = False
    if state is None:
        history = False
        last = ts
        old = _EMPTY
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
    in_30d = False
    if counted:
        before = tiles
        tiles = tiles[:]
        back = 0
        if history:
            back = floor(last / _W1) - floor(ts / _W1)
            if back < 0:
                c1 = _L1.advance(before, tiles, -back, c1)
                back = 0
        if back == 0:
            o = _H1
            tiles[o] += 1.0
            tiles[o + 1] += a
            tiles[o + 2] += a2
            if a > tiles[o + 3]:
                tiles[o + 3] = a
            tiles[o + 4] += small
        elif back < _N1:
            c1 = _L1.add_older(tiles, back, (1.0, a, a2, a, small), c1)

        back = 0
        if history:
            back = floor(last / _W2) - floor(ts / _W2)
            if back < 0:
                c2 = _L2.advance(before, tiles, -back, c2)
                back = 0
        if back == 0:
            o = _H2
            tiles[o] += 1.0
            tiles[o + 1] += a
            tiles[o + 2] += a2
            if a > tiles[o + 3]:
                tiles[o + 3] = a
        elif back < _N2:
            c2 = _L2.add_older(tiles, back, (1.0, a, a2, a), c2)

        back = 0
        if history:
            back = floor(last / _W3) - floor(ts / _W3)
            if back < 0:
                c3 = _L3.advance(before, tiles, -back, c3)
                back = 0
        if back == 0:
            o = _H3
            tiles[o] += 1.0
            tiles[o + 1] += a
            tiles[o + 2] += a2
            if a > tiles[o + 3]:
                tiles[o + 3] = a
            in_30d = True
        elif back < _N3:
            c3 = _L3.add_older(tiles, back, (1.0, a, a2, a), c3)
            in_30d = True
        caches = (c1, c2, c3)

    # --- window aggregates: cached older-tile totals + the head tile -----------------
    t = c1[0]
    o = _H1
    n1 = t[0] + tiles[o]
    s1 = t[1] + tiles[o + 1]
    q1 = t[2] + tiles[o + 2]
    m1 = tiles[o + 3]
    if t[3] > m1:
        m1 = t[3]
    small1 = t[4] + tiles[o + 4]
    t = c2[0]
    o = _H2
    n24 = t[0] + tiles[o]
    s24 = t[1] + tiles[o + 1]
    q24 = t[2] + tiles[o + 2]
    m24 = tiles[o + 3]
    if t[3] > m24:
        m24 = t[3]
    t, u = c3
    o = _H3
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
        ratio = amount / mean0 if mean0 * AMOUNT_RATIO_CAP > amount else AMOUNT_RATIO_CAP
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

    since_prev = NO_PREVIOUS_S
    if history:
        since_prev = abs(ts - last)
        if since_prev > NO_PREVIOUS_S:
            since_prev = NO_PREVIOUS_S

    # --- calendar in Lima time ------------------------------------------------------
    local = ts + LIMA_UTC_OFFSET_S
    day = floor(local / DAY_S)
    second_of_day = local - day * DAY_S
    angle = second_of_day * _HOUR_RAD_PER_S
    dow = (day + 3) % 7
    is_night = 1.0 if second_of_day >= _NIGHT_START_S or second_of_day < _NIGHT_END_S else 0.0

    # --- novelty memories -----------------------------------------------------------
    merchants, devices, ips = old.merchants, old.devices, old.ips
    new_merchant = new_device = new_ip = 0.0
    value = tx.merchant_id
    if value is not None:
        h = crc32(value.encode())  # stable_hash, inlined
        if history and h not in merchants:
            new_merchant = 1.0
        if counted and (not merchants or merchants[-1] != h):
            merchants = remember(merchants, h, MAX_MERCHANTS)
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
    if balance is None or balance != balance:
        to_balance = 0.0
    elif balance <= 0.0 or amount >= RATIO_CAP * balance:
        to_balance = RATIO_CAP
    else:
        to_balance = amount / balance

    # fmt: off
    features = dict(
        zip(
            ACCOUNT_FEATURES,
            (
                n1, n24, n7, n30,
                s1, s24, s7, s30,
                mean1, mean24, mean7, mean30,
                std1, std24, std7, std30,
                m1, m24, m7, m30,
                small1,
                since_prev,
                ratio,
                zscore,
                log1p(amount),
                sin(angle),
                cos(angle),
                _DOW_SIN[dow],
                _DOW_COS[dow],
                1.0 if dow >= 5 else 0.0,
                is_night,
                new_merchant,
                new_device,
                new_ip,
                distance,
                velocity,
                *_TT_HOT.get(tx.transaction_type, _TT_UNKNOWN),
                *_CH_HOT.get(tx.channel, _CH_UNKNOWN),
                *_AT_HOT.get(tx.account_type, _AT_UNKNOWN),
                float(age),
                to_balance,
            ),
            strict=True,
        )
    )
    # fmt: on

    if duplicate:
        return _update(old, features, True, False)
    ids = old.ids
    if ts - last > late_tolerance_s:
        # Every remembered id belongs to an event that is now late: a redelivery of it
        # is never counted again, so the ids need not be kept.
        ids = (tid,)
    else:
        ids = (*ids[1:], tid) if len(ids) >= MAX_IDS else (*ids, tid)
    if late:
        new = _state((last, tiles, caches, ids, merchants, devices, ips, geo))
        return _update(new, features, False, True)
    newest = ts if ts > last else last
    new = _state((newest, tiles, caches, ids, merchants, devices, ips, geo))
    return _update(new, features, False, False)


_EMPTY = AccountState()


def _state(fields: tuple[object, ...]) -> AccountState:
    """Build an AccountState without the Python-level NamedTuple ``__new__`` call."""
    return tuple.__new__(AccountState, fields)  # type: ignore[type-var]
