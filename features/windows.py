"""Event-time tiled windows and bounded recency memories, shared by account and merchant state.

Why tiles: a fraud worker holds state for millions of accounts, so a window cannot keep
its events. Each window is a short dense run of *tiles* (buckets) of fixed width; an
event adds to the tile of its own event time and the window total is the sum over the
run. State size is then bounded by the number of tiles, whatever the traffic.

Semantics (tested at the boundaries in ``tests/unit/test_windows.py``):

* Tile ``k`` of width ``w`` holds the events with ``k*w <= ts < (k+1)*w`` (epoch seconds,
  UTC; tiles are aligned to the epoch, so day tiles start at 00:00 UTC = 19:00 in Lima).
* Every window *ends at the entity's newest event time* ``t`` (the largest event time
  counted so far, ``state.last_ts``): it is the tile ``floor(t/w)`` plus the
  ``tiles - 1`` tiles before it. An event at ``ts`` is in the window iff
  ``floor(t/w) - tiles < floor(ts/w) <= floor(t/w)``.

  ======  ==========  =====  ===================================================
  window  tile width  tiles  span covered (always at most the window's nominal length)
  ======  ==========  =====  ===================================================
  1h      10 minutes  6      the current 10-min tile + the 5 before: 50-60 min
  24h     2 hours     12     the current 2-h tile + the 11 before: 22-24 h
  7d      1 day       7      the current UTC day + the 6 before: 6-7 days
  30d     1 day       30     the current UTC day + the 29 before: 29-30 days
  ======  ==========  =====  ===================================================

  So an event exactly ``tiles*w`` seconds before ``t`` is never in the window, one at
  the start of the oldest tile is (even if that is nearly ``tiles*w`` seconds ago).
* Windows include the current event (it was just added to its tile). Comparisons
  "against history" (the account's amount ratio and z-score) subtract it again.
* Out of order: an event up to the caller's late tolerance behind ``t`` is added to the
  tile of its *own* event time when that tile is still inside the window, and the
  features describe the windows ending at ``t``. The resulting state is therefore the
  same as if the events had arrived in event-time order (up to float32 rounding of sums
  added in a different order). Older events are *late*: windows are not updated.
* Expiry: when ``t`` advances, tiles that fall out of the 30-day run are dropped, and
  :func:`is_expired` lets the caller delete an idle entity altogether.

Tiles are float32 (``array('f')``) in memory *and* on the wire, and the cached window
totals (see :class:`TileLevel`) are encoded with them, so a state decoded from bytes is
bit-identical to the one that was encoded and later features match exactly. Counts are
float32 too (exact up to 2**24 per tile).

This module also holds the small pieces both state types share: bounded recency
memories of stable hashes, :func:`is_expired`, and little-endian encoding helpers.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from math import floor
from operator import itemgetter
from typing import Protocol
from zlib import crc32

__all__ = [
    "DAY_S",
    "WINDOWS",
    "Cache",
    "TileLevel",
    "Window",
    "bit_positions",
    "gather",
    "is_expired",
    "le_bytes",
    "positions_bitmap",
    "remember",
    "stable_hash",
    "structs",
    "zeros",
]

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class Window:
    """One tiled window: ``tiles`` tiles of ``tile_s`` seconds ending at the newest tile.

    >>> w = WINDOWS["1h"]
    >>> w.contains(3000.0, newest_ts=6000.0), w.contains(2999.9, newest_ts=6000.0)
    (True, False)
    """

    name: str
    tile_s: float
    tiles: int

    @property
    def length_s(self) -> float:
        """Nominal window length (the most it can span)."""
        return self.tile_s * self.tiles

    def tile(self, ts: float) -> int:
        """Index of the tile holding event time ``ts``."""
        return floor(ts / self.tile_s)

    def contains(self, event_ts: float, newest_ts: float) -> bool:
        """Whether an event at ``event_ts`` is in this window ending at ``newest_ts``.

        This is the reference definition; the state classes implement it with dense
        arrays and the tests check them against it.
        """
        head = self.tile(newest_ts)
        return head - self.tiles < self.tile(event_ts) <= head


WINDOWS: dict[str, Window] = {
    "1h": Window("1h", 600.0, 6),
    "24h": Window("24h", 7200.0, 12),
    "7d": Window("7d", DAY_S, 7),
    "30d": Window("30d", DAY_S, 30),
}

_ZEROS: dict[int, array[float]] = {}


def zeros(n: int) -> array[float]:
    """A fresh float32 array of ``n`` zeros (copied from a cached template)."""
    template = _ZEROS.get(n)
    if template is None:
        template = _ZEROS[n] = array("f", bytes(4 * n))
    return template[:]


def positions_bitmap(positions: Sequence[int]) -> int:
    """Bit ``i`` set for every tile position ``i`` (position 0 = oldest tile)."""
    bits = 0
    for i in positions:
        bits |= 1 << i
    return bits


def bit_positions(bits: int) -> list[int]:
    """Positions of the set bits of ``bits``, lowest first.

    >>> bit_positions(0b10110)
    [1, 2, 4]
    """
    return [i for i in range(bits.bit_length()) if bits >> i & 1]


def structs(fmt: str, upto: int) -> list[struct.Struct]:
    """Little-endian ``struct.Struct`` for ``fmt % k`` for every k in ``0..upto``.

    Precompiled so encoding and decoding ``k`` packed values costs one C call.

    >>> structs("%df", 3)[2].format
    '<2f'
    """
    return [struct.Struct("<" + fmt % ((k,) * fmt.count("%d"))) for k in range(upto + 1)]


def gather(column: array[float], positions: list[int]) -> Sequence[float]:
    """``column`` at ``positions`` in one C call (the column itself if all are taken).

    >>> gather(array("f", [5, 6, 7]), [0, 2])
    (5.0, 7.0)
    """
    if len(positions) == len(column):
        return column
    if len(positions) == 1:
        return (column[positions[0]],)
    return itemgetter(*positions)(column)  # type: ignore[no-any-return]


_BIG_ENDIAN = sys.byteorder == "big"


def le_bytes(values: array[float] | array[int]) -> bytes:
    """Array contents as little-endian bytes (the wire format is little-endian)."""
    if _BIG_ENDIAN:  # pragma: no cover - no big-endian CI machine
        values = values[:]
        values.byteswap()
    return values.tobytes()


def stable_hash(text: str) -> int:
    """A 32-bit hash that is the same in every process (CRC-32 of the UTF-8 bytes).

    Python's ``hash()`` is salted per process, so it cannot be stored in state that a
    different worker reads back after a rebalance.

    >>> stable_hash("merchant-42")
    3187588786
    """
    return crc32(text.encode())


def remember(memory: tuple[int, ...], item: int, capacity: int) -> tuple[int, ...]:
    """Least-recently-used memory of hashes: ``item`` becomes the newest entry.

    >>> remember((1, 2, 3), 2, 3), remember((1, 2, 3), 4, 3)
    ((1, 3, 2), (2, 3, 4))
    """
    if memory and memory[-1] == item:
        return memory
    if item in memory:
        i = memory.index(item)
        return (*memory[:i], *memory[i + 1 :], item)
    if len(memory) >= capacity:
        return (*memory[len(memory) - capacity + 1 :], item)
    return (*memory, item)


class _HasLastTs(Protocol):
    @property
    def last_ts(self) -> float: ...


def is_expired(state: _HasLastTs, now_ts: float, ttl_s: float) -> bool:
    """Whether an entity idle since ``state.last_ts`` may be deleted at ``now_ts``.

    Event time, not wall-clock: pass the stream's newest event time (watermark) so a
    replay of history expires entities exactly as live traffic would.

    >>> class S: last_ts = 0.0
    >>> is_expired(S(), 35 * DAY_S, 35 * DAY_S), is_expired(S(), 35 * DAY_S + 1, 35 * DAY_S)
    (False, True)
    """
    return now_ts - state.last_ts > ttl_s


#: Cached totals of one window over its older tiles: one float per column.
Cache = tuple[float, ...]


class TileLevel:
    """One level of tiles inside a flat ``array('f')``, and the windows it serves.

    A level is ``tiles`` rows of ``len(kinds)`` float32 columns stored row-major from
    offset ``base``; the last row is the head tile (the tile of the newest event), the
    others are the older tiles, oldest first. ``kinds`` has one letter per column:
    ``"c"`` a count, ``"s"`` a float sum, ``"m"`` a maximum. ``spans`` are the window
    lengths in tiles served by the level, each ending at the head (``(7, 30)`` for the
    day level).

    Why a flat array and caches: copying one array is a ``memcpy`` and advancing a level
    is a ``memmove``, and a window total is the window's cached total over its older
    tiles combined with the head row -- no loop over tiles on the hot path. A cache is
    kept incrementally: when the level advances, rows leaving a window are subtracted
    and the old head row, now an older tile, is added; max columns are rescanned when
    their maximum leaves; the float sums are reset to exactly 0 whenever the window's
    count drops to 0. Incremental float sums may differ from a recomputation in the last
    bits, so caches are part of the encoded state (never recomputed on decode) and a
    decoded state continues bit-identically.

    >>> level = TileLevel(base=0, tiles=3, kinds="csm", spans=(3,))
    >>> old = array("f", [1, 5, 5, 2, 6, 4, 1, 7, 7])
    >>> new = old[:]
    >>> caches = level.advance(old, new, 1, level.recompute(old))
    >>> new.tolist(), level.totals(new, caches[0])
    ([2.0, 6.0, 4.0, 1.0, 7.0, 7.0, 0.0, 0.0, 0.0], (3.0, 13.0, 7.0))
    """

    __slots__ = (
        "base",
        "tiles",
        "kinds",
        "spans",
        "width",
        "end",
        "head",
        "zero_caches",
        "_counts",
        "_sums",
        "_maxes",
        "_zeros",
        "_amounts",
    )

    def __init__(self, base: int, tiles: int, kinds: str, spans: tuple[int, ...]) -> None:
        if any(not 2 <= s <= tiles for s in spans):
            raise ValueError(f"window spans {spans} must be within 2..{tiles} tiles")
        if not kinds or set(kinds) - set("csm"):
            raise ValueError(f"column kinds {kinds!r} must be letters c, s, m")
        self.base = base
        self.tiles = tiles
        self.kinds = kinds
        self.spans = spans
        self.width = len(kinds)
        self.end = base + tiles * self.width
        #: Offset of the head row in the flat array.
        self.head = self.end - self.width
        self._counts = tuple(j for j, k in enumerate(kinds) if k == "c")
        self._sums = tuple(j for j, k in enumerate(kinds) if k == "s")
        self._maxes = tuple(j for j, k in enumerate(kinds) if k == "m")
        self._zeros = zeros(tiles * self.width)
        # The account's amount layout has an unrolled fast path (see _advance_amounts).
        self._amounts = kinds in ("cssm", "cssmc")
        #: Caches of a level with every tile empty.
        self.zero_caches: tuple[Cache, ...] = ((0.0,) * self.width,) * len(spans)

    def recompute(self, tiles: array[float]) -> tuple[Cache, ...]:
        """Every window cache computed afresh from the tiles.

        Equal to the incrementally kept caches up to float rounding of the sums (and
        exactly for counts and maxima); used for checks and to seed hand-built tiles.
        """
        width, n, base = self.width, self.tiles, self.base
        out = []
        for span in self.spans:
            start = base + (n - span) * width
            values = []
            for j, kind in enumerate(self.kinds):
                column = tiles[start + j : self.head : width]
                values.append(max(column) if kind == "m" else float(sum(column)))
            out.append(tuple(values))
        return tuple(out)

    def totals(self, tiles: array[float], cache: Cache) -> tuple[float, ...]:
        """Window totals per column: the cached older tiles combined with the head row.

        Convenience for tests and cold paths; hot paths inline the same arithmetic.
        """
        h = self.head
        return tuple(
            [
                (cache[j] if cache[j] > tiles[h + j] else tiles[h + j])
                if kind == "m"
                else cache[j] + tiles[h + j]
                for j, kind in enumerate(self.kinds)
            ]
        )

    def advance(
        self, old: array[float], new: array[float], steps: int, caches: tuple[Cache, ...]
    ) -> tuple[Cache, ...]:
        """Move the level ``steps`` tiles forward: oldest rows dropped, empty head.

        ``new`` is a copy of ``old`` and is shifted in place; ``old`` is only read.
        Returns the new caches.
        """
        width, n, base, end = self.width, self.tiles, self.base, self.end
        if steps >= n:
            new[base:end] = self._zeros
            return self.zero_caches
        if steps <= 0:
            return caches
        cut = base + steps * width
        new[base : end - steps * width] = old[cut:end]
        new[end - steps * width : end] = self._zeros[: steps * width]
        if self._amounts:
            return self._advance_amounts(old, new, steps, caches)
        if self.kinds == "c":
            return self._advance_counts(old, steps, caches)
        h = self.head
        entering = old[h : h + width] if any(old[h : h + width]) else None
        out = []
        for span, cache in zip(self.spans, caches, strict=True):
            start = base + (n - span) * width
            values = list(cache)
            changed = rescan = False
            # Old rows start .. start+steps-1 leave this window (only older rows: the
            # head never leaves it); the old head stays in it iff steps < span.
            for o in range(start, min(start + steps * width, h), width):
                row = old[o : o + width]
                if not any(row):
                    continue
                changed = True
                for j, kind in enumerate(self.kinds):
                    if kind != "m":
                        values[j] -= row[j]
                    elif row[j] >= values[j]:
                        rescan = True
            if entering is not None and steps < span:
                changed = True
                for j, kind in enumerate(self.kinds):
                    if kind != "m":
                        values[j] += entering[j]
                    elif entering[j] > values[j]:
                        values[j] = entering[j]
            if not changed:
                out.append(cache)
                continue
            if rescan:
                for j in self._maxes:
                    values[j] = max(new[start + j : h : width], default=0.0)
            if self._counts and not values[self._counts[0]]:
                for j in self._sums:
                    values[j] = 0.0
            out.append(tuple(values))
        return tuple(out)

    def _advance_amounts(
        self, old: array[float], new: array[float], steps: int, caches: tuple[Cache, ...]
    ) -> tuple[Cache, ...]:
        """:meth:`advance` for the amount layout ``count, sum, sum_sq, max[, count]``.

        Same arithmetic as the generic loop, unrolled: it runs for most events of
        sparse accounts, where the generic version costs several microseconds.
        """
        width, n, base, h = self.width, self.tiles, self.base, self.head
        extra = width == 5
        head_row = old[h : h + width]
        hc = head_row[0]
        out: list[Cache] = []
        for span, cache in zip(self.spans, caches, strict=True):
            start = base + (n - span) * width
            stop = start + steps * width
            if stop > h:
                stop = h
            enters = hc and steps < span
            c = cache[0]
            if not c:  # the older tiles of this window are empty: nothing leaves
                out.append(tuple(head_row) if enters else cache)
                continue
            s, q, m = cache[1], cache[2], cache[3]
            x = cache[4] if extra else 0.0
            rescan = False
            for o in range(start, stop, width):
                co = old[o]
                if co:
                    c -= co
                    s -= old[o + 1]
                    q -= old[o + 2]
                    if old[o + 3] >= m:
                        rescan = True
                    if extra:
                        x -= old[o + 4]
            if enters:
                c += hc
                s += head_row[1]
                q += head_row[2]
                if head_row[3] > m:
                    m = head_row[3]
                if extra:
                    x += head_row[4]
            if not c:
                s = q = m = 0.0
            elif rescan:
                m = max(new[start + 3 : h : width], default=0.0)
            out.append((c, s, q, m, x) if extra else (c, s, q, m))
        return tuple(out)

    def _advance_counts(
        self, old: array[float], steps: int, caches: tuple[Cache, ...]
    ) -> tuple[Cache, ...]:
        """:meth:`advance` for a single count column (rows are then contiguous)."""
        n, base, h = self.tiles, self.base, self.head
        hc = old[h]
        out: list[Cache] = []
        for span, cache in zip(self.spans, caches, strict=True):
            start = base + n - span
            stop = min(start + steps, h)
            c = cache[0] - sum(old[start:stop])
            if steps < span:
                c += hc
            out.append((c,))
        return tuple(out)

    def add_older(
        self, tiles: array[float], back: int, row: tuple[float, ...], caches: tuple[Cache, ...]
    ) -> tuple[Cache, ...]:
        """Add ``row`` to the tile ``back`` tiles before the head (an out-of-order event).

        ``tiles`` is modified in place (pass the new state's copy); returns the caches.
        Max columns take the maximum. Requires ``1 <= back < tiles``.
        """
        width = self.width
        o = self.head - back * width
        before = tiles[o : o + width]
        for j, kind in enumerate(self.kinds):
            if kind == "m":
                if row[j] > tiles[o + j]:
                    tiles[o + j] = row[j]
            else:
                tiles[o + j] += row[j]
        out = []
        for span, cache in zip(self.spans, caches, strict=True):
            if back >= span:
                out.append(cache)
                continue
            values = list(cache)
            for j, kind in enumerate(self.kinds):
                if kind == "m":
                    if tiles[o + j] > values[j]:
                        values[j] = tiles[o + j]
                else:
                    values[j] += tiles[o + j] - before[j]
            out.append(tuple(values))
        return tuple(out)
