"""Passwords, sessions and CSRF tokens for the console, with the standard library only.

Passwords are hashed with scrypt (``hashlib.scrypt``, a random 16-byte salt, N=2**14,
r=8, p=1) and compared in constant time. A session is a random 256-bit token in an
HttpOnly, SameSite=Strict cookie; the store keeps only its SHA-256, so a copy of the
store file does not let anyone sign in. A session expires after ``idle_s`` unused or
``max_s`` after login. Every form carries the session's CSRF token.

>>> stored = hash_password("correct horse battery staple")
>>> verify_password("correct horse battery staple", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from console.errors import AuthError, CsrfError, Forbidden
from console.store import Session, Store, User

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1_024
#: failed logins of one user name within FAILURE_WINDOW_S that lock it for that long
MAX_FAILURES, FAILURE_WINDOW_S = 5, 900.0

INVESTIGATOR, VIEWER = "investigator", "viewer"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64): the parameters travel with the hash."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AuthError(f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(submitted: str | None, expected: str) -> bool:
    return bool(submitted) and hmac.compare_digest(str(submitted).encode(), expected.encode())


# A hash to verify against when the user name is unknown, so that the answer takes as
# long as for a known name (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_hex(16))


@dataclass
class Sessions:
    """Sign in, find the session of a request, sign out; decide who may do what."""

    store: Store
    idle_s: float
    max_s: float
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._failures: dict[str, list[float]] = {}

    def login(self, name: str, password: str) -> tuple[str, Session]:
        """A new session token for ``name`` (:class:`AuthError` if refused)."""
        now = self.clock()
        recent = [t for t in self._failures.get(name, []) if now - t < FAILURE_WINDOW_S]
        if len(recent) >= MAX_FAILURES:
            self.store.audit(name, "login-locked", "", now)
            raise AuthError("too many failed sign-ins for this user; try again in 15 minutes")
        user = self.store.user(name)
        ok = verify_password(password[:MAX_PASSWORD_CHARS], user.password_hash if user else _DUMMY_HASH)
        if user is None or not ok:
            self._failures[name] = [*recent, now]
            self.store.audit(name if user else "?", "login-failed", "", now)
            raise AuthError("unknown user or wrong password")
        self._failures.pop(name, None)
        token = new_token()
        self.store.add_session(token_hash(token), user.name, new_token(), now)
        self.store.audit(user.name, "login", user.role, now)
        session = self.store.session(token_hash(token))
        assert session is not None
        return token, session

    def current(self, token: str | None) -> Session | None:
        """The live session of ``token``; an expired one is deleted and gives None."""
        if not token:
            return None
        key = token_hash(token)
        session = self.store.session(key)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_s or now - session.created_at > self.max_s:
            self.store.end_session(key)
            return None
        self.store.touch_session(key, now)
        return session

    def logout(self, token: str | None) -> None:
        if token:
            session = self.store.session(token_hash(token))
            self.store.end_session(token_hash(token))
            if session is not None:
                self.store.audit(session.user.name, "logout", "", self.clock())

    def purge(self) -> int:
        now = self.clock()
        return self.store.purge_sessions(now - self.idle_s, now - self.max_s)


def check_csrf(session: Session, submitted: str | None) -> None:
    if not same_token(submitted, session.csrf):
        raise CsrfError("the form has no valid CSRF token (reload the page and try again)")


def require_investigator(user: User) -> None:
    if user.role != INVESTIGATOR:
        raise Forbidden(f"{user.name} is a {user.role}: only investigators decide alerts")
