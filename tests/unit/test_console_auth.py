"""Console sign-in: password hashing, session expiry, CSRF tokens, roles."""

from __future__ import annotations

import pytest

from console.auth import (
    MAX_FAILURES,
    Sessions,
    check_csrf,
    check_new_password,
    hash_password,
    require_investigator,
    token_hash,
    verify_password,
)
from console.errors import AuthError, CsrfError, Forbidden
from console.store import Store

FAST = {"n": 2**10}  # cheaper scrypt for tests that do not test the cost


class Clock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sessions(clock: Clock, idle: float = 60.0, max_s: float = 600.0) -> Sessions:
    store = Store(":memory:")
    store.put_user("ana", "investigator", hash_password("ana-secret-pw", **FAST), 0.0)
    store.put_user("vic", "viewer", hash_password("vic-secret-pw", **FAST), 0.0)
    return Sessions(store, idle, max_s, clock)


def test_passwords_are_salted_scrypt_hashes_that_verify_only_the_right_password():
    a, b = hash_password("same password"), hash_password("same password")
    assert a != b and a.startswith("scrypt$16384$8$1$")  # random salt; parameters kept with the hash
    assert "same password" not in a
    assert verify_password("same password", a) and verify_password("same password", b)
    assert not verify_password("Same password", a)
    assert not verify_password("same password", "md5$whatever")
    assert not verify_password("same password", "garbage")


def test_new_passwords_need_a_minimum_length():
    with pytest.raises(AuthError):
        check_new_password("short")
    check_new_password("long enough password")


def test_login_gives_a_token_whose_hash_only_is_stored():
    clock = Clock()
    s = sessions(clock)
    token, session = s.login("ana", "ana-secret-pw")
    assert session.user.role == "investigator" and len(session.csrf) >= 40
    stored = [r[0] for r in s.store._all("SELECT token_hash FROM sessions")]
    assert stored == [token_hash(token)] and token not in stored
    assert s.current(token).user.name == "ana"
    assert s.current("forged") is None and s.current(None) is None


def test_wrong_or_unknown_logins_are_refused_alike_and_audited():
    s = sessions(Clock())
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        s.login("ana", "wrong")
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        s.login("nobody", "ana-secret-pw")
    actions = [e[2] for e in s.store.audit_events()]
    assert actions.count("login-failed") == 2


def test_repeated_failures_lock_the_user_for_a_while():
    clock = Clock()
    s = sessions(clock)
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthError):
            s.login("ana", "wrong")
    with pytest.raises(AuthError, match="too many"):
        s.login("ana", "ana-secret-pw")
    clock.t += 901
    assert s.login("ana", "ana-secret-pw")[1].user.name == "ana"


def test_sessions_expire_when_idle_and_after_their_maximum_life():
    clock = Clock()
    s = sessions(clock, idle=60, max_s=150)
    token, _ = s.login("ana", "ana-secret-pw")
    clock.t += 50
    assert s.current(token) is not None  # used: idle timer restarts
    clock.t += 50
    assert s.current(token) is not None
    clock.t += 51  # 151 s after login: past the maximum life although used
    assert s.current(token) is None
    token, _ = s.login("ana", "ana-secret-pw")
    clock.t += 61
    assert s.current(token) is None  # idle too long
    assert s.store._all("SELECT COUNT(*) FROM sessions")[0][0] == 0  # expired sessions are deleted


def test_purge_deletes_expired_sessions_and_a_new_password_ends_open_ones():
    clock = Clock()
    s = sessions(clock)
    old, _ = s.login("ana", "ana-secret-pw")
    clock.t += 61
    assert s.purge() == 1
    token, _ = s.login("ana", "ana-secret-pw")
    s.store.put_user("ana", "viewer", hash_password("another-password", **FAST), clock.t)
    assert s.current(token) is None


def test_csrf_token_must_match_the_session():
    s = sessions(Clock())
    _, session = s.login("ana", "ana-secret-pw")
    check_csrf(session, session.csrf)
    for bad in (None, "", "x", session.csrf[:-1]):
        with pytest.raises(CsrfError):
            check_csrf(session, bad)


def test_only_investigators_decide():
    s = sessions(Clock())
    require_investigator(s.login("ana", "ana-secret-pw")[1].user)
    with pytest.raises(Forbidden):
        require_investigator(s.login("vic", "vic-secret-pw")[1].user)
