"""Per-account rolling state: an immutable value that encodes to a few hundred bytes."""

from __future__ import annotations

import math
from array import array
from typing import NamedTuple

from features.account.codec import decode, encode
from features.account.layout import ZERO_CACHES, ZERO_TILES
from features.windows import Cache

__all__ = ["EMPTY", "AccountState", "new_state"]


class AccountState(NamedTuple):
    """Compact per-account state; an immutable value.

    ``tiles`` is one float32 array holding the 10-minute, 2-hour and day tile levels
    (:class:`~features.windows.TileLevel`: count, sum, sum of squares, max, plus the
    small-amount count at the 10-minute level) ending at the tiles of ``last_ts``;
    ``caches`` are the windows' totals over their older tiles, kept incrementally and
    encoded with the tiles (1h, 24h, then 7d and 30d; see ``TileLevel``). ``ids`` holds
    the uint64 hashes of the transaction ids seen whose event time (a late event's: the
    newest event time when it came) is within the lateness tolerance of ``last_ts``, and
    ``id_seen`` that time as a whole second, in ascending order (see
    :func:`~features.account.update.update_account`). The other hash
    memories are tuples of uint32, newest last; the merchant memory also keeps, per
    merchant, a transaction count and the whole second of the latest transaction there,
    the category memory a count per category; ``frauds`` holds the event times (whole
    seconds, newest last) of the account's reported frauds and ``fraud_known`` when each
    was applied (:mod:`features.account.frauds`).
    ``geo`` is ``(lat, lon, ts)`` of the newest transaction with coordinates, or ``None``.
    ``AccountState()`` is the empty state (no history).

    The encoding is at most :data:`~features.account.codec.MAX_ENCODED_SIZE` bytes
    whatever the activity: empty tiles are not stored, single-transaction tiles take 4
    bytes, and each remembered id 12.
    """

    last_ts: float = -math.inf
    tiles: array[float] = ZERO_TILES
    caches: tuple[tuple[Cache, ...], ...] = ZERO_CACHES
    ids: tuple[int, ...] = ()
    merchants: tuple[int, ...] = ()
    devices: tuple[int, ...] = ()
    ips: tuple[int, ...] = ()
    geo: tuple[float, float, float] | None = None
    merchant_counts: tuple[int, ...] = ()  # per remembered merchant: transactions there
    merchant_seen: tuple[int, ...] = ()  # per remembered merchant: whole second of the latest
    categories: tuple[int, ...] = ()
    category_counts: tuple[int, ...] = ()
    id_seen: tuple[int, ...] = ()  # per remembered id: its whole second, ascending
    frauds: tuple[int, ...] = ()  # reported frauds' whole seconds (event time), ascending (features.account.frauds)
    fraud_known: tuple[int, ...] = ()  # per reported fraud: the whole second the stream had reached when applied

    def to_bytes(self) -> bytes:
        """Encode to the versioned little-endian layout of :mod:`features.account.codec`."""
        return encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> AccountState:
        """Decode :meth:`to_bytes` output; :class:`StateDecodeError` if it is not that."""
        return cls(*decode(data))


#: The state of an account with no history.
EMPTY = AccountState()


def new_state(fields: tuple[object, ...]) -> AccountState:
    """Build an AccountState without the Python-level NamedTuple ``__new__`` call."""
    return tuple.__new__(AccountState, fields)  # type: ignore[type-var]
