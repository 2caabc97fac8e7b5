"""The test window of ``kuntur evaluate`` in the history's own time: zone, range, local days.

One convention for every time the offline tools read (issue 11, item 14): a time written
without a zone — ``--test-start 2026-01-08``, ``--test-end 2026-01-10T12:00``, a naive
timestamp in the file, ``kuntur simulate --start`` — is read in the ``--timezone`` zone,
America/Lima unless told otherwise; a time with an explicit offset (``...-05:00``, ``Z``)
is always accepted as written. Days (alerts per day, the daily budget) are that zone's
days too, as the investigators' console counts them.

:func:`check_window` compares the window with the file's first and last transaction
*before* the long streaming run, so a window outside the file fails in seconds and says
what the file covers.

>>> from zoneinfo import ZoneInfo
>>> lima = ZoneInfo("America/Lima")
>>> parse_when("2026-01-08", "--test-start", lima)   # midnight in Lima = 05:00 UTC
1767848400.0
>>> parse_when("2026-01-08T00:00:00Z", "--test-start", lima)
1767830400.0
>>> when(1767848400.0, lima)
'2026-01-08 00:00 America/Lima'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

from offline.errors import HistoryError
from stream.pipeline.validation import parse_time

__all__ = ["DEFAULT_TIMEZONE", "check_window", "day_from", "local_seconds", "parse_when", "time_zone",
           "when"]

#: The zone of naive times when ``--timezone`` is not given: the SBS's banks are in Peru.
DEFAULT_TIMEZONE = "America/Lima"


def time_zone(name: str) -> tzinfo:
    """``UTC`` or an IANA zone name (:class:`HistoryError` for an unknown one)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise HistoryError(f"unknown time zone {name!r} (use an IANA name like America/Lima)") from None


def parse_when(text: str | None, what: str, zone: tzinfo = UTC) -> float | None:
    """``--test-start``/``--test-end`` as epoch seconds: ISO date or date-time, naive ones in ``zone``.

    A bare date is midnight in ``zone``; epoch seconds are accepted as they are.
    """
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        dt = None
    value: str | float = text
    if dt is not None and dt.tzinfo is None:
        value = dt.replace(tzinfo=zone).isoformat()
    try:
        return parse_time(value, what)
    except ValueError:
        raise HistoryError(
            f"{what} {text!r}: use an ISO date or date-time, e.g. 2026-01-08 or 2026-01-08T12:00 "
            f"(read in {getattr(zone, 'key', zone)} without an offset) or 2026-01-08T12:00:00-05:00"
        ) from None


def when(ts: float, zone: tzinfo) -> str:
    """Epoch seconds as ``'YYYY-MM-DD HH:MM <zone>'`` (minutes: what a person compares)."""
    name = getattr(zone, "key", None) or str(zone)
    return f"{datetime.fromtimestamp(ts, tz=zone):%Y-%m-%d %H:%M} {name}"


def check_window(start: float | None, end: float | None, first: float, last: float, zone: tzinfo,
                 start_text: str | None = None, end_text: str | None = None) -> None:
    """Refuse a test window that holds no transaction of a file covering ``first``..``last``
    (:class:`HistoryError` naming the file's range), before any work on the file."""
    covers = f"the file covers {when(first, zone)} – {when(last, zone)}"
    if start is not None and end is not None and start >= end:
        raise HistoryError(f"--test-start {start_text} is not before --test-end {end_text}")
    if start is not None and start > last:
        raise HistoryError(
            f"--test-start {start_text} is after the history's last transaction ({when(last, zone)}); {covers}"
        )
    if end is not None and end <= first:
        raise HistoryError(
            f"--test-end {end_text} is at or before the history's first transaction ({when(first, zone)}); {covers}"
        )


def local_seconds(ts: np.ndarray, zone: tzinfo) -> np.ndarray:
    """Epoch seconds shifted by the zone's UTC offset at each instant, so that ``// 86400``
    gives the zone's calendar day (offsets looked up once per distinct hour: DST-safe, fast).

    >>> local_seconds(np.array([18000.0]), ZoneInfo("America/Lima")).tolist()  # 05:00 UTC = Lima midnight
    [0.0]
    """
    ts = np.asarray(ts, dtype=np.float64)
    if zone is UTC or not len(ts):
        return ts
    finite = np.isfinite(ts)
    hours = np.floor(np.where(finite, ts, 0.0) / 3600.0).astype(np.int64)
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array([
        (datetime.fromtimestamp(int(h) * 3600, tz=UTC).astimezone(zone).utcoffset() or timedelta()).total_seconds()
        for h in unique
    ])
    return ts + offsets[inverse]


def day_from(ts: float, zone: tzinfo) -> str:
    """The first calendar day in ``zone`` that starts at or after ``ts``, as ``YYYY-MM-DD``.

    >>> day_from(1767848400.0, ZoneInfo("America/Lima")), day_from(1767848401.0, ZoneInfo("America/Lima"))
    ('2026-01-08', '2026-01-09')
    """
    local = datetime.fromtimestamp(ts, tz=zone)
    day = local.date()
    if local.time() != datetime.min.time():
        day += timedelta(days=1)
    return day.isoformat()
