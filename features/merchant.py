"""Per-merchant rolling state: traffic and *reported* fraud around each merchant.

A merchant (or terminal) that suddenly sees a burst of transactions, or whose recent
transactions keep turning out fraudulent (a compromised terminal, a skimmer, a
collusive merchant), raises the risk of every transaction there.

What each feature means is its spec in :mod:`features.definitions`. Windows are those
of :mod:`features.windows` (10-minute, 2-hour and day tiles, ending at the merchant's
newest event time) and include the current transaction. Fraud counts come from
:func:`record_merchant_fraud`, called when a label *arrives*, and count by the
transaction's event time: a model never sees a label before its arrival, so nothing
leaks from the future. A transaction without ``merchant_id`` gets
:data:`NO_MERCHANT_FEATURES` (all zero, ``has_merchant`` too) instead of calling
:func:`update_merchant`.

The caller should not call :func:`update_merchant` for a transaction that the account
update reported as a duplicate (the merchant state keeps no transaction ids).

>>> from features.transaction import Transaction
>>> tx = Transaction("t1", "a1", ts=1_700_000_000.0, amount=40.0, merchant_id="m1")
>>> state = record_merchant_fraud(update_merchant(None, tx).state, tx.ts)
>>> u = update_merchant(state, Transaction("t2", "a2", ts=tx.ts + 60, amount=60.0))
>>> u.features["merchant_tx_count_1h"], u.features["merchant_fraud_rate_7d"]
(2.0, 0.5)
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from math import floor
from typing import NamedTuple

from features.definitions import AMOUNT_RATIO_CAP, FRAUD_LAG_DAYS, LAGGED_WINDOWS_DAYS, MERCHANT_FEATURES
from features.errors import StateDecodeError
from features.transaction import Transaction
from features.windows import (
    DAY_S,
    WINDOWS,
    Cache,
    TileLevel,
    bit_positions,
    gather,
    is_expired,
    positions_bitmap,
    structs,
    zeros,
)

__all__ = [
    "MERCHANT_FEATURES",
    "NO_MERCHANT_FEATURES",
    "MerchantState",
    "MerchantUpdate",
    "is_expired",
    "record_merchant_fraud",
    "update_merchant",
]

#: Layout version: the first byte of :meth:`MerchantState.to_bytes`.
STATE_VERSION = 1
DEFAULT_TTL_S = 35 * DAY_S

#: Features of a transaction that names no merchant.
NO_MERCHANT_FEATURES: dict[str, float] = dict.fromkeys(MERCHANT_FEATURES, 0.0)

_W1, _N1 = WINDOWS["1h"].tile_s, WINDOWS["1h"].tiles
_W2, _N2 = WINDOWS["24h"].tile_s, WINDOWS["24h"].tiles
_W3, _N3 = WINDOWS["30d"].tile_s, WINDOWS["30d"].tiles
_N7 = WINDOWS["7d"].tiles
# Columns: count at the 10-minute and 2-hour levels; count, amount sum, fraud count per day.
_L1 = TileLevel(0, _N1, "c", spans=(_N1,))
_L2 = TileLevel(_L1.end, _N2, "c", spans=(_N2,))
_L3 = TileLevel(_L2.end, _N3, "csc", spans=(_N7, _N3))
_LEVELS = (_L1, _L2, _L3)
_H1, _H2, _H3 = _L1.head, _L2.head, _L3.head
_ZERO_TILES = zeros(_L3.end)
_ZERO_CACHES = (_L1.zero_caches, _L2.zero_caches, _L3.zero_caches)
_Z1, _Z3 = _L1.zero_caches[0], _L3.zero_caches[0]
_INF = math.inf
# Rows of the day level in the label-aware windows: tiles FRAUD_LAG_DAYS .. +n-1 back.
_LAGGED = tuple(
    (_L3.base + (_N3 - FRAUD_LAG_DAYS - n) * 3, _L3.base + (_N3 - FRAUD_LAG_DAYS) * 3) for n in LAGGED_WINDOWS_DAYS
)
if FRAUD_LAG_DAYS + max(LAGGED_WINDOWS_DAYS) > _N3:  # pragma: no cover
    raise RuntimeError("the label-aware windows must fit in the merchant's day tiles")
_U32_MAX = 2**32 - 1

# Wire layout (little-endian): version u8, last_ts f64, then per level a bitmap of
# non-empty tiles and their columns (uint32 counts, float32 sums, uint32 fraud counts).
_HEAD = struct.Struct("<Bd")
_HEAD_REST = struct.Struct("<d")
_BITS = {_N1: struct.Struct("<B"), _N2: struct.Struct("<H"), _N3: struct.Struct("<I")}
_UINTS = structs("%dI", _N2)
_DAYS = [struct.Struct(f"<{2 * m}I{m}f") for m in range(_N3 + 1)]
# Cached window totals of the windows whose older tiles are not empty (1h, 24h: count;
# 7d, 30d: count, amount sum, fraud count), after the tiles behind a u8 bitmap.
_COUNT = struct.Struct("<f")
_DAY = struct.Struct("<fdf")


class MerchantState(NamedTuple):
    """Compact per-merchant state; an immutable value. ``MerchantState()`` is empty.

    ``tiles`` holds the three tile levels in one float32 array (see
    :class:`~features.windows.TileLevel`), ``caches`` their derived window totals.
    Encoded size is at most :data:`MAX_ENCODED_SIZE` (489) bytes.
    """

    last_ts: float = -_INF
    tiles: array[float] = _ZERO_TILES
    caches: tuple[tuple[Cache, ...], ...] = _ZERO_CACHES

    def to_bytes(self) -> bytes:
        """Encode to the versioned little-endian layout; empty tiles are not stored.

        Layout: version u8, last_ts f64; per level a bitmap of non-empty tiles and their
        columns (uint32 counts, then float32 amount sums and uint32 fraud counts at the
        day level); a u8 bitmap of non-empty window caches (1h, 24h, 7d, 30d) and those.
        """
        tiles = self.tiles
        parts = [_HEAD.pack(STATE_VERSION, self.last_ts)]
        for level in (_L1, _L2):
            counts = tiles[level.base : level.end]
            used = [i for i, c in enumerate(counts) if c]
            parts.append(_BITS[level.tiles].pack(positions_bitmap(used)))
            if used:
                parts.append(_UINTS[len(used)].pack(*_uints(gather(counts, used))))
        base, end = _L3.base, _L3.end
        counts, frauds = tiles[base:end:3], tiles[base + 2 : end : 3]
        used = [i for i, (c, f) in enumerate(zip(counts, frauds, strict=True)) if c or f]
        parts.append(_BITS[_N3].pack(positions_bitmap(used)))
        if used:
            sums = gather(tiles[base + 1 : end : 3], used)
            ints = _uints([*gather(counts, used), *gather(frauds, used)])
            parts.append(_DAYS[len(used)].pack(*ints, *sums))
        (c1,), (c24,), (c7, c30) = self.caches
        parts.append(bytes([(c1[0] != 0) | (c24[0] != 0) << 1 | any(c7) << 2 | any(c30) << 3]))
        if c1[0]:
            parts.append(_COUNT.pack(*c1))
        if c24[0]:
            parts.append(_COUNT.pack(*c24))
        for cache in (c7, c30):
            if any(cache):
                parts.append(_DAY.pack(*cache))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> MerchantState:
        """Decode :meth:`to_bytes` output; :class:`StateDecodeError` if it is not that."""
        if not data:
            raise StateDecodeError("merchant state truncated: no bytes")
        if data[0] != STATE_VERSION:
            raise StateDecodeError(
                f"merchant state has layout version {data[0]}, this code reads {STATE_VERSION}"
            )
        tiles = _ZERO_TILES[:]
        try:
            (last_ts,) = _HEAD_REST.unpack_from(data, 1)
            pos = _HEAD.size
            for level in _LEVELS:
                bits = _BITS[level.tiles]
                (mask,) = bits.unpack_from(data, pos)
                pos += bits.size
                if mask >> level.tiles:
                    raise StateDecodeError(
                        f"merchant state tile bitmap has bits beyond {level.tiles} tiles"
                    )
                if not mask:
                    continue
                used = bit_positions(mask)
                m = len(used)
                layout = _DAYS[m] if level is _L3 else _UINTS[m]
                values = layout.unpack_from(data, pos)
                pos += layout.size
                columns: tuple[tuple[float, ...], ...] = (values,)
                if level is _L3:  # counts, fraud counts, sums -> columns count, sum, fraud
                    columns = (values[:m], values[2 * m :], values[m : 2 * m])
                for j, column in enumerate(columns):
                    for i, v in zip(used, column, strict=True):
                        tiles[level.base + i * level.width + j] = v
            present = data[pos]
            pos += 1
            if present >> 4:
                raise StateDecodeError(f"merchant state cache bitmap {present:#x} is invalid")
            caches = []
            for i, (layout, zero) in enumerate(
                ((_COUNT, _Z1), (_COUNT, _Z1), (_DAY, _Z3), (_DAY, _Z3))
            ):
                if present >> i & 1:
                    caches.append(layout.unpack_from(data, pos))
                    pos += layout.size
                else:
                    caches.append(zero)
        except (struct.error, IndexError):
            raise StateDecodeError(
                f"merchant state truncated: {len(data)} bytes do not hold a whole state"
            ) from None
        if pos != len(data):
            raise StateDecodeError(
                f"merchant state has {len(data) - pos} unexpected trailing bytes"
            )
        c1, c24, c7, c30 = caches
        return cls(last_ts, tiles, ((c1,), (c24,), (c7, c30)))


def _uints(values: Sequence[float]) -> array[int]:
    """Counts as uint32 (saturating; a float32 count is exact up to 2**24 anyway)."""
    try:
        return array("I", map(int, values))
    except OverflowError:  # pragma: no cover - 4 billion events in one tile
        return array("I", [min(int(v), _U32_MAX) for v in values])


#: Upper bound of ``len(MerchantState.to_bytes())``.
MAX_ENCODED_SIZE = (
    _HEAD.size
    + sum(_BITS[level.tiles].size + level.tiles * 4 * level.width for level in _LEVELS)
    + 1
    + 2 * _COUNT.size
    + 2 * _DAY.size
)


@dataclass(frozen=True, slots=True)
class MerchantUpdate:
    """Result of :func:`update_merchant`."""

    state: MerchantState
    features: dict[str, float]
    late: bool


_new_object = object.__new__
_set_field = object.__setattr__  # faster than the frozen dataclass __init__


def _advanced(
    state: MerchantState, ts: float, tiles: array[float]
) -> tuple[tuple[Cache, ...], ...]:
    """Move every level of ``tiles`` (a copy of ``state.tiles``) to the tile of ``ts``."""
    last = state.last_ts
    old = state.tiles
    c1, c2, c3 = state.caches
    steps = floor(ts / _W1) - floor(last / _W1)
    if steps > 0:
        c1 = _L1.advance(old, tiles, steps, c1)
    steps = floor(ts / _W2) - floor(last / _W2)
    if steps > 0:
        c2 = _L2.advance(old, tiles, steps, c2)
    steps = floor(ts / _W3) - floor(last / _W3)
    if steps > 0:
        c3 = _L3.advance(old, tiles, steps, c3)
    return (c1, c2, c3)


def _add(
    tiles: array[float],
    caches: tuple[tuple[Cache, ...], ...],
    last: float,
    ts: float,
    row3: tuple[float, float, float],
) -> tuple[tuple[Cache, ...], ...]:
    """Add one event at ``ts`` (at most ``last``) to every level; ``row3`` for the day tile."""
    c1, c2, c3 = caches
    if row3[0]:
        back = floor(last / _W1) - floor(ts / _W1)
        if back == 0:
            tiles[_H1] += 1.0
        elif back < _N1:
            c1 = _L1.add_older(tiles, back, (1.0,), c1)
        back = floor(last / _W2) - floor(ts / _W2)
        if back == 0:
            tiles[_H2] += 1.0
        elif back < _N2:
            c2 = _L2.add_older(tiles, back, (1.0,), c2)
    back = floor(last / _W3) - floor(ts / _W3)
    if back == 0:
        o = _H3
        tiles[o] += row3[0]
        tiles[o + 1] += row3[1]
        tiles[o + 2] += row3[2]
    elif back < _N3:
        c3 = _L3.add_older(tiles, back, row3, c3)
    return (c1, c2, c3)


def update_merchant(
    state: MerchantState | None,
    tx: Transaction,
    *,
    late_tolerance_s: float = 3600.0,
    ttl_s: float = DEFAULT_TTL_S,
) -> MerchantUpdate:
    """Count one transaction at this merchant and return the merchant features.

    Same event-time rules as :func:`features.account.update_account`: an event more
    than ``late_tolerance_s`` behind the merchant's newest event is *late* (windows not
    updated, features still computed); a merchant idle for more than ``ttl_s`` starts
    again from empty state. The input state is not modified.
    """
    ts = float(tx.ts)
    if state is None or not ts - state.last_ts <= ttl_s:
        state = _EMPTY
        last = ts
    else:
        last = state.last_ts
    late = ts < last - late_tolerance_s
    tiles = state.tiles
    caches = state.caches
    if not late:
        tiles = tiles[:]
        if ts > last:
            if state is not _EMPTY:
                caches = _advanced(state, ts, tiles)
            last = ts
        caches = _add(tiles, caches, last, ts, (1.0, tx.amount, 0.0))
        state = _new_state(last, tiles, caches)
    u = _new_object(MerchantUpdate)
    _set_field(u, "state", state)
    _set_field(u, "features", _features(tiles, caches, float(tx.amount)))
    _set_field(u, "late", late)
    return u


def record_merchant_fraud(state: MerchantState | None, fraud_tx_ts: float) -> MerchantState:
    """Record that a transaction at this merchant, with event time ``fraud_tx_ts``, was fraud.

    Call it when the fraud label *arrives*. The fraud counts in the windows that
    contain ``fraud_tx_ts`` (so it stops counting 30 days after the transaction); a
    label for a transaction older than the 30-day window changes nothing.

    >>> s = record_merchant_fraud(None, 1_700_000_000.0)
    >>> _features(s.tiles, s.caches)["merchant_fraud_count_30d"]
    1.0
    """
    fraud_tx_ts = float(fraud_tx_ts)
    if state is None or state.last_ts == -_INF:
        state = _EMPTY
        last = fraud_tx_ts
    else:
        last = state.last_ts
    tiles = state.tiles[:]
    caches = state.caches
    if fraud_tx_ts > last:
        if state is not _EMPTY:
            caches = _advanced(state, fraud_tx_ts, tiles)
        last = fraud_tx_ts
    caches = _add(tiles, caches, last, fraud_tx_ts, (0.0, 0.0, 1.0))
    return _new_state(last, tiles, caches)


def _new_state(
    last_ts: float, tiles: array[float], caches: tuple[tuple[Cache, ...], ...]
) -> MerchantState:
    return tuple.__new__(MerchantState, (last_ts, tiles, caches))  # type: ignore[type-var]


def _features(tiles: array[float], caches: tuple[tuple[Cache, ...], ...], amount: float = 0.0) -> dict[str, float]:
    """The merchant features by name, in spec order (see :mod:`features.definitions`)."""
    (c1,), (c2,), (c7, c30) = caches
    n1 = c1[0] + tiles[_H1]
    n24 = c2[0] + tiles[_H2]
    hn, hs, hf = tiles[_H3 : _H3 + 3]
    n7 = c7[0] + hn
    n30 = c30[0] + hn
    f7 = c7[2] + hf
    f30 = c30[2] + hf
    (lo7, hi7), (lo23, hi23) = _LAGGED
    n = sum(tiles[lo7:hi7:3])
    f = sum(tiles[lo7 + 2 : hi7 : 3])
    lag7 = (f / n if f < n else 1.0) if n else 0.0
    n = sum(tiles[lo23:hi23:3])
    f = sum(tiles[lo23 + 2 : hi23 : 3])
    lag23 = (f / n if f < n else 1.0) if n else 0.0
    mean7 = (c7[1] + hs) / n7 if n7 else 0.0
    if mean7 * AMOUNT_RATIO_CAP > amount:
        to_mean = amount / mean7
    else:
        to_mean = 1.0 if amount <= 0.0 else AMOUNT_RATIO_CAP
    return {
        "merchant_tx_count_1h": n1,
        "merchant_tx_count_24h": n24,
        "merchant_tx_count_7d": n7,
        "merchant_tx_count_30d": n30,
        "merchant_amount_mean_7d": mean7,
        "merchant_fraud_count_7d": f7,
        "merchant_fraud_count_30d": f30,
        "merchant_fraud_rate_7d": (f7 / n7 if f7 < n7 else 1.0) if n7 else 0.0,
        "merchant_fraud_rate_30d": (f30 / n30 if f30 < n30 else 1.0) if n30 else 0.0,
        "merchant_fraud_rate_7d_lag7d": lag7,
        "merchant_fraud_rate_23d_lag7d": lag23,
        "merchant_amount_to_mean_7d": to_mean,
        "has_merchant": 1.0,
    }


_EMPTY = MerchantState()
