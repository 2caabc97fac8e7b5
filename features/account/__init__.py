"""Per-account rolling state and the account features.

:func:`update_account` is the one implementation of account features: the Faust agent
calls it with the state decoded from its table, the offline evaluator with the state it
holds in a dict. It never mutates its input state; it returns a new one.

What each feature means is its spec in :mod:`features.definitions` (``kuntur features``
prints them all). What they have in common:

* Windows are those of :mod:`features.windows` (tiles of 10 min / 2 h / 1 day; each
  window ends at the account's newest event time). Window aggregates include the current
  transaction; the amounts in them are float32, so a std below ~0.1 % of the mean is
  indistinguishable from rounding and reads as exactly 0. Features against the account's
  30-day history *before* the transaction (amount ratio, z-score) subtract it again.
* Novelty (``account_new_*``) looks the value up in a least-recently-used memory of the
  CRC-32 hashes of the account's last values (:func:`features.windows.remember`).
* Location features start from the newest earlier transaction that had valid
  coordinates (:mod:`features.geo`); calendar features use Lima time, UTC-5 (no DST).

Special events:

* *duplicate* -- the transaction id is in the account's id memory: the state is returned
  unchanged and the features are computed against it (not counted a second time). The
  memory holds a 64-bit hash of the id of every transaction whose event time is within
  ``late_tolerance_s`` of the newest event, however many came in between (at most
  ``MAX_IDS`` = 1,024; beyond that the oldest are forgotten, ``AccountUpdate.ids_dropped``).
  Ids are forgotten once the newest event moves more than ``late_tolerance_s`` past them:
  a redelivery of an event that old is late, so it is not counted either.
* *late* -- more than ``late_tolerance_s`` behind the newest event: windows, memories and
  location are not updated (only its id is remembered, for one tolerance past the newest
  event time it came at, so a redelivery reads as a duplicate); features are computed
  against the current windows, which do not contain it.
* *idle* -- an account idle for more than ``ttl_s`` starts again from empty state.

Reported frauds reach the state apart from transactions: :func:`record_account_fraud`
(module ``frauds``), when a fraud label is applied.

State is stored as bytes (:meth:`AccountState.to_bytes`, a version byte first): at most
1,176 bytes plus 12 per remembered id (k transactions inside the tolerance: 1,176 + 12 k),
so at most :data:`MAX_ENCODED_SIZE` (13,464) bytes whatever the activity; about 336 for an
account with a transaction a day. The modules: ``layout`` (tile levels and memories),
``codec`` (the byte layout and :data:`STATE_VERSION`), ``ids`` (the id memory), ``frauds``
(the reported-fraud memory), ``state`` (:class:`AccountState`) and ``update``
(:func:`update_account`).

>>> from features.transaction import Transaction
>>> u = update_account(None, Transaction("t1", "a1", ts=1_700_000_000.0, amount=25.0))
>>> u.features["account_tx_count_1h"], u.features["account_amount_mean_30d"], u.late
(1.0, 25.0, False)
"""

from __future__ import annotations

from features.account.codec import MAX_ENCODED_SIZE, STATE_VERSION
from features.account.frauds import record_account_fraud
from features.account.layout import DEFAULT_TTL_S
from features.account.state import AccountState
from features.account.update import AccountUpdate, update_account
from features.definitions import ACCOUNT_FEATURES
from features.windows import is_expired

__all__ = [
    "ACCOUNT_FEATURES",
    "DEFAULT_TTL_S",
    "MAX_ENCODED_SIZE",
    "STATE_VERSION",
    "AccountState",
    "AccountUpdate",
    "is_expired",
    "record_account_fraud",
    "update_account",
]
