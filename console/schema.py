"""The console store's schema, as an ordered list of migrations.

The version of a store file is SQLite's ``user_version``; opening a file applies every
migration above it, each in its own transaction with the version bump, so a crash never
leaves a half-migrated file. Never edit a migration that has shipped: append a new one.

Append-only tables (``decisions``, ``audit``, ``deliveries``) refuse UPDATE and DELETE
with triggers, so even a bug in the console (or a hand-typed SQL statement) cannot
rewrite the audit trail.
"""

from __future__ import annotations


def _append_only(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;\n"
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;\n"
    )


# 1: alerts as consumed, decisions (append-only), consumer positions, each alert's status
_V1 = """
    CREATE TABLE alerts (
        alert_id       TEXT PRIMARY KEY,
        transaction_id TEXT NOT NULL,
        account_id     TEXT NOT NULL,
        institution_id TEXT NOT NULL DEFAULT '',
        event_time     REAL NOT NULL,
        day            TEXT NOT NULL,
        score          REAL NOT NULL,
        threshold      REAL,
        model_version  TEXT NOT NULL DEFAULT '',
        amount         REAL,
        merchant_id    TEXT,
        rules          TEXT NOT NULL DEFAULT '[]',
        reasons        TEXT NOT NULL DEFAULT '[]',
        features       TEXT NOT NULL DEFAULT '{}',
        received_at    REAL NOT NULL
    );
    CREATE INDEX alerts_by_day ON alerts(day, institution_id, score DESC);
    CREATE INDEX alerts_by_account ON alerts(account_id, event_time);
    CREATE TABLE offsets (
        topic       TEXT NOT NULL,
        partition   INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    );
    CREATE TABLE decisions (
        decision_id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id    TEXT NOT NULL REFERENCES alerts(alert_id),
        outcome     TEXT NOT NULL CHECK (outcome IN ('fraud', 'genuine')),
        note        TEXT NOT NULL DEFAULT '',
        decided_by  TEXT NOT NULL,
        decided_at  REAL NOT NULL,
        corrects    INTEGER REFERENCES decisions(decision_id)
    );
    CREATE INDEX decisions_by_alert ON decisions(alert_id, decision_id);
    CREATE VIEW alert_status AS
        SELECT a.*, COALESCE(
            (SELECT outcome FROM decisions d WHERE d.alert_id = a.alert_id ORDER BY decision_id DESC LIMIT 1), 'new'
        ) AS status
        FROM alerts a;
    """

#: MIGRATIONS[i] takes a store from version i to version i + 1.
MIGRATIONS: tuple[str, ...] = (
    _V1 + _append_only("decisions"),
    # 2: users and roles, sessions, the role a decision was taken under
    """
    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('investigator', 'viewer')),
        password_hash TEXT NOT NULL,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_name  TEXT NOT NULL REFERENCES users(name),
        csrf       TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen  REAL NOT NULL
    );
    ALTER TABLE decisions ADD COLUMN role TEXT NOT NULL DEFAULT '';
    """,
    # 3: scored transactions (the account timeline), label deliveries, the security audit log
    """
    CREATE TABLE scores (
        transaction_id TEXT PRIMARY KEY,
        account_id     TEXT NOT NULL,
        event_time     REAL NOT NULL,
        score          REAL NOT NULL,
        alert          INTEGER NOT NULL
    );
    CREATE INDEX scores_by_account ON scores(account_id, event_time);
    CREATE TABLE deliveries (
        decision_id  INTEGER PRIMARY KEY REFERENCES decisions(decision_id),
        topic        TEXT NOT NULL,
        partition    INTEGER NOT NULL,
        offset       INTEGER NOT NULL,
        delivered_at REAL NOT NULL
    );
    CREATE TABLE audit (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        at       REAL NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        detail   TEXT NOT NULL DEFAULT ''
    );
    """
    + _append_only("deliveries")
    + _append_only("audit"),
)

LATEST = len(MIGRATIONS)
