"""The account's id memory: a re-delivery anywhere inside the lateness tolerance is a duplicate,
whatever the account did in between; an older one is late and never counted twice; the bound."""

from __future__ import annotations

import logging
import random

import pytest

from config.settings import Settings
from features.account import MAX_ENCODED_SIZE, AccountState, AccountUpdate, update_account
from features.account.codec import ID_BYTES
from features.account.ids import id_hash
from features.account.layout import MAX_IDS
from features.transaction import Transaction
from stream.pipeline.stages import AccountStage

T0 = 1_699_920_000.0
HOUR = 3600.0


def tx(i: int | str, ts: float, amount: float = 10.0) -> Transaction:
    return Transaction(f"t{i}", "acc", ts, amount, merchant_id=f"m{hash(str(i)) % 7}")


def fold(events: list[Transaction], state: AccountState | None = None, **kw: float) -> list[AccountUpdate]:
    out = []
    for e in events:
        u = update_account(state, e, **kw)
        out.append(u)
        state = u.state
    return out


def windows(state: AccountState) -> tuple:
    return state.last_ts, state.tiles.tobytes(), state.caches


def test_redelivered_after_500_others_hours_later_inside_the_tolerance_is_a_duplicate() -> None:
    tol = 6 * HOUR
    first = tx("first", T0, 123.0)
    others = [tx(i, T0 + 30.0 * (i + 1), 5.0 + i % 9) for i in range(500)]  # 4 h 10 min of event time
    nxt = tx("next", others[-1].ts + 60.0, 7.0)
    clean = fold([first, *others, nxt], late_tolerance_s=tol)
    before = clean[-2].state
    assert before.last_ts - first.ts == 500 * 30.0  # hours later, inside the 6-hour tolerance
    again = update_account(before, first, late_tolerance_s=tol)
    assert again.duplicate and not again.late
    assert again.state is before  # windows unchanged: nothing counted
    after = update_account(again.state, nxt, late_tolerance_s=tol)
    assert after.features == clean[-1].features  # the next transaction sees the uninterrupted windows
    assert after.features["account_tx_count_24h"] == 502.0
    # in any order: a re-delivery of any of the 501 is a duplicate
    assert all(update_account(before, e, late_tolerance_s=tol).duplicate for e in [first, *others])


def test_a_redelivery_older_than_the_tolerance_is_late_and_never_counted_twice() -> None:
    first = tx("first", T0, 123.0)
    others = [tx(i, T0 + 30.0 * (i + 1), 5.0) for i in range(500)]  # 4 h 10 min > the default hour
    nxt = tx("next", others[-1].ts + 60.0, 7.0)
    clean = fold([first, *others, nxt])
    before = clean[-2].state
    assert id_hash(first.transaction_id) not in before.ids  # forgotten: its redelivery would be late
    again = update_account(before, first)
    assert again.late and not again.duplicate
    assert windows(again.state) == windows(before)  # not counted into the windows
    assert again.features["account_tx_count_24h"] == clean[-2].features["account_tx_count_24h"] == 501.0
    # remembered now (for one tolerance): a third delivery is a duplicate, not another late event
    third = update_account(again.state, first)
    assert third.duplicate and third.state is again.state
    after = update_account(third.state, nxt)
    assert after.features == clean[-1].features


def test_the_memory_holds_exactly_the_ids_inside_the_tolerance_whatever_the_order() -> None:
    rnd = random.Random(5)
    events = [tx(i, T0 + 20.0 * i + rnd.uniform(-1500, 1500), 1.0) for i in range(2000)]  # ~11 h, disordered
    state = None
    for n, e in enumerate(events, 1):
        u = update_account(state, e)
        assert not (u.duplicate or u.late)  # disordered by less than the tolerance
        state = u.state
        assert list(state.id_seen) == sorted(state.id_seen)
        assert len(state.ids) == len(state.id_seen) <= MAX_IDS
        if n % 50 == 0:  # exactly the ids whose whole second may hold an event time within the hour
            newest = state.last_ts
            expected = {id_hash(x.transaction_id) for x in events[:n] if int(x.ts) > newest - HOUR - 1.0}
            assert set(state.ids) == expected
            assert {id_hash(x.transaction_id) for x in events[:n] if x.ts >= newest - HOUR} <= expected
    assert state is not None
    assert 100 < len(state.ids) < 250  # 20 s apart: at most ~180 in the hour, not 2,000


def test_the_cap_forgets_the_oldest_and_says_how_many() -> None:
    n = MAX_IDS + 76
    updates = fold([tx(i, T0 + 2.0 * i) for i in range(n)])  # all inside one hour
    state = updates[-1].state
    assert len(state.ids) == MAX_IDS
    assert sum(u.ids_dropped for u in updates) == 76
    assert [u.ids_dropped for u in updates[MAX_IDS:]] == [1] * 76
    # the 76 oldest are forgotten: a re-delivery of one of them is counted again (the cap's cost)
    forgotten = update_account(state, tx(75, T0 + 150.0))
    assert not forgotten.duplicate and not forgotten.late
    assert forgotten.features["account_tx_count_1h"] == n + 1
    assert update_account(state, tx(76, T0 + 152.0)).duplicate  # the oldest one kept


def test_bytes_per_account_are_12_per_id_inside_the_tolerance() -> None:
    for k in (0, 1, 10, 500, MAX_IDS):
        state = fold([tx(i, T0 + 3.0 * i) for i in range(k)])[-1].state if k else AccountState()
        bare = state._replace(ids=(), id_seen=()).to_bytes()
        assert len(state.ids) == k
        assert len(state.to_bytes()) - len(bare) == ID_BYTES * k == 12 * k
        assert len(state.to_bytes()) <= MAX_ENCODED_SIZE
        assert AccountState.from_bytes(state.to_bytes()) == state


def test_ids_are_64_bit_hashes_stable_across_processes() -> None:
    assert id_hash("tx-1") == 7726700342316911226  # BLAKE2b-64: not salted per process
    hashes = {id_hash(f"tx-{i}") for i in range(100_000)}
    assert len(hashes) == 100_000 and max(hashes) < 2**64


def test_the_stage_counts_and_logs_the_ids_the_cap_forgot(caplog: pytest.LogCaptureFixture) -> None:
    stage = AccountStage(Settings())
    state = None
    with caplog.at_level(logging.WARNING, logger="stream.pipeline.stages"):
        for i in range(MAX_IDS + 10):
            step = stage.on_transaction(state, tx(i, T0 + i))
            state = step.state
        assert stage.on_transaction(state, tx(MAX_IDS + 9, T0)).duplicate
    assert stage.ids_dropped == 10
    # logged when the total reaches 1, 2, 4, 8: four lines for ten ids, not ten
    assert [r.getMessage().split()[0] for r in caplog.records] == ["1", "2", "4", "8"]
