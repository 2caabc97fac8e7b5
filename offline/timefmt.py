"""Event-time text of the offline tools: Lima timestamps and ISO dates, written one way.

The simulator stamps millions of events, so :func:`lima_iso` formats a day once and
reuses it; :func:`day_iso` names the days of the backtest's per-day tables.

>>> lima_iso(1767243600)
'2026-01-01T00:00:00-05:00'
>>> day_iso(0)
'1970-01-01'
"""

from __future__ import annotations

from datetime import date, timedelta, timezone

__all__ = ["LIMA", "LIMA_OFFSET_S", "day_iso", "lima_iso"]

#: Peru: UTC-5 all year, no daylight saving time.
LIMA = timezone(timedelta(hours=-5), "America/Lima")
LIMA_OFFSET_S = -5 * 3600

_DAY_S = 86_400
_EPOCH = date(1970, 1, 1)
_LIMA_DAYS: dict[int, str] = {}


def day_iso(day: int) -> str:
    """Days since the epoch -> ``'YYYY-MM-DD'``."""
    return (_EPOCH + timedelta(days=int(day))).isoformat()


def lima_iso(t: int | float) -> str:
    """Epoch seconds -> ISO-8601 in Lima time, whole seconds (the fraction is dropped)."""
    local = int(t) + LIMA_OFFSET_S
    day, sod = divmod(local, _DAY_S)
    prefix = _LIMA_DAYS.get(day)
    if prefix is None:
        prefix = _LIMA_DAYS[day] = day_iso(day) + "T"
    h, rem = divmod(sod, 3600)
    m, s = divmod(rem, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}-05:00"
