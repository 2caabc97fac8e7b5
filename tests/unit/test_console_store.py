"""The console's SQLite store: migrations, append-only decisions, corrections, restarts."""

from __future__ import annotations

import sqlite3
from zoneinfo import ZoneInfo

import pytest

from console.errors import DecisionError, StoreError
from console.ingest import alert_row
from console.schema import LATEST, MIGRATIONS
from console.store import Store

LIMA = ZoneInfo("America/Lima")


def alert(n: int, score: float = 0.5, institution: str = "BCP", account: str = "acc-1", **extra) -> dict:
    return {
        "alert_id": f"alert-{n}",
        "transaction_id": f"tx-{n}",
        "account_id": account,
        "institution_id": institution,
        "event_time": f"2026-03-02T{10 + n % 10:02d}:00:00-05:00",
        "scored_at": "2026-03-02T15:00:00+00:00",
        "score": score,
        "threshold": 0.5,
        "model_version": "gam-pairs@3",
        "reasons": [{"feature": "account_tx_count_1h", "value": 7.0, "text": "7 transactions", "contribution": 1.2}],
        "rules": ["card-testing"] if n % 2 else [],
        "features": {"account_tx_count_1h": 7.0, "account_amount_mean_30d": 100.0},
        "amount": 480.0,
        "merchant_id": "M-1",
        **extra,
    }


def add(store: Store, *alerts: dict, offset: int = 0) -> int:
    rows = [alert_row(a, LIMA, 1.0) for a in alerts]
    return store.add_alerts(rows, {("alerts", 0): offset + len(rows)})


def test_a_new_store_is_created_at_the_latest_version(tmp_path):
    store = Store(tmp_path / "c.sqlite3")
    assert store.version == LATEST == len(MIGRATIONS)
    tables = {r[0] for r in store._all("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert {"alerts", "decisions", "users", "sessions", "scores", "deliveries", "audit", "alert_status"} <= tables


def test_an_old_store_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = Store(path, migrate_to=1)  # a store as version 1 of the console left it
    assert old.version == 1
    add(old, alert(1))
    old._db.execute(
        "INSERT INTO decisions (alert_id, outcome, decided_by, decided_at) VALUES ('alert-1', 'fraud', 'x', 1)"
    )
    old.close()
    store = Store(path)
    assert store.version == LATEST
    assert store.alert("alert-1").status == "fraud"
    assert store.decisions("alert-1")[0].role == ""  # the column added by migration 2 has its default


def test_a_store_from_a_newer_console_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_alerts_are_idempotent_by_id_and_offsets_move_with_them():
    store = Store(":memory:")
    assert add(store, alert(1), alert(2)) == 2
    assert add(store, alert(1), offset=2) == 0  # re-delivered upstream: absorbed
    assert store.offsets("alerts") == {0: 3}
    assert [d for d, _ in store.days()] == ["2026-03-02"]


def test_queue_ranks_by_score_per_institution_and_filters_do_not_change_the_rank():
    store = Store(":memory:")
    add(store, alert(1, 0.9), alert(2, 0.7), alert(3, 0.8), alert(4, 0.95, institution="BBVA"))
    rows = store.queue("2026-03-02")
    assert [(r.institution_id, r.alert_id, r.rank) for r in rows] == [
        ("BBVA", "alert-4", 1),
        ("BCP", "alert-1", 1),
        ("BCP", "alert-3", 2),
        ("BCP", "alert-2", 3),
    ]
    filtered = store.queue("2026-03-02", institution="BCP", min_score=0.75, rule="card-testing")
    assert [(r.alert_id, r.rank) for r in filtered] == [("alert-1", 1), ("alert-3", 2)]
    store.decide("alert-1", "fraud", "", "ana", "investigator", 10.0)
    assert [r.alert_id for r in store.queue("2026-03-02", status="new")] == ["alert-4", "alert-3", "alert-2"]
    assert [r.alert_id for r in store.queue("2026-03-02", status="fraud")] == ["alert-1"]
    assert store.rules("2026-03-02") == ["card-testing"]
    assert store.institutions("2026-03-02") == ["BBVA", "BCP"]


def test_decisions_are_append_only_even_in_sql():
    store = Store(":memory:")
    add(store, alert(1))
    store.decide("alert-1", "fraud", "", "ana", "investigator", 10.0)
    for statement in ("UPDATE decisions SET outcome = 'genuine'", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store._db.execute(statement)
    store.audit("ana", "login", "", 1.0)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._db.execute("DELETE FROM audit")


def test_a_correction_is_a_new_decision_that_points_at_the_one_it_corrects():
    store = Store(":memory:")
    add(store, alert(1))
    first = store.decide("alert-1", "fraud", "card never left the wallet", "ana", "investigator", 10.0)
    second = store.decide("alert-1", "genuine", "customer confirmed", "luis", "investigator", 20.0)
    assert (first.corrects, second.corrects) == (None, first.decision_id)
    history = store.decisions("alert-1")
    assert [(d.outcome, d.decided_by, d.decided_at) for d in history] == [
        ("fraud", "ana", 10.0),
        ("genuine", "luis", 20.0),
    ]
    assert store.alert("alert-1").status == "genuine"


def test_bad_decisions_are_refused():
    store = Store(":memory:")
    add(store, alert(1))
    with pytest.raises(DecisionError):
        store.decide("alert-1", "maybe", "", "ana", "investigator", 1.0)
    with pytest.raises(DecisionError):
        store.decide("no-such-alert", "fraud", "", "ana", "investigator", 1.0)
    with pytest.raises(DecisionError):
        store.decide("alert-1", "fraud", "x" * 5000, "ana", "investigator", 1.0)
    assert store.decisions("alert-1") == []


def test_restart_keeps_decisions_and_does_not_show_decided_alerts_as_new(tmp_path):
    path = tmp_path / "console.sqlite3"
    store = Store(path)
    add(store, alert(1), alert(2))
    decision = store.decide("alert-1", "fraud", "", "ana", "investigator", 10.0)
    store.mark_delivered(decision.decision_id, "labels", 0, 41, 11.0)
    store.close()

    store = Store(path)  # the console restarted; the topic is read again from the stored offset
    assert store.offsets("alerts") == {0: 2}
    assert add(store, alert(1), alert(2), offset=0) == 0  # even a full re-read adds nothing
    assert [(r.alert_id, r.status) for r in store.queue("2026-03-02", status="new")] == [("alert-2", "new")]
    assert store.alert("alert-1").status == "fraud"
    assert store.decisions("alert-1")[0].delivered_at == 11.0
    assert store.undelivered() == []


def test_undelivered_decisions_wait_for_their_acknowledgement():
    store = Store(":memory:")
    add(store, alert(1))
    d = store.decide("alert-1", "genuine", "", "ana", "investigator", 10.0)
    assert [x.decision_id for x, _ in store.undelivered()] == [d.decision_id]
    store.mark_delivered(d.decision_id, "labels", 1, 7, 12.0)
    store.mark_delivered(d.decision_id, "labels", 1, 8, 13.0)  # a re-send acknowledged twice: kept once
    assert store.undelivered() == []


def test_timeline_merges_alerts_and_scores_of_the_account():
    store = Store(":memory:")
    add(store, alert(1), alert(3), alert(5, account="someone-else"))
    t0 = alert_row(alert(1), LIMA, 0)["event_time"]
    store.add_scores(
        [
            {"transaction_id": "tx-0", "account_id": "acc-1", "event_time": t0 - 60, "score": 0.1, "alert": 0},
            {"transaction_id": "tx-1", "account_id": "acc-1", "event_time": t0, "score": 0.5, "alert": 1},
        ],
        {("scores", 0): 2},
    )
    entries = store.timeline("acc-1", t0)
    assert [(e.transaction_id, e.alert_id) for e in entries] == [
        ("tx-0", None),
        ("tx-1", "alert-1"),
        ("tx-3", "alert-3"),
    ]


def test_malformed_alerts_raise_so_the_reader_can_skip_them():
    for bad in ({}, {**alert(1), "event_time": "yesterday"}, {**alert(1), "event_time": "2026-03-02T10:00:00"}):
        with pytest.raises((KeyError, ValueError)):
            alert_row(bad, LIMA, 0)
