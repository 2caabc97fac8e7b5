"""POST /score's logic without a broker: auth, the candidate partitions, the answer."""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import pytest
from aiokafka.partitioner import DefaultPartitioner

from config.errors import ConfigError
from config.settings import load_settings
from features.account import update_account
from features.transaction import Transaction
from stream.pipeline.stages import Pipeline, new_detector
from stream.score_api import ScoreApi, account_partitions, answer


def api(tmp_path, host: str, token: str | None) -> ScoreApi:
    overrides = {"web_host": host, "model": "logreg"}
    if token is not None:
        path = tmp_path / "token"
        path.write_text(token + "\n")
        overrides["score_token_file"] = str(path)
    s = load_settings(overrides=overrides)
    app = SimpleNamespace(conf=SimpleNamespace(canonical_url=f"http://{host}:6066"))
    table = SimpleNamespace(states={}, name="t")
    return ScoreApi(app, s, Pipeline(s, new_detector(s)), table, table, lambda: True)  # type: ignore[arg-type]


def test_loopback_needs_no_token_but_checks_one_if_set(tmp_path):
    assert api(tmp_path, "127.0.0.1", None).denied({}) is None
    secured = api(tmp_path, "127.0.0.1", "t" * 40)
    assert secured.denied({})[0] == 401
    assert secured.denied({"Authorization": "Bearer " + "u" * 40})[0] == 401
    assert secured.denied({"Authorization": "Bearer " + "t" * 40}) is None


def test_a_public_worker_without_a_token_refuses_and_says_why(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="kuntur"):
        open_api = api(tmp_path, "0.0.0.0", None)
    status, body = open_api.denied({"Authorization": "Bearer anything"})
    assert status == 403 and "no score_token" in body["detail"]
    assert "POST /score is off" in caplog.text
    assert api(tmp_path, "0.0.0.0", "k" * 40).denied({"Authorization": "Bearer " + "k" * 40}) is None


def test_a_short_token_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least 32"):
        api(tmp_path, "127.0.0.1", "short")


def test_candidate_partitions_are_kafkas_and_librdkafkas():
    for account in ("acc-0000038", "acc-1", "x" * 50):
        key = account.encode()
        murmur = DefaultPartitioner()(key, list(range(8)), list(range(8)))
        assert account_partitions(account, 8)[0] == murmur
        assert zlib.crc32(key) % 8 in account_partitions(account, 8)
    assert account_partitions("acc-1", 1) == [0]


def test_answer_body_and_duplicates():
    s = load_settings(overrides={"model": "logreg"})
    pipeline = Pipeline(s, new_detector(s))
    tx = Transaction("t1", "a1", ts=1_772_377_200.0, amount=50.0, merchant_id="m1")
    status, body = answer(pipeline, tx, None, None, "new", with_features=True)
    assert status == 200 and body["merchant_state"] == "new" and body["features"]["account_tx_count_1h"] == 1.0
    assert set(body) >= {"score", "alert", "threshold", "model_version", "rules", "reasons", "late"}
    seen = update_account(None, tx).state.to_bytes()
    assert answer(pipeline, tx, seen, None, "new")[0] == 409
