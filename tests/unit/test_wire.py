"""The internal wire format: entries encoded by name, batched per partition."""

from __future__ import annotations

import dataclasses

import orjson
from aiokafka.partitioner import DefaultPartitioner

from stream.pipeline.emits import AccountFraud, MerchantFraud, ToMerchant, ToScore
from stream.pipeline.validation import parse_transaction
from stream.wire import (
    MAX_MESSAGE_BYTES,
    AccountFraudEntry,
    FraudEntry,
    MerchantEntry,
    Outbox,
    Partitioner,
    ScoreEntry,
    decode_account_entries,
    decode_merchant_entries,
    decode_score_entries,
    encode_batch,
    split_encoded,
)

TX = parse_transaction(
    b'{"transaction_id":"t1","account_id":"a1","amount":12.5,"timestamp":"2026-03-01T10:00:00-05:00",'
    b'"merchant_id":"m-7","channel":"pos","latitude":-12.05,"longitude":-77.04}'
)


def test_partitioner_matches_kafka_default_partitioner():
    p = Partitioner(4)
    for key in ("m-1", "m-2", "ATM-LIM-0042", "ñandú"):
        assert p.of(key) == DefaultPartitioner()(key.encode(), [0, 1, 2, 3], [0, 1, 2, 3])
        assert p.of(key) == p(key.encode())


def test_stage_entries_round_trip():
    entries = [
        MerchantEntry(ToMerchant(TX, [1.0, 2.5]), 1700000000.123, 3),
        FraudEntry(MerchantFraud("m-7", 1700000001.0)),
    ]
    decoded = decode_merchant_entries(encode_batch(entries))
    first = decoded[0]
    assert isinstance(first, MerchantEntry)
    assert (first.emit.values, first.produced_at, first.partition) == ([1.0, 2.5], 1700000000.123, 3)
    assert first.emit.tx == TX
    assert decoded[1] == FraudEntry(MerchantFraud("m-7", 1700000001.0))
    (score,) = decode_score_entries(encode_batch([ScoreEntry(ToScore(TX, [0.5]), 1.0)]))
    assert score.produced_at == 1.0 and score.emit.tx == TX and score.emit.values == [0.5]
    frauds = [AccountFraudEntry(AccountFraud("a1", 1700000001.5, 1700003601.0))]
    frauds.append(AccountFraudEntry(AccountFraud("ñ-2", 3.0, 4.0)))
    assert decode_account_entries(encode_batch(frauds)) == frauds


def test_transaction_fields_travel_by_name():
    """Every field arrives under its own name: reordering the dataclass cannot shift values."""
    raw = orjson.loads(encode_batch([ScoreEntry(ToScore(TX, []), 0.0)]))[0]["tx"]
    for f in dataclasses.fields(TX):
        if f.name != "extra":
            assert raw[f.name] == getattr(TX, f.name)


def test_outbox_groups_by_partition_and_splits_large_batches():
    box = Outbox()
    for i in range(10):
        box.add(i % 2, FraudEntry(MerchantFraud(f"m-{i}", float(i))))
    messages = dict(box.messages())
    assert [e["event_ts"] for e in orjson.loads(messages[0])] == [0, 2, 4, 6, 8]
    big = [FraudEntry(MerchantFraud("x" * 1000, float(i))) for i in range(2000)]
    parts = split_encoded(big, limit=MAX_MESSAGE_BYTES)
    assert len(parts) > 1 and all(len(p) <= MAX_MESSAGE_BYTES for p in parts)
    assert [e["event_ts"] for p in parts for e in orjson.loads(p)] == [float(i) for i in range(2000)]
