"""``kuntur alerts``: follow the alerts topic and print each alert for a human.

An alert reads as what an investigator needs first: when (local time, ``timezone``),
how much and in what currency, where (merchant, channel, nearest city) and why (score
against the threshold, rules, reasons). Several alerts on one account within
:data:`INCIDENT_GAP_S` of event time are one *incident*: its first alert is printed in
full, the next ones as one line each with the incident's running count.

``--from-beginning`` reads the alerts already on the topic, sorts them by event time
(partitions interleave otherwise) and prints the oldest first; ``--limit N`` stops after N.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import orjson
from confluent_kafka import Consumer

from config.settings import Settings
from stream.kafka.reader import topic_reader

#: Alerts on one account closer than this (event time) belong to one incident.
INCIDENT_GAP_S = 30 * 60.0

#: Cities the nearest-place lookup knows (name, latitude, longitude); beyond
#: :data:`PLACE_RADIUS_KM` of all of them the coordinates are shown instead.
CITIES: tuple[tuple[str, float, float], ...] = (
    ("Lima", -12.0464, -77.0428),
    ("Arequipa", -16.409, -71.5375),
    ("Trujillo", -8.112, -79.0288),
    ("Chiclayo", -6.7714, -79.8409),
    ("Piura", -5.1945, -80.6328),
    ("Cusco", -13.532, -71.9675),
    ("Iquitos", -3.7437, -73.2516),
    ("Huancayo", -12.0651, -75.2049),
    ("Tacna", -18.0146, -70.2536),
    ("Pucallpa", -8.3791, -74.5539),
    ("Chimbote", -9.0745, -78.5936),
    ("Ica", -14.0678, -75.7286),
    ("Juliaca", -15.4997, -70.1331),
    ("Cajamarca", -7.1638, -78.5003),
)
PLACE_RADIUS_KM = 60.0


def place(lat: float | None, lon: float | None) -> str:
    """The nearest known city, or the coordinates.

    >>> place(-12.05, -77.03), place(None, None), place(0.0, 0.0)
    ('Lima', '-', '0.000,0.000')
    """
    if lat is None or lon is None:
        return "-"
    import math

    def km(c: tuple[str, float, float]) -> float:
        dy = (c[1] - lat) * 111.2
        dx = (c[2] - lon) * 111.2 * math.cos(math.radians(lat))
        return math.hypot(dx, dy)

    city = min(CITIES, key=km)
    return city[0] if km(city) <= PLACE_RADIUS_KM else f"{lat:.3f},{lon:.3f}"


def money(amount: Any, currency: Any) -> str:
    """``PEN 1,234.50``; an alert without a currency is in PEN (the schema's default)."""
    if amount is None:
        return "-"
    return f"{currency or 'PEN'} {float(amount):,.2f}"


def local_time(event_time: str, tz: ZoneInfo) -> str:
    """ISO event time (any offset) -> ``2026-01-01 14:22:00 -05`` in ``tz``."""
    try:
        dt = datetime.fromisoformat(event_time)
    except (TypeError, ValueError):
        return str(event_time)
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %z")[:-2]


def format_alert(alert: dict[str, Any], tz: ZoneInfo | None = None) -> str:
    """One alert in full: a head line, where, rules, reasons."""
    tz = tz or ZoneInfo("America/Lima")
    threshold = alert.get("threshold")
    vs = f" (threshold {threshold:.2f})" if isinstance(threshold, int | float) else ""
    head = (
        f"{local_time(alert['event_time'], tz)}  {money(alert.get('amount'), alert.get('currency')):>14}  "
        f"account {alert['account_id']}  score {alert['score']:.3f}{vs}"
    )
    where = (
        f"    merchant {alert.get('merchant_id') or '-'}"
        f"{' (' + alert['merchant_category'] + ')' if alert.get('merchant_category') else ''}"
        f"  channel {alert.get('channel') or '-'}  place {place(alert.get('latitude'), alert.get('longitude'))}"
        f"  bank {alert.get('institution_id') or '-'}  tx {alert['transaction_id']}  model {alert['model_version']}"
    )
    lines = [head, where]
    if alert.get("rules"):
        lines.append(f"    rules: {', '.join(alert['rules'])}")
    for reason in alert.get("reasons", []):
        lines.append(f"    - {reason['text']}  ({reason['feature']}, contribution {reason['contribution']:+.3f})")
    return "\n".join(lines)


@dataclass
class _Incident:
    first_s: float
    last_s: float
    count: int


class Incidents:
    """Groups alerts per account: a new incident when the account's previous alert is more
    than ``gap_s`` of event time away."""

    def __init__(self, tz: ZoneInfo, gap_s: float = INCIDENT_GAP_S) -> None:
        self.tz = tz
        self.gap_s = gap_s
        self._open: dict[str, _Incident] = {}

    def format(self, alert: dict[str, Any]) -> str:
        try:
            t = datetime.fromisoformat(alert["event_time"]).timestamp()
        except (TypeError, ValueError):
            return format_alert(alert, self.tz)
        account = alert["account_id"]
        inc = self._open.get(account)
        if inc is None or abs(t - inc.last_s) > self.gap_s:
            self._open[account] = _Incident(t, t, 1)
            if len(self._open) > 100_000:  # bounded: forget the stalest accounts
                for old in sorted(self._open, key=lambda a: self._open[a].last_s)[:50_000]:
                    del self._open[old]
            return format_alert(alert, self.tz)
        inc.count += 1
        inc.last_s = max(inc.last_s, t)
        minutes = (inc.last_s - inc.first_s) / 60.0
        rules = f"  rules {','.join(alert['rules'])}" if alert.get("rules") else ""
        return (
            f"  └ incident {account}: alert {inc.count} within {minutes:.0f} min  "
            f"{local_time(alert['event_time'], self.tz)}  {money(alert.get('amount'), alert.get('currency'))}  "
            f"merchant {alert.get('merchant_id') or '-'}  channel {alert.get('channel') or '-'}  "
            f"score {alert['score']:.3f}{rules}"
        )


def _backlog(consumer: Consumer, timeout: float = 30.0) -> list[bytes]:
    """Every message already on the assigned partitions (up to their end offsets now)."""
    import time

    ends: dict[int, int] = {}
    for tp in consumer.assignment():
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        if high > low:
            ends[tp.partition] = high
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while ends and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        values.append(msg.value() or b"")
        partition, offset = msg.partition() or 0, msg.offset() or 0
        if offset + 1 >= ends.get(partition, 0):
            ends.pop(partition, None)
    return values


def _event_time(value: bytes) -> tuple[float, str]:
    try:
        alert = orjson.loads(value)
        return datetime.fromisoformat(alert["event_time"]).timestamp(), alert.get("transaction_id", "")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("inf"), ""


def tail_alerts(
    settings: Settings,
    from_beginning: bool = False,
    as_json: bool = False,
    limit: int = 0,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    topic = settings.topic_alerts
    tz = ZoneInfo(settings.timezone)
    consumer = topic_reader(
        settings,
        topic,
        from_beginning=from_beginning,
        timeout=None,
        on_wait=lambda: print(
            f"kuntur alerts: waiting for the alerts topic {topic!r} at {settings.kafka_bootstrap} "
            "(a worker creates it when it starts; Ctrl-C stops)",
            file=err,
            flush=True,
        ),
    )
    incidents = Incidents(tz)
    seen = 0

    def show(value: bytes) -> None:
        nonlocal seen
        if as_json:
            print(value.decode(errors="replace"), file=out, flush=True)
        else:
            try:
                print(incidents.format(orjson.loads(value)), file=out, flush=True)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                print(f"(unreadable alert: {value[:200]!r})", file=out, flush=True)
        seen += 1

    try:
        if from_beginning:
            for value in sorted(_backlog(consumer), key=_event_time):
                if limit and seen >= limit:
                    return 0
                show(value)
        if not limit or seen < limit:
            where = "new " if not from_beginning else "more "
            print(f"kuntur alerts: waiting for {where}alerts on {topic!r} (Ctrl-C stops)", file=err, flush=True)
        while not limit or seen < limit:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            show(msg.value() or b"")
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


__all__ = ["Incidents", "format_alert", "local_time", "money", "place", "tail_alerts"]
