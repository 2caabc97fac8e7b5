"""The byte layout of :class:`~features.account.state.AccountState` (little-endian).

Layout: version u8, last_ts f64, flags u8, [lat, lon, geo_ts f64], the id memory (count
u16, then that many uint64 id hashes and uint32 seconds, oldest second first), three hash
memories (count u8 + uint32 each: merchants, devices, IPs), the merchants' counts (uint16)
and latest seconds (uint32), the category memory (count u8, uint32 hashes, uint16
counts), the fraud memory (count u8, uint32 event seconds ascending, uint32 seconds
applied), the three tile levels (see
:func:`_pack_level`), then a u8 bitmap of the non-empty window caches (1h, 24h, 7d,
30d) and those caches. Per-tile counts are uint16 and saturate at 65,535 events in one
tile. Bump :data:`STATE_VERSION` (and the table name) whenever the layout or the meaning
of a tile changes.
"""

from __future__ import annotations

import struct
from array import array

from features.account.layout import (
    L1,
    L2,
    L3,
    MAX_CATEGORIES,
    MAX_DEVICES,
    MAX_FRAUDS,
    MAX_IDS,
    MAX_IPS,
    MAX_MERCHANTS,
    N1,
    N2,
    N3,
    ZERO_TILES,
)
from features.definitions import SMALL_AMOUNT
from features.errors import StateDecodeError
from features.windows import Cache, TileLevel, bit_positions, gather, le_bytes, positions_bitmap, structs

__all__ = ["ID_BYTES", "MAX_ENCODED_SIZE", "STATE_VERSION", "decode", "encode"]

#: Layout version: the first byte of the encoding.
STATE_VERSION = 4

_U16_MAX = 65535
_HEAD = struct.Struct("<BdB")
_HEAD_REST = struct.Struct("<dB")
_GEO = struct.Struct("<ddd")
_BITS = {N1: struct.Struct("<BB"), N2: struct.Struct("<HH"), N3: struct.Struct("<II")}
_FLAG_GEO = 1
# Cached window totals (count, sum, sum_sq, max [, small count]) of the windows whose
# older tiles are not empty: 1h, 24h, 7d, 30d. Counts and maxima are float32-exact.
_CACHE5 = struct.Struct("<fddff")
_CACHE4 = struct.Struct("<fddf")
_MEMORY = structs("B%dI", 16)
_ID_COUNT = struct.Struct("<H")
_IDS = structs("%dQ%dI", MAX_IDS)
_MERCHANT_EXTRA = structs("%dH%dI", MAX_MERCHANTS)
_CATEGORIES = structs("B%dI%dH", MAX_CATEGORIES)
_FRAUDS = structs("B%dI%dI", MAX_FRAUDS)
_FLOATS = structs("%df", N3)
_MULTI4 = [struct.Struct(f"<{m}H{3 * m}f") for m in range(N3 + 1)]
_MULTI5 = [struct.Struct(f"<{2 * m}H{3 * m}f") for m in range(N1 + 1)]
_Z5, _Z4 = L1.zero_caches[0], L2.zero_caches[0]
_CACHE_LAYOUTS = ((1, _CACHE5, _Z5), (2, _CACHE4, _Z4), (4, _CACHE4, _Z4), (8, _CACHE4, _Z4))

#: The fields of an AccountState, in order (an AccountState is one).
Fields = tuple[
    float,
    "array[float]",
    tuple[tuple[Cache, ...], ...],
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
    "tuple[float, float, float] | None",
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
    tuple[int, ...],
]


def encode(state: Fields) -> bytes:
    """The versioned little-endian encoding of ``state`` (≤ :data:`MAX_ENCODED_SIZE` bytes)."""
    (last_ts, tiles, caches, ids, merchants, devices, ips, geo, m_counts, m_seen, categories, c_counts, id_seen,
     frauds, f_known) = state
    parts = [_HEAD.pack(STATE_VERSION, last_ts, _FLAG_GEO if geo else 0)]
    if geo is not None:
        parts.append(_GEO.pack(*geo))
    parts.append(_ID_COUNT.pack(len(ids)))
    if ids:
        parts.append(_IDS[len(ids)].pack(*ids, *id_seen))
    for memory in (merchants, devices, ips):
        parts.append(_MEMORY[len(memory)].pack(len(memory), *memory))
    parts.append(_MERCHANT_EXTRA[len(merchants)].pack(*m_counts, *m_seen))
    parts.append(_CATEGORIES[len(categories)].pack(len(categories), *categories, *c_counts))
    parts.append(_FRAUDS[len(frauds)].pack(len(frauds), *frauds, *f_known))
    _pack_level(parts, tiles, L1)
    _pack_level(parts, tiles, L2)
    _pack_level(parts, tiles, L3)
    (c1,), (c24,), (c7, c30) = caches
    parts.append(bytes([(c1[0] != 0) | (c24[0] != 0) << 1 | (c7[0] != 0) << 2 | (c30[0] != 0) << 3]))
    if c1[0]:
        parts.append(_CACHE5.pack(*c1))
    for cache in (c24, c7, c30):
        if cache[0]:
            parts.append(_CACHE4.pack(*cache))
    return b"".join(parts)


def decode(data: bytes) -> Fields:
    """The fields of the state :func:`encode` wrote; :class:`StateDecodeError` if it did not."""
    if not data:
        raise StateDecodeError("account state truncated: no bytes")
    if data[0] != STATE_VERSION:
        version = data[0]
        raise StateDecodeError(f"account state has layout version {version}, this code reads {STATE_VERSION}")
    try:
        last_ts, flags = _HEAD_REST.unpack_from(data, 1)
        pos = _HEAD.size
        geo = None
        if flags & _FLAG_GEO:
            geo = _GEO.unpack_from(data, pos)
            pos += _GEO.size
        (n,) = _ID_COUNT.unpack_from(data, pos)
        pos += _ID_COUNT.size
        if n > MAX_IDS:
            raise StateDecodeError(f"account state id memory of {n} ids exceeds {MAX_IDS}")
        ids: tuple[int, ...] = ()
        id_seen: tuple[int, ...] = ()
        if n:
            both = _IDS[n].unpack_from(data, pos)
            pos += _IDS[n].size
            ids, id_seen = both[:n], both[n:]
        memories = []
        for capacity in (MAX_MERCHANTS, MAX_DEVICES, MAX_IPS):
            n = data[pos]
            if n > capacity:
                raise StateDecodeError(f"account state memory of {n} hashes exceeds {capacity}")
            layout = _MEMORY[n]
            memories.append(layout.unpack_from(data, pos)[1:])
            pos += layout.size
        m = len(memories[0])
        extra = _MERCHANT_EXTRA[m].unpack_from(data, pos)
        pos += _MERCHANT_EXTRA[m].size
        m_counts, m_seen = extra[:m], extra[m:]
        k = data[pos]
        if k > MAX_CATEGORIES:
            raise StateDecodeError(f"account state memory of {k} categories exceeds {MAX_CATEGORIES}")
        cats = _CATEGORIES[k].unpack_from(data, pos)
        pos += _CATEGORIES[k].size
        categories, c_counts = cats[1 : 1 + k], cats[1 + k :]
        k = data[pos]
        if k > MAX_FRAUDS:
            raise StateDecodeError(f"account state memory of {k} reported frauds exceeds {MAX_FRAUDS}")
        both = _FRAUDS[k].unpack_from(data, pos)
        pos += _FRAUDS[k].size
        frauds, f_known = both[1 : 1 + k], both[1 + k :]
        tiles = ZERO_TILES[:]
        pos = _unpack_level(data, pos, tiles, L1)
        pos = _unpack_level(data, pos, tiles, L2)
        pos = _unpack_level(data, pos, tiles, L3)
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
        raise StateDecodeError(f"account state truncated: {len(data)} bytes do not hold a whole state") from None
    if pos != len(data):
        raise StateDecodeError(f"account state has {len(data) - pos} unexpected trailing bytes")
    merchants, devices, ips = memories
    c1, c24, c7, c30 = caches
    return (
        last_ts, tiles, ((c1,), (c24,), (c7, c30)), ids, merchants, devices, ips, geo,
        m_counts, m_seen, categories, c_counts, id_seen, frauds, f_known,
    )


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


#: Bytes per remembered transaction id: its uint64 hash and uint32 second.
ID_BYTES = 12

#: Upper bound of ``len(AccountState.to_bytes())``: every memory full, every tile multi.
#: The id memory is 2 + 12 bytes per id inside the lateness tolerance (``ID_BYTES``),
#: at most ``MAX_IDS``; the rest is at most 1,174 bytes.
MAX_ENCODED_SIZE = (
    _HEAD.size
    + _GEO.size
    + _ID_COUNT.size
    + ID_BYTES * MAX_IDS
    + 3  # hash memory lengths
    + 4 * (MAX_MERCHANTS + MAX_DEVICES + MAX_IPS)
    + 6 * MAX_MERCHANTS
    + 1
    + 6 * MAX_CATEGORIES
    + 1
    + 8 * MAX_FRAUDS
    + sum(b.size for b in _BITS.values())
    + N1 * (2 + 12 + 2)
    + N2 * (2 + 12)
    + N3 * (2 + 12)
    + 1
    + _CACHE5.size
    + 3 * _CACHE4.size
)
