"""Per-account label-aware risk: the reported-fraud memory, its features, and how applied
fraud labels reach it (the in-process runner and the agents' handlers)."""

from __future__ import annotations

import orjson
import pytest

from config.settings import load_settings
from features.account import AccountState, record_account_fraud, update_account
from features.account.frauds import fraud_features
from features.catalogue import FEATURE_NAMES
from features.definitions import FRAUD_KNOWN_AFTER_S, MAX_FRAUDS
from features.transaction import Transaction
from models.detector import Detector
from models.scorer import FraudModel
from stream.agents import Handlers, Message
from stream.metrics import Metrics
from stream.pipeline.emits import AccountFraud, MerchantFraud, Stage
from stream.pipeline.runner import Runner
from stream.pipeline.stages import AccountStage, Pipeline, new_detector
from stream.pipeline.validation import Label, transaction_from_dict
from stream.wire import decode_account_entries

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def tx(tid: str, ts: float, account: str = "a1", **extra) -> Transaction:
    return Transaction(tid, account, ts, 20.0, **extra)


def account(*times: float) -> AccountState:
    """An account with a transaction at each of ``times``."""
    state = None
    for i, t in enumerate(times):
        state = update_account(state, tx(f"t{i}", t)).state
    assert state is not None
    return state


def features(state: AccountState | None, ts: float) -> tuple[float, float]:
    f = update_account(state, tx("probe", ts)).features
    return f["account_fraud_count_30d"], f["account_days_since_reported_fraud"]


# --- the memory ----------------------------------------------------------------------------


def test_no_reported_fraud_reads_zero_and_the_cap():
    assert features(None, T0) == (0.0, 30.0)
    assert features(account(T0), T0 + DAY) == (0.0, 30.0)


def test_counts_by_event_time_in_the_30_day_tiles_and_days_since_the_newest():
    state = account(T0, T0 + 2 * DAY, T0 + 3 * DAY)
    state = record_account_fraud(state, T0 + 2 * DAY, known_at=T0 + 3 * DAY)
    state = record_account_fraud(state, T0, known_at=T0 + 3 * DAY + 60)  # labels arrive in any order
    assert state is not None and state.frauds == (int(T0), int(T0 + 2 * DAY))
    assert state.fraud_known == (int(T0 + 3 * DAY + 60), int(T0 + 3 * DAY))
    assert features(state, T0 + 3.5 * DAY) == (2.0, 1.5)
    # day tile 29 back still counts, day tile 30 back does not (as every 30d window)
    assert features(state, T0 + 29 * DAY + 10)[0] == 2.0
    assert features(state, T0 + 30 * DAY + 10) == (1.0, 28.0 + 10 / DAY)
    assert features(state, T0 + 40 * DAY) == (0.0, 30.0)  # capped


def test_a_fraud_counts_from_an_hour_after_the_stream_reached_its_label():
    state = record_account_fraud(account(T0, T0 + DAY), T0, known_at=T0 + DAY)
    assert FRAUD_KNOWN_AFTER_S == 3600.0
    assert features(state, T0 + DAY + 3599) == (0.0, 30.0)
    assert features(state, T0 + DAY + 3600) == (1.0, 1 + 3600 / DAY)


def test_a_transaction_older_than_the_newest_fraud_reads_zero_days():
    state = record_account_fraud(account(T0, T0 + DAY), T0 + DAY, known_at=T0)  # (known_at as if long known)
    assert features(state, T0 + DAY - 600)[1] == 0.0


def test_the_memory_keeps_the_newest_frauds_whatever_the_account_did_since():
    state = account(*(T0 + i * 3600 for i in range(20)))
    for i in range(12):
        state = record_account_fraud(state, T0 + i * 3600, known_at=T0 + 20 * 3600)
    assert state is not None and len(state.frauds) == len(state.fraud_known) == MAX_FRAUDS
    assert state.frauds == tuple(int(T0 + i * 3600) for i in range(4, 12))
    assert record_account_fraud(state, T0, known_at=T0 + DAY) is state  # older than every fraud of a full memory
    later = update_account(state, tx("later", T0 + 31 * DAY)).state
    assert later.frauds == state.frauds and later.fraud_known == state.fraud_known  # transactions leave it alone
    assert features(later, T0 + 31 * DAY) == (0.0, 30.0)  # all 30 days old: out of the window, capped
    newer = record_account_fraud(later, T0 + 30 * DAY, known_at=T0 + 31 * DAY)
    assert newer is not None and newer.frauds == (*state.frauds[1:], int(T0 + 30 * DAY))
    # what the memory keeps depends on the records alone: the same records on an account that
    # has not seen its later transaction yet (a worker's state is ahead of evaluate's) agree
    behind = record_account_fraud(state, T0 + 30 * DAY, known_at=T0 + 31 * DAY)
    assert behind is not None and (behind.frauds, behind.fraud_known) == (newer.frauds, newer.fraud_known)


def test_an_account_without_state_has_nothing_to_attach_a_fraud_to():
    assert record_account_fraud(None, T0, T0) is None
    assert record_account_fraud(AccountState(), T0, T0) == AccountState()
    assert AccountStage.on_fraud(None, AccountFraud("a1", T0, T0)) is None


def test_the_memory_survives_the_codec_and_a_duplicate_transaction():
    state = account(T0, T0 + 100)
    for t in (T0 + 100, T0, T0 + 50.7):
        state = record_account_fraud(state, t, known_at=t + 1000.5)
    assert state is not None
    back = AccountState.from_bytes(state.to_bytes())
    assert back == state and back.frauds == (int(T0), int(T0 + 50), int(T0 + 100))
    assert back.fraud_known == (int(T0 + 1000), int(T0 + 1051), int(T0 + 1100))
    assert len(state.to_bytes()) == len(account(T0, T0 + 100).to_bytes()) + 3 * 8
    dup = update_account(state, tx("t1", T0 + 100))
    assert dup.duplicate and dup.state.frauds == state.frauds
    assert fraud_features(back.frauds, back.fraud_known, T0 + DAY, T0 + DAY) == (3.0, (DAY - 100) / DAY)


# --- applied labels only, each once ----------------------------------------------------------


def pipeline() -> Pipeline:
    settings = load_settings(overrides={"label_horizon_s": 7 * DAY, "warmup_genuine": 0})
    detector = Detector(FraudModel("logreg", feature_names=FEATURE_NAMES), threshold=0.5, label_horizon_s=7 * DAY)
    return Pipeline(settings, detector)


def score(run: Runner, tid: str, ts: float, account: str = "a1"):
    t = transaction_from_dict(
        {"transaction_id": tid, "account_id": account, "timestamp": ts, "amount": 20.0, "merchant_id": "m1"}
    )
    verdict = run.transaction(t)
    assert verdict is not None
    return verdict


def test_a_fraud_label_counts_only_once_applied_at_its_report_time_and_once():
    p = pipeline()
    run = Runner(p)
    score(run, "f1", T0)
    # reported a day later, but sent ahead of the stream: it waits for event time
    assert run.label(Label("f1", "a1", True, T0 + DAY)) is None
    v = score(run, "t2", T0 + DAY - 60)
    assert v.features["account_fraud_count_30d"] == 0.0  # before the report time: unknown
    assert v.frauds == []
    v = score(run, "t3", T0 + DAY + 5, account="other")  # the stream reaches (and passes) the report time
    assert [o.reason for o in v.labels] == ["learned"]
    assert v.frauds == [MerchantFraud("m1", T0), AccountFraud("a1", T0, T0 + DAY + 5)]
    assert run.accounts["a1"].frauds == (int(T0),)
    assert score(run, "t4", T0 + DAY + 60).features["account_fraud_count_30d"] == 0.0  # not an hour yet
    v = score(run, "t5", T0 + DAY + 3605)
    assert v.features["account_fraud_count_30d"] == 1.0
    assert v.features["account_days_since_reported_fraud"] == pytest.approx(1 + 3605 / DAY)
    # the same label again (a re-delivery): a duplicate, counted once
    assert run.label(Label("f1", "a1", True, T0 + DAY)).reason == "duplicate"
    assert score(run, "t6", T0 + 2 * DAY).features["account_fraud_count_30d"] == 1.0


def test_a_label_applied_at_once_reaches_the_account_before_its_next_transaction():
    p = pipeline()
    run = Runner(p)
    score(run, "f1", T0)
    score(run, "t2", T0 + 3600, account="other")
    outcome = run.label(Label("f1", "a1", True, T0 + 1800))
    assert outcome is not None and outcome.reason == "learned"
    assert run.accounts["a1"].fraud_known == (int(T0 + 3600),)  # known from where the stream is
    assert score(run, "t3", T0 + 7199).features["account_fraud_count_30d"] == 0.0
    assert score(run, "t4", T0 + 7200).features["account_fraud_count_30d"] == 1.0


def test_genuine_and_unknown_labels_emit_nothing_for_the_account():
    p = pipeline()
    run = Runner(p)
    score(run, "g1", T0)
    assert p.score.on_label(Label("g1", "a1", False, T0))[1] == []
    outcome, frauds = p.score.on_label(Label("nope", "a1", True, T0))
    assert outcome is not None and outcome.reason == "unknown-transaction" and frauds == []
    assert score(run, "t2", T0 + 60).features["account_fraud_count_30d"] == 0.0


# --- the worker's handlers ---------------------------------------------------------------------


def handlers() -> Handlers:
    settings = load_settings(overrides={"model": "logreg", "warmup_genuine": 0, "label_horizon_s": 7 * DAY})
    h = Handlers(settings, Pipeline(settings, new_detector(settings)), Metrics(), partitions=4)
    h.clock = lambda: T0 + 2 * DAY
    return h


def through(h: Handlers, record: dict, accounts: dict[str, bytes], partition: int = 2):
    """One transaction through the accounts, merchants and scoring handlers, on ``partition``."""
    raw = orjson.dumps(record)
    sends = h.accounts([Message(record["account_id"].encode(), raw, "transactions", partition, 0, T0)], accounts)
    (value,) = [v for _, v in sends.internal[Stage.MERCHANT].messages()]
    sends = h.merchants([Message(None, value, "by-merchant", 0, 0, T0)], {})
    ((p, value),) = sends.internal[Stage.SCORE].messages()
    assert p == partition
    sends, _ = h.scoring([Message(None, value, "to-score", partition, 0, T0)])
    return sends


def test_the_handlers_send_account_fraud_to_the_accounts_partition_and_apply_it():
    h = handlers()
    accounts: dict[str, bytes] = {}
    through(h, {"transaction_id": "f1", "account_id": "a1", "amount": 5.0, "timestamp": T0, "merchant_id": "m"},
            accounts)
    label = {"transaction_id": "f1", "account_id": "a1", "is_fraud": True, "reported_at": T0 + DAY}
    sends = h.labels([Message(b"a1", orjson.dumps(label), "labels", 2, 0, T0)])
    assert Stage.ACCOUNT not in sends.internal  # deferred: the stream has not reached its report time
    sends = through(h, {"transaction_id": "t2", "account_id": "b", "amount": 5.0, "timestamp": T0 + DAY}, accounts)
    ((partition, value),) = sends.internal[Stage.ACCOUNT].messages()
    assert partition == 2 and decode_account_entries(value)[0].emit == AccountFraud("a1", T0, T0 + DAY)
    before = accounts["a1"]
    out = h.account_frauds([Message(None, value, "by-account", 2, 0, T0)], accounts)
    assert out.written == {"accounts": {"a1": 2}} and accounts["a1"] != before
    assert AccountState.from_bytes(accounts["a1"]).frauds == (int(T0),)
    # applied again (an at-least-once re-delivery of the entry) or for an unknown account: no write
    entry = orjson.dumps([{"k": "fraud", "account_id": "zz", "event_ts": T0, "known_at": T0}])
    out = h.account_frauds([Message(None, entry, "by-account", 2, 1, T0)], accounts)
    assert out.written == {"accounts": {}} and "zz" not in accounts
    # a label for a transaction the stream has passed is applied at once, from the labels handler
    through(h, {"transaction_id": "f3", "account_id": "a1", "amount": 5.0, "timestamp": T0 + DAY + 5}, accounts)
    label = {"transaction_id": "f3", "account_id": "a1", "is_fraud": True, "reported_at": T0 + DAY + 5}
    sends = h.labels([Message(b"a1", orjson.dumps(label), "labels", 2, 1, T0)])
    ((partition, value),) = sends.internal[Stage.ACCOUNT].messages()
    assert partition == 2 and decode_account_entries(value)[0].emit == AccountFraud("a1", T0 + DAY + 5, T0 + DAY + 5)
