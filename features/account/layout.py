"""How an account's rolling state is laid out in memory: tile levels and memories.

The three tile levels live in one flat float32 array, row-major (see
:class:`~features.windows.TileLevel`). Columns: count, sum, sum of squares, max, and at
the 10-minute level the count of small amounts as well. The day level serves the 7d and
30d windows. The id memory keeps a 64-bit hash of every transaction id whose event time is
within the lateness tolerance of the account's newest event (with its whole second), at most
:data:`MAX_IDS`; the hash memories keep the last merchants (with a count and the latest
second each), devices, IPs and merchant categories (with a count each).
Changing anything here changes the byte layout: bump ``codec.STATE_VERSION``.
"""

from __future__ import annotations

from features.definitions import MAX_CATEGORIES, MAX_DEVICES, MAX_FRAUDS, MAX_IPS, MAX_MERCHANTS
from features.windows import DAY_S, WINDOWS, TileLevel, zeros

__all__ = ["DEFAULT_TTL_S", "MAX_CATEGORIES", "MAX_DEVICES", "MAX_FRAUDS", "MAX_IDS", "MAX_IPS", "MAX_MERCHANTS"]

DEFAULT_TTL_S = 35 * DAY_S
#: Hard cap of the id memory (transaction ids remembered to recognise a redelivery): an
#: account with more transactions than this inside the lateness tolerance forgets the oldest
#: (counted: ``AccountUpdate.ids_dropped``). 1,024 in the default hour is one every 3.5 s.
MAX_IDS = 1024

W1, N1 = WINDOWS["1h"].tile_s, WINDOWS["1h"].tiles
W2, N2 = WINDOWS["24h"].tile_s, WINDOWS["24h"].tiles
W3, N3 = WINDOWS["30d"].tile_s, WINDOWS["30d"].tiles
N7 = WINDOWS["7d"].tiles
if WINDOWS["7d"].tile_s != W3:  # pragma: no cover - the day level serves both
    raise RuntimeError("the 7d and 30d windows must share their tile width")
L1 = TileLevel(0, N1, "cssmc", spans=(N1,))
L2 = TileLevel(L1.end, N2, "cssm", spans=(N2,))
L3 = TileLevel(L2.end, N3, "cssm", spans=(N7, N3))
#: Offsets of the head rows (the tiles of the newest event).
H1, H2, H3 = L1.head, L2.head, L3.head
ZERO_TILES = zeros(L3.end)
ZERO_CACHES = (L1.zero_caches, L2.zero_caches, L3.zero_caches)
