"""Errors of the investigators' console: one root, a child per concern."""

from __future__ import annotations


class ConsoleError(Exception):
    """Root of every error the console raises on purpose."""


class StoreError(ConsoleError):
    """The console's SQLite store cannot be opened, migrated or written as asked."""


class AuthError(ConsoleError):
    """A login, session or user-management request is refused."""


class Forbidden(AuthError):
    """The signed-in user's role does not allow the action (a viewer deciding)."""


class CsrfError(AuthError):
    """A form arrived without the session's CSRF token."""


class DecisionError(ConsoleError):
    """A decision cannot be recorded (unknown alert, unknown outcome, note too long)."""
