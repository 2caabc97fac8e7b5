"""The console's aiohttp application: sign-in, the queue, alert pages, decisions.

Every response carries security headers (a CSP that allows no script, no framing, no
referrer, no caching of pages); every POST checks the session's CSRF token before
anything else; the access log records method, path and status, never query strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from config.settings import Settings
from console import pages
from console.auth import Sessions, check_csrf, new_token, require_investigator, same_token
from console.errors import AuthError, CsrfError, DecisionError, Forbidden
from console.labels import LabelSender
from console.store import STATUSES, Session, Store

log = logging.getLogger("kuntur.console.web")

SESSION_COOKIE = "kuntur_session"
LOGIN_COOKIE = "kuntur_login_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
MAINTENANCE_S = 15.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AccessLogger(AbstractAccessLogger):
    """``GET /alerts/<id> 200 4.1ms``: no query string (filters), no client data."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        self.logger.info("%s %s %d %.1fms", request.method, request.path, response.status, duration * 1000)


class Console:
    """Handlers bound to one store, one session manager and (optionally) a label sender."""

    def __init__(
        self, settings: Settings, store: Store, sender: LabelSender | None, clock: Callable[[], float]
    ) -> None:
        self.settings, self.store, self.sender, self.clock = settings, store, sender, clock
        self.tz = ZoneInfo(settings.timezone)
        self.sessions = Sessions(store, settings.console_session_idle_s, settings.console_session_max_s, clock)
        self.descriptions = _descriptions()

    # -- plumbing -------------------------------------------------------------------------

    def _html(self, text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    def _session(self, request: web.Request) -> Session:
        session = self.sessions.current(request.cookies.get(SESSION_COOKIE))
        if session is None:
            target = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPSeeOther(f"/login?next={_quote(target)}")
        return session

    async def _form(self, request: web.Request, session: Session) -> dict[str, str]:
        form = await request.post()
        check_csrf(session, _str(form.get("csrf")))
        return {k: _str(v) for k, v in form.items()}

    def _refused(self, session: Session | None, message: str, status: int) -> web.Response:
        body = pages.Html(f'<h1>Refused</h1><p class="flash error">{pages.esc(message)}</p><p><a href="/">back</a></p>')
        user, csrf = (session.user, session.csrf) if session else (None, "")
        return self._html(pages.page("Refused", body, user, csrf), status)

    # -- sign-in --------------------------------------------------------------------------

    async def login_form(self, request: web.Request, message: str = "", status: int = 200) -> web.Response:
        token = new_token()
        body = pages.login_body(token, _safe_next(request.query.get("next")), message, not self.store.users())
        resp = self._html(pages.page("Sign in", body), status)
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login", max_age=3600)
        return resp

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not same_token(_str(form.get("csrf")), request.cookies.get(LOGIN_COOKIE, "")):
            return await self.login_form(request, "The sign-in form expired; try again.", 403)
        try:
            token, session = await asyncio.get_running_loop().run_in_executor(
                None, self.sessions.login, _str(form.get("user")).strip(), _str(form.get("password"))
            )
        except AuthError as exc:
            return await self.login_form(request, str(exc), 401)
        log.info("console: %s signed in (%s)", session.user.name, session.user.role)
        resp = web.HTTPSeeOther(_safe_next(_str(form.get("next"))))
        resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
        resp.del_cookie(LOGIN_COOKIE, path="/login")
        raise resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        await self._form(request, session)
        self.sessions.logout(request.cookies.get(SESSION_COOKIE))
        resp = web.HTTPSeeOther("/login")
        resp.del_cookie(SESSION_COOKIE, path="/")
        raise resp

    # -- pages ----------------------------------------------------------------------------

    async def queue(self, request: web.Request) -> web.Response:
        session = self._session(request)
        q = request.query
        days = self.store.days()
        today = datetime.fromtimestamp(self.clock(), self.tz).date().isoformat()
        day = q.get("day") or (days[0][0] if days else today)
        day_label = f"{day} (today)" if day == today else f"{day} (event time, {self.tz.key})"
        filters: dict[str, Any] = {
            "institution": q.get("institution") if "institution" in q and q.get("institution") != "" else None,
            "rule": q.get("rule") or None,
            "min_score": _float(q.get("min_score")),
            "status": q.get("status") if q.get("status") in STATUSES else None,
        }
        everything = self.store.queue(day)
        totals: dict[str, int] = {}
        for a in everything:
            totals[a.institution_id] = totals.get(a.institution_id, 0) + 1
        rows = self.store.queue(day, **filters) if any(v is not None for v in filters.values()) else everything
        body = pages.queue_body(
            day, day_label, days, rows, self.settings.console_daily_budget, totals, filters,
            self.store.institutions(day), self.store.rules(day), self.tz,
        )  # fmt: skip
        return self._html(pages.page(f"Queue {day}", body, session.user, session.csrf))

    async def alert(self, request: web.Request) -> web.Response:
        session = self._session(request)
        alert = self.store.alert(request.match_info["alert_id"])
        if alert is None:
            return self._refused(session, "No such alert.", 404)
        flash = ""
        if "decided" in request.query:
            decisions = self.store.decisions(alert.alert_id)
            last = decisions[-1] if decisions else None
            if last is not None:
                sent = "the label was sent" if last.delivered_at else "the label will be sent when Kafka answers"
                flash = f"Recorded decision #{last.decision_id}: {pages.STATUS_TEXT[last.outcome]}; {sent}."
        body = pages.alert_body(
            alert,
            self.store.timeline(alert.account_id, alert.event_time),
            self.store.decisions(alert.alert_id),
            session.user,
            session.csrf,
            self.descriptions,
            self.tz,
        )
        return self._html(pages.page(f"Alert {alert.alert_id[:8]}", body, session.user, session.csrf, flash))

    async def decide(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        form = await self._form(request, session)  # CSRF first: a forged form learns nothing more
        require_investigator(session.user)
        alert_id = request.match_info["alert_id"]
        decision = self.store.decide(
            alert_id, form.get("outcome", ""), form.get("note", "").strip(), session.user.name, session.user.role,
            self.clock(),
        )  # fmt: skip
        log.info("console: %s recorded decision %d (%s)", session.user.name, decision.decision_id, decision.outcome)
        alert = self.store.alert(alert_id)
        if self.sender is not None and alert is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.sender.send, decision, alert)
        raise web.HTTPSeeOther(f"/alerts/{alert_id}?decided={decision.decision_id}")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "schema_version": self.store.version})

    # -- maintenance ----------------------------------------------------------------------

    async def maintain(self) -> None:
        """Forever: expire sessions, re-send labels Kafka has not acknowledged."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(MAINTENANCE_S)
            try:
                self.sessions.purge()
                if self.sender is not None:
                    await loop.run_in_executor(None, self.sender.send_pending)
            except Exception:
                log.exception("console: maintenance failed; retrying")


CONSOLE = web.AppKey("console", Console)


@web.middleware
async def _headers_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    try:
        resp = await handler(request)
    except CsrfError as exc:
        resp = console._refused(None, str(exc), 403)
    except Forbidden as exc:
        resp = console._refused(None, str(exc), 403)
    except DecisionError as exc:
        resp = console._refused(None, str(exc), 400)
    except web.HTTPException as exc:
        for k, v in SECURITY_HEADERS.items():
            exc.headers.setdefault(k, v)
        raise
    for k, v in SECURITY_HEADERS.items():
        resp.headers.setdefault(k, v)
    if request.path.startswith("/static/"):
        resp.headers.setdefault("Cache-Control", "max-age=3600")
    else:
        resp.headers["Cache-Control"] = "no-store"
    return resp


def build_app(
    settings: Settings, store: Store, sender: LabelSender | None = None, clock: Callable[[], float] = time.time
) -> web.Application:
    console = Console(settings, store, sender, clock)
    app = web.Application(middlewares=[_headers_and_errors], client_max_size=64 * 1024)
    app[CONSOLE] = console
    app.router.add_get("/health", console.health)
    app.router.add_get("/login", console.login_form)
    app.router.add_post("/login", console.login)
    app.router.add_post("/logout", console.logout)
    app.router.add_get("/", console.queue)
    app.router.add_get("/alerts/{alert_id}", console.alert)
    app.router.add_post("/alerts/{alert_id}/decision", console.decide)
    app.router.add_static("/static/", pages.TEMPLATES.parent / "static")

    async def background(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(console.maintain())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(background)
    return app


def _descriptions() -> dict[str, str]:
    from features.catalogue import CATALOGUE

    return {s.name: s.description for s in CATALOGUE}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="")


def _safe_next(target: str | None) -> str:
    """Only a local path: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
