"""The account's memory of reported frauds: label-aware risk per account.

When a fraud label is *applied* -- the scored stream has reached its report time, never
before -- the pipeline records it in its account's state (:func:`record_account_fraud`,
called by ``AccountStage.on_fraud``): the labelled transaction's event time and the event
time the scored stream had reached when the label was applied (``known_at``). A repeated
label is not recorded again (the pipeline's rule, ``stream.pipeline.emits``). The memory
keeps the :data:`MAX_FRAUDS` reported frauds with the newest event times, as whole
seconds, ascending (newest last).

A reported fraud counts for a transaction at least :data:`FRAUD_KNOWN_AFTER_S` (event
time) after ``known_at``. In ``kuntur evaluate`` the record reaches the account's state at
once; in a worker it travels one more hop (``<app>-by-account``) while the account stage
is already ahead of the scoring stage. The margin makes both count it from the same
transaction as long as the worker keeps its stages within that much event time of each
other (a replay, or live traffic); it also never counts a label before its report time.
And a transaction only changes nothing here, so the memory is the same in both.

The two features (``account_fraud_count_30d``, ``account_days_since_reported_fraud``;
their definitions are their specs in :mod:`features.definitions`) come from
:func:`fraud_features`.

>>> from features.account.update import update_account
>>> from features.transaction import Transaction
>>> state = update_account(None, Transaction("t1", "a1", ts=1_700_000_000.0, amount=25.0)).state
>>> state = record_account_fraud(state, 1_700_000_000.0, known_at=1_700_000_000.0 + 86400.0)
>>> fraud_features(state.frauds, state.fraud_known, 1_700_000_000.0 + 86400.0 * 2.5, 1_700_000_000.0 + 86400.0 * 2.5)
(1.0, 2.5)
"""

from __future__ import annotations

from bisect import bisect_right
from math import floor, inf

from features.account.layout import MAX_FRAUDS, N3, W3
from features.account.state import AccountState
from features.definitions import FRAUD_KNOWN_AFTER_S, NO_PREVIOUS_S

__all__ = ["NO_FRAUD", "fraud_features", "record_account_fraud"]

_CAP_DAYS = NO_PREVIOUS_S / W3
_U32_MAX = 2**32 - 1
#: The features of an account with no reported fraud it may count.
NO_FRAUD = (0.0, _CAP_DAYS)


def _second(ts: float) -> int:
    second = floor(ts)
    return second if 0 <= second <= _U32_MAX else (0 if second < 0 else _U32_MAX)


def record_account_fraud(state: AccountState | None, event_ts: float, known_at: float) -> AccountState | None:
    """``state`` with a reported fraud at event time ``event_ts`` remembered, applied when the
    scored stream had reached event time ``known_at``.

    Call it when the fraud label is applied. An account without state (never seen, or
    forgotten as idle) has nothing to attach it to: ``state`` is returned as it is, as it
    is for a fraud older than every fraud of a full memory. What it keeps depends on the
    memory and the record only (not on the account's transactions since).
    """
    if state is None or state.last_ts == -inf:
        return state
    second, known = _second(event_ts), _second(known_at)
    frauds, knowns = state.frauds, state.fraud_known
    i = bisect_right(frauds, second)  # newest last: labels arrive in any order
    if len(frauds) >= MAX_FRAUDS:
        if i == 0:  # older than every fraud of a full memory
            return state
        frauds, knowns, i = frauds[1:], knowns[1:], i - 1
    return state._replace(frauds=(*frauds[:i], second, *frauds[i:]), fraud_known=(*knowns[:i], known, *knowns[i:]))


def fraud_features(frauds: tuple[int, ...], knowns: tuple[int, ...], ts: float, newest: float) -> tuple[float, float]:
    """``(account_fraud_count_30d, account_days_since_reported_fraud)`` of a transaction at
    ``ts`` for an account whose newest event time is ``newest`` (its windows end there)."""
    if not frauds:
        return NO_FRAUD
    head = floor(newest / W3)
    cut = ts - FRAUD_KNOWN_AFTER_S
    count = 0
    latest: int | None = None
    for f, k in zip(frauds, knowns, strict=True):
        if k <= cut:
            latest = f
            if 0 <= head - floor(f / W3) < N3:
                count += 1
    if latest is None:
        return NO_FRAUD
    days = (ts - latest) / W3
    if days < 0.0:
        days = 0.0
    elif days > _CAP_DAYS:
        days = _CAP_DAYS
    return float(count), days
