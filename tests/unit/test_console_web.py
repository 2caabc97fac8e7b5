"""The console's web app in process (aiohttp test server, no Kafka): sign-in, queue,
alert page, decisions, CSRF, roles, headers, escaping, logs, the bind guard."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from console.auth import hash_password
from console.errors import ConsoleError
from console.ingest import alert_row
from console.server import check_bind
from console.store import Store
from console.web import build_app
from tests.unit.test_console_store import alert

PASSWORD = "a long test password"
ACCOUNT = "ACC-SECRET-0042"


class Clock:
    t = 1_772_467_200.0  # 2026-03-02T16:00:00Z

    def __call__(self) -> float:
        return self.t


def make_store() -> Store:
    store = Store(":memory:")
    for name, role in (("ana", "investigator"), ("vic", "viewer")):
        store.put_user(name, role, hash_password(PASSWORD, n=2**10), 0.0)
    rows = [
        alert(1, 0.91, account=ACCOUNT),
        alert(2, 0.72, account=ACCOUNT),
        alert(3, 0.64, reasons=[{"feature": "f", "value": 1, "text": "<script>x</script>", "contribution": 0.1}]),
    ]
    store.add_alerts([alert_row(a, ZoneInfo("America/Lima"), 0.0) for a in rows], {("alerts", 0): 3})
    return store


def run(test: Callable[[TestClient, Store, Clock], Awaitable[None]], budget: int = 2) -> Store:
    store, clock = make_store(), Clock()
    settings = Settings(console_daily_budget=budget, console_session_idle_s=600)

    async def main() -> None:
        client = TestClient(TestServer(build_app(settings, store, None, clock)))
        await client.start_server()
        try:
            await test(client, store, clock)
        finally:
            await client.close()

    asyncio.run(main())
    return store


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def login(client: TestClient, user: str, password: str = PASSWORD) -> Any:
    page = await (await client.get("/login")).text()
    return await client.post(
        "/login", data={"user": user, "password": password, "csrf": csrf_of(page), "next": "/"}, allow_redirects=False
    )


def test_pages_need_a_session_and_carry_security_headers():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        resp = await client.get("/alerts/alert-1", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
        login_page = await client.get("/login")
        for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
            assert header in login_page.headers
        assert "script-src" not in login_page.headers["Content-Security-Policy"]  # default-src 'none': no script
        assert login_page.headers["Cache-Control"] == "no-store"

    run(t)


def test_login_refuses_a_wrong_password_and_a_form_without_its_token():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        assert (await login(client, "ana", "wrong password")).status == 401
        resp = await client.post("/login", data={"user": "ana", "password": PASSWORD}, allow_redirects=False)
        assert resp.status == 403
        ok = await login(client, "ana")
        assert ok.status == 303
        cookie = ok.cookies["kuntur_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"

    run(t)


def test_queue_shows_budget_and_alert_page_shows_reasons_timeline_and_model():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        await login(client, "ana")
        queue = await (await client.get("/")).text()
        assert "Daily budget: <strong>2</strong>" in queue
        assert "3 alert(s) today, budget 2: 1 outside it" in queue
        assert (
            queue.index("alert-1")
            < queue.index("alert-2")
            < queue.index("outside the budget of 2")
            < queue.index("alert-3")
        )
        assert "&lt;script&gt;x&lt;/script&gt;" in queue and "<script>" not in queue  # alert text is escaped
        filtered = await (await client.get("/?min_score=0.7&status=new")).text()
        assert "alert-1" in filtered and "alert-3" not in filtered
        page = await (await client.get("/alerts/alert-1")).text()
        assert "7 transactions" in page  # the alert's plain-language reason
        assert "gam-pairs@3" in page and ACCOUNT in page
        assert "◀ this alert" in page and 'href="/alerts/alert-2"' in page  # the account's other alert
        assert "Confirm fraud" in page
        assert (await client.get("/alerts/nope")).status == 404

    run(t)


def test_investigator_decides_and_corrects_with_an_audit_trail():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        await login(client, "ana")
        token = csrf_of(await (await client.get("/alerts/alert-1")).text())
        resp = await client.post(
            "/alerts/alert-1/decision", data={"csrf": token, "outcome": "fraud", "note": "called the customer"}
        )
        assert resp.status == 200 and "Recorded decision #1: confirmed fraud" in await resp.text()
        clock.t += 60
        resp = await client.post("/alerts/alert-1/decision", data={"csrf": token, "outcome": "genuine"})
        page = await resp.text()
        assert "corrects #1" in page and "called the customer" in page
        assert [(d.outcome, d.decided_by, d.role) for d in store.decisions("alert-1")] == [
            ("fraud", "ana", "investigator"),
            ("genuine", "ana", "investigator"),
        ]
        assert "alert-1" not in await (await client.get("/?status=new")).text()

    run(t)


def test_a_forged_form_without_the_csrf_token_is_refused():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        await login(client, "ana")
        for data in ({"outcome": "fraud"}, {"outcome": "fraud", "csrf": "forged"}):
            resp = await client.post("/alerts/alert-1/decision", data=data)
            assert resp.status == 403 and "CSRF" in await resp.text()
        assert (await client.post("/logout", data={})).status == 403
        assert store.decisions("alert-1") == []

    run(t)


def test_a_viewer_reads_but_cannot_decide():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        await login(client, "vic")
        page = await (await client.get("/alerts/alert-1")).text()
        assert "Confirm fraud" not in page and "only investigators decide" in page
        resp = await client.post("/alerts/alert-1/decision", data={"csrf": csrf_of(page), "outcome": "fraud"})
        assert resp.status == 403
        assert store.decisions("alert-1") == []

    run(t)


def test_session_expires_and_logout_ends_it():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        await login(client, "ana")
        assert (await client.get("/", allow_redirects=False)).status == 200
        clock.t += 601
        assert (await client.get("/", allow_redirects=False)).status == 303
        await login(client, "ana")
        token = csrf_of(await (await client.get("/")).text())
        assert (await client.post("/logout", data={"csrf": token}, allow_redirects=False)).status == 303
        assert (await client.get("/", allow_redirects=False)).status == 303

    run(t)


def test_login_never_redirects_off_site():
    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        for target in ("https://evil.example/", "//evil.example/"):
            page = await (await client.get("/login")).text()
            resp = await client.post(
                "/login",
                data={"user": "ana", "password": PASSWORD, "csrf": csrf_of(page), "next": target},
                allow_redirects=False,
            )
            assert resp.headers["Location"] == "/"

    run(t)


def test_no_account_id_in_logs_at_info(caplog):
    caplog.set_level(logging.INFO)

    async def t(client: TestClient, store: Store, clock: Clock) -> None:
        await login(client, "ana")
        token = csrf_of(await (await client.get("/alerts/alert-1")).text())
        await client.post("/alerts/alert-1/decision", data={"csrf": token, "outcome": "fraud"})

    run(t)
    assert "recorded decision 1" in caplog.text
    assert ACCOUNT not in caplog.text


def test_binding_beyond_loopback_needs_users():
    empty = Store(":memory:")
    check_bind("127.0.0.1", empty)
    with pytest.raises(ConsoleError, match="no console users"):
        check_bind("0.0.0.0", empty)
    check_bind("0.0.0.0", make_store())
