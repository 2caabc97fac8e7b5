"""The console's embedded store: one SQLite file (alerts, decisions, users, sessions).

Consumed records and the consumer's position are written in one transaction, so a
restart resumes exactly where the store stopped and re-delivered alerts (at-least-once
upstream) are absorbed by ``alert_id``. An alert's status is its latest decision, read
from the append-only ``decisions`` table: nothing about a decided alert is ever "new"
again, whatever the console re-reads.

>>> store = Store(":memory:")
>>> store.version == LATEST
True
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from console.errors import DecisionError, StoreError
from console.schema import LATEST, MIGRATIONS

OUTCOMES = ("fraud", "genuine")
ROLES = ("investigator", "viewer")
STATUSES = ("new", "fraud", "genuine")
MAX_NOTE_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    transaction_id: str
    account_id: str
    institution_id: str
    event_time: float
    day: str
    score: float
    threshold: float | None
    model_version: str
    amount: float | None
    merchant_id: str | None
    rules: list[str]
    reasons: list[dict[str, Any]]
    features: dict[str, float]
    received_at: float
    status: str = "new"  # the latest decision's outcome, or "new"
    rank: int = 0  # by score among its institution's alerts of its day (queue only)


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: int
    alert_id: str
    outcome: str
    note: str
    decided_by: str
    role: str
    decided_at: float
    corrects: int | None
    delivered_at: float | None = None


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user: User
    csrf: str
    created_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    transaction_id: str
    event_time: float
    score: float
    alert_id: str | None
    amount: float | None
    merchant_id: str | None
    status: str | None


def _alert(row: sqlite3.Row) -> AlertRow:
    keys = row.keys()
    return AlertRow(
        alert_id=row["alert_id"],
        transaction_id=row["transaction_id"],
        account_id=row["account_id"],
        institution_id=row["institution_id"],
        event_time=row["event_time"],
        day=row["day"],
        score=row["score"],
        threshold=row["threshold"],
        model_version=row["model_version"],
        amount=row["amount"],
        merchant_id=row["merchant_id"],
        rules=orjson.loads(row["rules"]),
        reasons=orjson.loads(row["reasons"]),
        features=orjson.loads(row["features"]),
        received_at=row["received_at"],
        status=row["status"] if "status" in keys else "new",
        rank=row["rank"] if "rank" in keys else 0,
    )


def _decision(row: sqlite3.Row) -> Decision:
    return Decision(
        decision_id=row["decision_id"],
        alert_id=row["alert_id"],
        outcome=row["outcome"],
        note=row["note"],
        decided_by=row["decided_by"],
        role=row["role"],
        decided_at=row["decided_at"],
        corrects=row["corrects"],
        delivered_at=row["delivered_at"] if "delivered_at" in row.keys() else None,
    )


class Store:
    """The console's SQLite file; safe to share between the web app and the ingest thread."""

    def __init__(self, path: str | Path, *, migrate_to: int = LATEST) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the console store {self.path}: {exc}") from None
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 5000")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self.migrate(migrate_to)

    # -- schema ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, upto: int = LATEST) -> int:
        """Apply the migrations above the file's version (up to ``upto``); the new version."""
        with self._lock:
            current = self.version
            if current > LATEST:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this console's {LATEST}: upgrade Kuntur"
                )
            for version in range(current, upto):
                try:
                    self._db.executescript(
                        f"BEGIN;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
                    )
                except sqlite3.Error as exc:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise StoreError(f"migrating {self.path} to version {version + 1} failed: {exc}") from None
            return self.version

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- ingest ---------------------------------------------------------------------------

    def add_alerts(self, alerts: Iterable[Mapping[str, Any]], offsets: Mapping[tuple[str, int], int]) -> int:
        """Insert consumed alerts (already normalised by :mod:`console.ingest`) and move the
        consumer position, atomically; the number of alerts that were new."""
        new = 0
        with self._tx() as db:
            for a in alerts:
                cur = db.execute(
                    "INSERT OR IGNORE INTO alerts VALUES (:alert_id, :transaction_id, :account_id, :institution_id, "
                    ":event_time, :day, :score, :threshold, :model_version, :amount, :merchant_id, :rules, :reasons, "
                    ":features, :received_at)",
                    dict(a),
                )
                new += cur.rowcount
            self._save_offsets(db, offsets)
        return new

    def add_scores(self, scores: Iterable[Mapping[str, Any]], offsets: Mapping[tuple[str, int], int]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO scores VALUES (:transaction_id, :account_id, :event_time, :score, :alert)",
                [dict(s) for s in scores],
            )
            self._save_offsets(db, offsets)

    @staticmethod
    def _save_offsets(db: sqlite3.Connection, offsets: Mapping[tuple[str, int], int]) -> None:
        db.executemany(
            "INSERT INTO offsets VALUES (?, ?, ?) "
            "ON CONFLICT(topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(t, p, o) for (t, p), o in offsets.items()],
        )

    def offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition of ``topic``."""
        rows = self._all("SELECT partition, next_offset FROM offsets WHERE topic = ?", (topic,))
        return {r["partition"]: r["next_offset"] for r in rows}

    # -- reading alerts -------------------------------------------------------------------

    def alert(self, alert_id: str) -> AlertRow | None:
        rows = self._all("SELECT * FROM alert_status WHERE alert_id = ?", (alert_id,))
        return _alert(rows[0]) if rows else None

    def days(self) -> list[tuple[str, int]]:
        """Days that have alerts, newest first, with their alert counts."""
        return [(r[0], r[1]) for r in self._all("SELECT day, COUNT(*) FROM alerts GROUP BY day ORDER BY day DESC")]

    def institutions(self, day: str) -> list[str]:
        return [r[0] for r in self._all("SELECT DISTINCT institution_id FROM alerts WHERE day = ? ORDER BY 1", (day,))]

    def rules(self, day: str) -> list[str]:
        rows = self._all(
            "SELECT DISTINCT j.value FROM alerts, json_each(alerts.rules) j WHERE day = ? ORDER BY 1", (day,)
        )
        return [r[0] for r in rows]

    def queue(
        self,
        day: str,
        institution: str | None = None,
        rule: str | None = None,
        min_score: float | None = None,
        status: str | None = None,
    ) -> list[AlertRow]:
        """A day's alerts by institution, highest score first, each with its rank in its
        institution's day (the rank, not the filters, decides whether it is inside the budget)."""
        where: list[str] = []
        params: list[Any] = []
        if institution is not None:
            where.append("institution_id = ?")
            params.append(institution)
        if rule:
            where.append("EXISTS (SELECT 1 FROM json_each(rules) WHERE value = ?)")
            params.append(rule)
        if min_score is not None:
            where.append("score >= ?")
            params.append(min_score)
        if status:
            where.append("status = ?")
            params.append(status)
        # the WHERE fragments are the constants above; every value is a bound parameter
        sql = f"""
            SELECT * FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY institution_id ORDER BY score DESC, event_time) AS rank
                FROM alert_status WHERE day = ?
            ) {"WHERE " + " AND ".join(where) if where else ""}
            ORDER BY institution_id, rank
        """  # noqa: S608
        return [_alert(r) for r in self._all(sql, [day, *params])]

    def timeline(self, account_id: str, around: float, limit: int = 40) -> list[TimelineEntry]:
        """The account's alerts and scored transactions known to the console, nearest to
        ``around`` first chosen, returned in event-time order."""
        sql = """
            SELECT transaction_id, event_time, score, alert_id, amount, merchant_id, status FROM (
                SELECT transaction_id, event_time, score, alert_id, amount, merchant_id, status
                FROM alert_status WHERE account_id = ?
                UNION ALL
                SELECT sc.transaction_id, sc.event_time, sc.score, NULL, NULL, NULL, NULL FROM scores sc
                WHERE sc.account_id = ?
                  AND NOT EXISTS (SELECT 1 FROM alerts a2 WHERE a2.transaction_id = sc.transaction_id)
            ) ORDER BY ABS(event_time - ?) LIMIT ?
        """
        rows = self._all(sql, (account_id, account_id, around, limit))
        entries = [TimelineEntry(*tuple(r)) for r in rows]
        return sorted(entries, key=lambda e: e.event_time)

    # -- decisions ------------------------------------------------------------------------

    def decide(self, alert_id: str, outcome: str, note: str, user: str, role: str, now: float) -> Decision:
        """Record a decision; on a decided alert it is a correction of the latest one."""
        if outcome not in OUTCOMES:
            raise DecisionError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        if len(note) > MAX_NOTE_CHARS:
            raise DecisionError(f"a note is at most {MAX_NOTE_CHARS} characters")
        with self._tx() as db:
            if db.execute("SELECT 1 FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone() is None:
                raise DecisionError(f"no alert {alert_id!r}")
            prev = db.execute("SELECT MAX(decision_id) FROM decisions WHERE alert_id = ?", (alert_id,)).fetchone()[0]
            cur = db.execute(
                "INSERT INTO decisions (alert_id, outcome, note, decided_by, decided_at, corrects, role) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (alert_id, outcome, note, user, now, prev, role),
            )
            decision_id = int(cur.lastrowid or 0)
        return Decision(decision_id, alert_id, outcome, note, user, role, now, prev)

    def decisions(self, alert_id: str) -> list[Decision]:
        """An alert's decisions, oldest first (the audit trail of that alert)."""
        rows = self._all(
            "SELECT d.*, l.delivered_at FROM decisions d LEFT JOIN deliveries l USING (decision_id) "
            "WHERE d.alert_id = ? ORDER BY d.decision_id",
            (alert_id,),
        )
        return [_decision(r) for r in rows]

    def undelivered(self) -> list[tuple[Decision, AlertRow]]:
        """Decisions whose label has not been acknowledged by Kafka yet, oldest first."""
        rows = self._all(
            "SELECT d.* FROM decisions d LEFT JOIN deliveries l USING (decision_id) "
            "WHERE l.decision_id IS NULL ORDER BY d.decision_id"
        )
        out = []
        for r in rows:
            alert = self.alert(r["alert_id"])
            if alert is not None:
                out.append((_decision(r), alert))
        return out

    def mark_delivered(self, decision_id: int, topic: str, partition: int, offset: int, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?)", (decision_id, topic, partition, offset, now)
            )

    # -- users, sessions, audit -----------------------------------------------------------

    def put_user(self, name: str, role: str, password_hash: str, now: float) -> bool:
        """Create a user or replace its role and password; True if it was created."""
        if role not in ROLES:
            raise StoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self._tx() as db:
            existed = db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None
            db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role = excluded.role, "
                "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
                (name, role, password_hash, now, now),
            )
            if existed:  # a new password or role ends the user's open sessions
                db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            self._audit(db, "cli", "user-updated" if existed else "user-added", f"{name} ({role})", now)
        return not existed

    def user(self, name: str) -> User | None:
        rows = self._all("SELECT name, role, password_hash FROM users WHERE name = ?", (name,))
        return User(*tuple(rows[0])) if rows else None

    def users(self) -> list[User]:
        return [User(*tuple(r)) for r in self._all("SELECT name, role, password_hash FROM users ORDER BY name")]

    def add_session(self, token_hash: str, user: str, csrf: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (token_hash, user, csrf, now, now))

    def session(self, token_hash: str) -> Session | None:
        rows = self._all(
            "SELECT s.*, u.role, u.password_hash FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return Session(r["token_hash"], User(r["user_name"], r["role"], r["password_hash"]), r["csrf"],
                       r["created_at"], r["last_seen"])  # fmt: skip

    def touch_session(self, token_hash: str, now: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))

    def end_session(self, token_hash: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def purge_sessions(self, idle_before: float, created_before: float) -> int:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created_at < ?", (idle_before, created_before)
            )
            return cur.rowcount

    def audit(self, actor: str, action: str, detail: str, now: float) -> None:
        with self._tx() as db:
            self._audit(db, actor, action, detail, now)

    @staticmethod
    def _audit(db: sqlite3.Connection, actor: str, action: str, detail: str, now: float) -> None:
        db.execute("INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)", (now, actor, action, detail))

    def audit_events(self, limit: int = 100) -> list[tuple[float, str, str, str]]:
        rows = self._all("SELECT at, actor, action, detail FROM audit ORDER BY event_id DESC LIMIT ?", (limit,))
        return [tuple(r) for r in rows]  # type: ignore[misc]
