"""The agents' batch handlers, without Faust or a broker."""

from __future__ import annotations

import orjson

from config.settings import load_settings
from stream.agents import Handlers, Message
from stream.metrics import BoundedLabel, Metrics
from stream.pipeline.emits import Stage
from stream.pipeline.stages import Pipeline, new_detector

NOW = 1767225600.0


def handlers() -> Handlers:
    settings = load_settings(overrides={"model": "logreg", "warmup_genuine": 0, "alert_threshold": 0.0})
    h = Handlers(settings, Pipeline(settings, new_detector(settings)), Metrics(), partitions=4)
    h.clock = lambda: NOW
    return h


def msg(record: dict, key: bytes | None = None, offset: int = 0) -> Message:
    return Message(key or record["account_id"].encode(), orjson.dumps(record), "transactions", 0, offset, NOW)


def test_one_batch_flows_through_all_handlers_and_poison_never_moves_time():
    h = handlers()
    accounts: dict[str, bytes] = {}
    merchants: dict[str, bytes] = {}
    good = {"transaction_id": "t1", "account_id": "a", "amount": 5.0, "timestamp": NOW - 60, "merchant_id": "m"}
    poison = {**good, "transaction_id": "p", "timestamp": "9999-12-31T23:59:59-12:00"}
    sends = h.accounts([msg(good), msg(poison, offset=1)], accounts)
    (dlq,) = sends.messages[h.settings.topic_dlq]
    assert orjson.loads(dlq[1])["error"] == "bad-timestamp"
    assert set(accounts) == {"a"} and sends.written["accounts"] == {"a": 0}
    (raw,) = [v for _, v in sends.internal[Stage.MERCHANT].messages()]
    sends = h.merchants([Message(None, raw, "by-merchant", 0, 0, NOW)], merchants)
    assert set(merchants) == {"m"}
    (raw,) = [v for _, v in sends.internal[Stage.SCORE].messages()]
    sends, scored = h.scoring([Message(None, raw, "to-score", 0, 0, NOW)])
    assert scored == 1 and len(sends.messages[h.settings.topic_alerts]) == 1
    assert h.pipeline.detector.watermark == NOW - 60


def test_a_message_keyed_by_another_account_is_rekeyed_not_processed():
    h = handlers()
    accounts: dict[str, bytes] = {}
    record = {"transaction_id": "t1", "account_id": "a", "amount": 5.0, "timestamp": NOW}
    sends = h.accounts([msg(record, key=b"wrong")], accounts)
    assert [k for k, _, _ in sends.rekeyed] == [b"a"] and not accounts


def test_bounded_label_caps_series_and_rejects_non_identifiers():
    label = BoundedLabel(limit=2)
    assert [label(v) for v in ("BCP", "BBVA", "BCP", "Interbank", None, "a b")] == [
        "BCP",
        "BBVA",
        "BCP",
        "other",
        "unknown",
        "other",
    ]


def test_a_message_the_producer_could_not_deliver_is_counted_as_failed_not_sent():
    import asyncio

    from stream.tables import SendFailures

    metrics = Metrics()
    failures = SendFailures(metrics.send_failures)

    async def outcomes() -> None:
        loop = asyncio.get_running_loop()
        ok, bad = loop.create_future(), loop.create_future()
        ok.add_done_callback(failures.for_topic("alerts"))
        bad.add_done_callback(failures.for_topic("transactions-dlq"))
        ok.set_result("metadata")
        bad.set_exception(RuntimeError("MessageSizeTooLarge"))
        await asyncio.sleep(0)

    asyncio.run(outcomes())
    text = metrics.exposition().decode()
    assert 'kuntur_send_failures_total{topic="transactions-dlq"} 1.0' in text
    assert 'kuntur_send_failures_total{topic="alerts"} 0.0' in text


def test_with_a_pseudonym_key_identifiers_are_replaced_on_entry_and_events_rekeyed_by_pseudonym():
    settings = load_settings(
        overrides={"model": "logreg", "warmup_genuine": 0, "alert_threshold": 0.0, "pseudonym_key": "s" * 40}
    )
    h = Handlers(settings, Pipeline(settings, new_detector(settings)), Metrics(), partitions=4)
    h.clock = lambda: NOW
    record = {
        "transaction_id": "t1",
        "account_id": "acc-real",
        "amount": 5.0,
        "timestamp": NOW - 60,
        "device_id": "phone-1",
        "ip_address": "10.1.2.3",
        "counterparty_account": "acc-real",
    }
    # keyed by the real id: re-produced under the account's pseudonym, nothing stored
    accounts: dict[str, bytes] = {}
    sends = h.accounts([msg(record)], accounts)
    (key, _, _), = sends.rekeyed
    assert key.startswith(b"p_") and not accounts
    # keyed by the pseudonym: processed, and only pseudonyms go on
    sends = h.accounts([msg(record, key=key)], accounts)
    assert list(accounts) == [key.decode()]
    (raw,) = [v for _, v in sends.internal[Stage.MERCHANT].messages()]
    assert b"acc-real" not in raw and b"phone-1" not in raw and b"10.1.2.3" not in raw
    tx = orjson.loads(raw)[0]["tx"]
    assert tx["account_id"] == tx["counterparty_account"] == key.decode()
    # a bank's label keyed by the real id follows; the console's label (already a pseudonym) is kept
    label = {"transaction_id": "t1", "account_id": "acc-real", "is_fraud": True, "reported_at": NOW}
    sends = h.labels([Message(b"acc-real", orjson.dumps(label), "labels", 0, 0, NOW)])
    assert [k for k, _, _ in sends.relabeled] == [key]
    console_label = {**label, "account_id": key.decode()}
    sends = h.labels([Message(key, orjson.dumps(console_label), "labels", 0, 1, NOW)])
    assert not sends.relabeled
