"""Fuzz a real worker on a real broker: over 10,000 hostile messages mixed with good ones.

Every hostile message is built so that its dead-letter code is known from how it was made
(hypothesis-generated JSON values, raw random bytes, and valid records with one field
broken). The test matches each dead letter to the message it came from by (topic,
partition, offset) and checks its code; every good transaction is scored; the worker never
restarts; the dead-letter counter equals the number of hostile messages sent.
(Whether a duplicate re-sent long after its original is recognised is the reliability
suite's concern; here it must only never be dead-lettered.)
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from offline.simulator import SimConfig, generate
from tests.integration.conftest import consume

pytestmark = pytest.mark.slow

NOW_ISO = "2026-01-01T10:00:00-05:00"
BASE = {"transaction_id": "x", "account_id": "acc-fuzz", "amount": 12.5, "timestamp": NOW_ISO}
LABEL = {"transaction_id": "x", "account_id": "acc-fuzz", "is_fraud": True, "reported_at": NOW_ISO}

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)


def collect(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of a strategy, drawn by hypothesis (derandomized: the same every run)."""
    out: list[Any] = []

    @hsettings(max_examples=n, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(value: Any) -> None:
        out.append(value)

    draw()
    return out


def hostile_transactions(rng: random.Random) -> list[tuple[bytes | None, bytes, str]]:
    """(key, value, expected dead-letter code)."""
    out: list[tuple[bytes | None, bytes, str]] = []
    # JSON that is not an object
    for value in collect(json_values.filter(lambda v: not isinstance(v, dict)), 1500):
        out.append((b"k", orjson.dumps(value), "not-an-object"))
    # objects without the required fields
    objects = collect(st.dictionaries(st.text(max_size=12), json_values, max_size=6), 1500)
    for value in objects:
        if "transaction_id" not in value or value["transaction_id"] is None:
            out.append((b"k", orjson.dumps(value), "missing-field"))
    # raw bytes: invalid UTF-8 or a control character first, never JSON
    for i in range(2000):
        noise = rng.randbytes(rng.randint(0, 200))
        out.append((None if i % 3 else b"", (b"\xff" if i % 2 else b"\x00") + noise, "bad-json"))
    # JSON-ish text: NaN/Infinity tokens, truncated objects, deep nesting
    for i in range(1000):
        text = rng.choice(['{"amount": NaN}', '{"amount": Infinity}', '{"a": ', "[" * 10_000, '{"a":1,}'])
        out.append((b"k", f"{text}{' ' * (i % 3)}".encode(), "bad-json"))
    # one broken field in an otherwise valid transaction
    broken: list[tuple[dict[str, Any], str]] = [
        ({"amount": "12.5"}, "bad-type"),
        ({"amount": [1]}, "bad-type"),
        ({"amount": True}, "bad-type"),
        ({"amount": -1.0}, "bad-amount"),
        ({"amount": 1e308}, "bad-amount"),
        ({"timestamp": "9999-12-31T23:59:59-12:00"}, "bad-timestamp"),
        ({"timestamp": "1999-01-01T00:00:00"}, "bad-timestamp"),  # no zone
        ({"timestamp": "yesterday"}, "bad-timestamp"),
        ({"timestamp": -5}, "bad-timestamp"),
        ({"timestamp": 1767225600000}, "bad-timestamp"),  # milliseconds
        ({"account_id": 42}, "bad-type"),
        ({"account_id": ""}, "bad-type"),
        ({"merchant_id": 7}, "bad-type"),
        ({"latitude": 200.0, "longitude": 0.0}, "bad-value"),
        ({"device_id": "d" * 300}, "bad-value"),
        ({"account_balance": "lots"}, "bad-type"),
    ]
    for i in range(4000):
        change, code = broken[i % len(broken)]
        record = {**BASE, "transaction_id": f"bad-{i}", **change}
        out.append((b"acc-fuzz", orjson.dumps(record), code))
    for i in range(5):  # 1 MB strings
        out.append(
            (
                b"acc-fuzz",
                orjson.dumps({**BASE, "transaction_id": f"mb-{i}", "device_id": "d" * 1_000_000}),
                "too-large",
            )
        )
    return out


def hostile_labels(rng: random.Random) -> list[tuple[bytes | None, bytes, str]]:
    out: list[tuple[bytes | None, bytes, str]] = []
    broken = [
        ({"is_fraud": "yes"}, "bad-type"),
        ({"is_fraud": None}, "missing-field"),
        ({"reported_at": "soon"}, "bad-timestamp"),
        ({"reported_at": "9999-01-01T00:00:00Z"}, "bad-timestamp"),
        ({"transaction_id": ["t"]}, "bad-type"),
    ]
    for i in range(500):
        change, code = broken[i % len(broken)]
        out.append((b"acc-fuzz", orjson.dumps({**LABEL, **change}), code))
    for _ in range(300):
        out.append((b"k", rng.randbytes(rng.randint(1, 50)) + b"\xff", "bad-json"))
    return out


class Sender:
    """Produces and remembers where each hostile message landed."""

    def __init__(self, settings: Any) -> None:
        self.producer = Producer({**settings.kafka_client_config(), "message.max.bytes": 2_000_000, "linger.ms": 5})
        self.expected: dict[tuple[str, int, int], str] = {}
        self.failed: list[str] = []

    def send(self, topic: str, key: bytes | None, value: bytes, code: str | None = None) -> None:
        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                self.failed.append(str(err))
            elif code is not None:
                self.expected[(msg.topic(), msg.partition(), msg.offset())] = code

        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(60) == 0
        assert not self.failed, self.failed[:3]


def test_ten_thousand_hostile_messages_change_nothing(settings, start_worker):
    settings = settings.replace(partitions=4, emit_scores=True)
    worker = start_worker(settings)
    pid = worker.proc.pid
    rng = random.Random(2026)
    bad_tx, bad_labels = hostile_transactions(rng), hostile_labels(rng)
    good = [e.value for e in generate(SimConfig(seed=21, accounts=500, transactions=5000)) if e.kind == "transaction"]
    assert len(bad_tx) + len(bad_labels) >= 10_000
    sender = Sender(settings)
    good_iter = iter(good)
    for i, (key, value, code) in enumerate(bad_tx):
        sender.send(settings.topic_transactions, key, value, code)
        if i % 2 == 0:
            tx = next(good_iter, None)
            if tx is not None:
                extra = {"unknown_field": {"nested": [1, 2]}} if i % 10 == 0 else {}
                key_for = b"" if i % 14 == 0 else (b"x" * 50_000 if i % 22 == 0 else tx["account_id"].encode())
                sender.send(settings.topic_transactions, key_for, orjson.dumps({**tx, **extra}))
    for tx in good_iter:
        sender.send(settings.topic_transactions, tx["account_id"].encode(), orjson.dumps(tx))
    for tx in good[:200]:  # duplicates: counted once, never dead-lettered
        sender.send(settings.topic_transactions, tx["account_id"].encode(), orjson.dumps(tx))
    for key, value, code in bad_labels:
        sender.send(settings.topic_labels, key, value, code)
    sender.flush()
    sent_bad = len(sender.expected)
    assert sent_bad == len(bad_tx) + len(bad_labels)

    dlq = consume(settings, settings.topic_dlq, lambda d: len(d) >= sent_bad, 300, worker)
    assert len(dlq) == sent_bad
    got = {(d["topic"], d["partition"], d["offset"]): d["error"] for d in dlq}
    wrong = {where: (got.get(where), code) for where, code in sender.expected.items() if got.get(where) != code}
    assert not wrong, list(wrong.items())[:10]
    print("dead-lettered by code:", dict(Counter(got.values())))

    good_ids = {tx["transaction_id"] for tx in good}
    scores = consume(
        settings, settings.topic_scores, lambda r: {x["transaction_id"] for x in r} >= good_ids, 300, worker
    )
    assert {x["transaction_id"] for x in scores} == good_ids  # every good one scored, nothing else
    metrics = worker.metrics()
    assert metrics["dead_letters"] == sent_bad
    assert worker.proc.poll() is None and worker.proc.pid == pid
