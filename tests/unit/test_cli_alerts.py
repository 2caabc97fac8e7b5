"""``kuntur alerts`` formatting: what an investigator reads first, bursts as incidents."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from stream.tail import Incidents, format_alert, place

LIMA = ZoneInfo("America/Lima")


def _alert(tx: str, when: str, amount: float = 4168.28, **extra: object) -> dict[str, object]:
    return {
        "alert_id": "x", "transaction_id": tx, "account_id": "acc-1", "institution_id": "BCP",
        "event_time": when, "score": 0.91, "threshold": 0.5, "model_version": "gam.g3",
        "reasons": [{"feature": "account_amount_max_24h", "value": 1.0, "text": "largest amount", "contribution": 0.2}],
        "rules": ["card-testing"], "amount": amount, "currency": "USD", "merchant_id": "m-7",
        "merchant_category": "electronics", "channel": "online", "latitude": -12.05, "longitude": -77.03, **extra,
    }  # fmt: skip


def test_an_alert_shows_money_place_channel_local_time_and_threshold():
    text = format_alert(_alert("t1", "2026-01-01T19:22:00+00:00"), LIMA)
    head, where = text.splitlines()[:2]
    assert head.startswith("2026-01-01 14:22:00 -05")  # Lima local time
    assert "USD 4,168.28" in head and "score 0.910 (threshold 0.50)" in head and "account acc-1" in head
    assert "merchant m-7 (electronics)" in where and "channel online" in where and "place Lima" in where
    assert "rules: card-testing" in text


def test_an_alert_without_currency_is_pen_and_far_places_are_coordinates():
    text = format_alert(_alert("t1", "2026-01-01T00:00:00+00:00", currency=None, latitude=0.0, longitude=0.0))
    assert "PEN 4,168.28" in text and "place 0.000,0.000" in text
    assert place(-16.4, -71.5) == "Arequipa"


def test_a_burst_on_one_account_is_one_incident_with_a_count():
    incidents = Incidents(LIMA)
    first = incidents.format(_alert("t1", "2026-01-01T10:00:00+00:00"))
    second = incidents.format(_alert("t2", "2026-01-01T10:04:00+00:00", amount=3.5))
    third = incidents.format(_alert("t3", "2026-01-01T10:09:00+00:00"))
    later = incidents.format(_alert("t4", "2026-01-01T14:00:00+00:00"))
    assert len(first.splitlines()) > 2
    assert second.startswith("  └ incident acc-1: alert 2 within 4 min") and "USD 3.50" in second
    assert third.startswith("  └ incident acc-1: alert 3 within 9 min")
    assert not later.startswith("  └")  # hours later: a new incident, printed in full
