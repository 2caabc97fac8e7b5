"""POST /score against two real workers on Apache Kafka: forwarded to the account's owner,
the stream's own answer, nothing changed, 400s with the dead-letter codes."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from offline.simulator import SimConfig, generate
from stream.dev.process import write_key_file
from stream.pipeline.validation import ERROR_CODES
from stream.score_api import SERVED_BY

from .conftest import another_worker, consume, produce_json, wait_for

pytestmark = pytest.mark.slow


def post(base_url: str, body: bytes, token: str | None) -> tuple[int, dict, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{base_url}/score", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read()), resp.headers.get(SERVED_BY, "")
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"{}"), err.headers.get(SERVED_BY, "")


def malformed(i: int) -> tuple[bytes, str]:
    good = {"transaction_id": f"bad-{i}", "account_id": "acc-x", "timestamp": 1767225600, "amount": 5.0}
    cases: list[tuple[bytes, str]] = [
        (b"{not json", "bad-json"),
        (b"", "bad-json"),
        (b"[1, 2]", "not-an-object"),
        (orjson.dumps({k: v for k, v in good.items() if k != "amount"}), "missing-field"),
        (orjson.dumps({**good, "amount": -3}), "bad-amount"),
        (orjson.dumps({**good, "timestamp": "yesterday"}), "bad-timestamp"),
        (orjson.dumps({**good, "account_id": 7}), "bad-type"),
        (orjson.dumps({**good, "account_id": "a" * 300}), "bad-value"),
        (b'{"pad": "' + b"x" * 70_000 + b'"}', "too-large"),
    ]
    return cases[i % len(cases)]


@pytest.mark.parametrize("settings", [4], indirect=True, ids=["4-partitions"])
def test_score_forwarded_to_the_owner_answers_as_the_stream_and_bad_requests_get_400(
    settings, start_worker, tmp_path
):
    token_file = write_key_file(tmp_path / "keys" / "score.token")
    token = token_file.read_text().strip()
    settings = settings.replace(score_token_file=str(token_file), emit_scores=True, warmup_genuine=0)
    txs = [e.value for e in generate(SimConfig(seed=5, accounts=200, transactions=1500)) if e.kind == "transaction"]
    history, rest = txs[:1200], txs[1200:]
    a = start_worker(another_worker(settings, tmp_path, "worker-a"))
    b = start_worker(another_worker(settings, tmp_path, "worker-b"))
    wait_for(lambda: a.ready()[0] == 200 and b.ready()[0] == 200, 60, "both workers share the partitions")
    produce_json(settings, settings.topic_transactions, history)
    consume(settings, settings.topic_scores, lambda r: len(r) >= len(history), 120, a)
    scored = lambda: sum(w.metrics().get("kuntur_transactions_total", 0) for w in (a, b))  # noqa: E731
    assert scored() == len(history)

    # probes: the next transaction of distinct accounts at distinct merchants (the stream will
    # score them with the states the what-if saw), sent to both workers
    probes, accounts, merchants = [], set(), set()
    known = {t["account_id"] for t in history}
    for t in rest:
        if t["account_id"] in accounts or t["account_id"] not in known or t.get("merchant_id") in merchants:
            continue
        accounts.add(t["account_id"])
        merchants.add(t.get("merchant_id"))
        probes.append(t)
        if len(probes) == 12:
            break
    answers, served = {}, set()
    for t in probes:
        body = orjson.dumps(t)
        sa, ja, by_a = post(a.base_url, body, token)
        sb, jb, by_b = post(b.base_url, body, token)
        assert sa == sb == 200, (ja, jb)
        assert ja == jb  # whichever worker is asked, the owner answers
        assert by_a == by_b
        served.add(by_a)
        answers[t["transaction_id"]] = ja
    assert len(served) == 2, "both workers owned some of the probes' accounts"
    assert {ans["merchant_state"] for ans in answers.values()} <= {"found", "none"}  # read from its owner
    assert scored() == len(history), "a what-if is not a scored transaction"
    assert post(a.base_url, orjson.dumps(probes[0]), None)[0] == 401
    assert post(a.base_url, orjson.dumps(history[-1]), token)[0] == 409  # already seen: not scored again

    # the stream, given the same transactions, scores what the what-ifs answered
    produce_json(settings, settings.topic_transactions, probes)
    records = consume(settings, settings.topic_scores, lambda r: len(r) >= len(history) + len(probes), 120, a)
    streamed = {r["transaction_id"]: r for r in records}
    for tid, ans in answers.items():
        assert streamed[tid]["score"] == pytest.approx(ans["score"], abs=1e-6), tid
        assert streamed[tid]["alert"] == ans["alert"]

    # 1,000 malformed requests: 400 with the dead-letter codes, and the worker keeps streaming
    codes = {}
    for i in range(1000):
        body, code = malformed(i)
        status, out, _ = post(a.base_url if i % 2 else b.base_url, body, token)
        assert status == 400, (code, status, out)
        assert out["error"] == code and out["error"] in ERROR_CODES
        codes[code] = codes.get(code, 0) + 1
    later = [t for t in rest if t["account_id"] not in accounts][:50]
    produce_json(settings, settings.topic_transactions, later)
    total = len(history) + len(probes) + len(later)
    wait_for(lambda: scored() == total, 90, "transactions produced after the bad requests are scored", a)
    assert a.ready()[0] == 200 and b.ready()[0] == 200
    print(f"\n/score: {len(probes)} probes answered alike by both workers; 1,000 malformed -> 400 {codes}")
