"""The account's id memory: every transaction id seen inside the lateness tolerance.

A re-delivered transaction (at-least-once input, a restart after a crash) must not be
counted twice into the windows. Its id is remembered as long as a redelivery could still
be counted, i.e. while its event time is within ``late_tolerance_s`` of the account's newest
event time; past that, a redelivery is *late* and not counted anyway. So the memory holds
every id inside the tolerance, however many transactions came in between, up to a hard cap
(:data:`~features.account.layout.MAX_IDS`) beyond which the oldest are forgotten (and counted).

Each id costs 12 bytes in the encoded state: a 64-bit BLAKE2b hash (the same in every
process) and the whole second it is kept against, ascending.
"""

from __future__ import annotations

from bisect import bisect_right
from hashlib import blake2b

from features.account.layout import MAX_IDS

__all__ = ["id_hash", "remember_id"]

IdMemory = tuple[tuple[int, ...], tuple[int, ...], int]


def id_hash(transaction_id: str) -> int:
    """The 64-bit hash the id memory keeps of a transaction id (BLAKE2b, the same in every
    process; 64 bits make a false duplicate among 1,024 remembered ids a 1-in-10^16 event).

    >>> id_hash("tx-1")
    7726700342316911226
    """
    return int.from_bytes(blake2b(transaction_id.encode(), digest_size=8).digest(), "little")


def remember_id(ids: tuple[int, ...], seen: tuple[int, ...], tid: int, second: int, cut: float) -> IdMemory:
    """``tid`` (kept against whole second ``second``) added to the memory ``ids``/``seen``
    (seconds ascending), the ids whose second is ``<= cut`` forgotten; and how many ids above
    ``cut`` the cap forgot (the oldest).

    >>> remember_id((1, 2), (100, 160), 3, 150, cut=120.0)
    ((3, 2), (150, 160), 0)
    """
    if seen and seen[0] <= cut:
        k = bisect_right(seen, cut)
        ids, seen = ids[k:], seen[k:]
    if not seen or seen[-1] <= second:
        ids += (tid,)
        seen += (second,)
    else:  # out of order: keep the seconds sorted
        j = bisect_right(seen, second)
        ids = (*ids[:j], tid, *ids[j:])
        seen = (*seen[:j], second, *seen[j:])
    dropped = len(ids) - MAX_IDS
    if dropped > 0:  # over the hard cap: forget the oldest
        return ids[dropped:], seen[dropped:], dropped
    return ids, seen, 0
