"""Faults on Apache Kafka with real worker processes: each test fails when something is lost.

Every test prints one ``RELIABILITY {...}`` line with its figures (docs/reliability.md
quotes them; ``pytest -s -k faults`` shows them).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from config.settings import Settings
from features.account import ACCOUNT_FEATURES
from features.catalogue import CATALOGUE
from stream.dev.broker import free_port
from stream.dev.process import worker_env
from stream.pipeline.runner import Runner
from stream.pipeline.stages import Pipeline, new_detector
from stream.pipeline.validation import transaction_from_dict

from .conftest import ROOT, WorkerProcess, another_worker, consume, produce_json, wait_for
from .faultkit import fault_settings, labels_for, report, transactions

pytestmark = pytest.mark.slow

HOUR = 3600.0


CATALOGUE_BY_NAME = {entry.name: entry for entry in CATALOGUE}
#: The account features a crash must not change: all but those computed from fraud labels
#: (the reported frauds the labels of these tests bring, which the in-process run below does
#: not replay; they depend on when each label was applied, not on re-deliveries).
STREAM_FEATURES = [name for name in ACCOUNT_FEATURES if "label.is_fraud" not in CATALOGUE_BY_NAME[name].source_fields]


def uninterrupted(settings: Settings, txs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Account features of every transaction, computed in process in one uninterrupted run."""
    run = Runner(Pipeline(settings, new_detector(settings)))
    out = {}
    for tx in txs:
        verdict = run.transaction(transaction_from_dict(tx))
        assert verdict is not None
        out[tx["transaction_id"]] = [verdict.features[name] for name in STREAM_FEATURES]
    return out


def ts(tx: dict[str, Any]) -> float:
    return transaction_from_dict(tx).ts


def account_features(alert: dict[str, Any]) -> list[float]:
    return [alert["features"][name] for name in STREAM_FEATURES]


_WINDOW_PREFIXES = tuple(f"account_{p}_" for p in ("tx_count", "small_tx_count", "amount_sum", "amount_mean",
                                                     "amount_std", "amount_max"))
#: positions of the window aggregates (count, sum, mean, std, max of 1h/24h/7d/30d; small count 1h)
WINDOW_FEATURES = [i for i, name in enumerate(STREAM_FEATURES) if name.startswith(_WINDOW_PREFIXES)]


def account_windows_checked(
    alerts: list[dict], txs: list[dict[str, Any]], expected: dict[str, list[float]], tolerance_s: float
) -> tuple[list[dict], list[dict]]:
    """The deliveries whose account features are not the uninterrupted run's (wrong), and the late
    re-deliveries among the others: features unlike the transaction's own, but window aggregates
    exactly those the uninterrupted run had after a later transaction of the same account, more
    than the tolerance newer (the restored state, which counted it once; a second count would
    match no state of the uninterrupted run)."""
    later: dict[str, list[tuple[float, list[float]]]] = {}  # account -> (ts, windows) in stream order
    for tx in txs:
        windows = [expected[tx["transaction_id"]][i] for i in WINDOW_FEATURES]
        later.setdefault(tx["account_id"], []).append((ts(tx), windows))
    by_tx = {tx["transaction_id"]: tx for tx in txs}
    wrong, late = [], []
    for alert in alerts:
        tx = by_tx[alert["transaction_id"]]
        got = account_features(alert)
        if got == pytest.approx(expected[tx["transaction_id"]], abs=1e-6):
            continue
        windows = [got[i] for i in WINDOW_FEATURES]
        newer = [w for t, w in later[tx["account_id"]] if t > ts(tx) + tolerance_s]
        (late if any(windows == pytest.approx(w, abs=1e-6) for w in newer) else wrong).append(alert)
    return wrong, late


def two_workers_scoring(settings: Settings, start_worker, tmp_path, txs: list[dict[str, Any]]):
    """Two workers sharing the partitions, once both are ready, with ``txs`` all alerted."""
    a = start_worker(another_worker(settings, tmp_path, "worker-a"))
    b = start_worker(another_worker(settings, tmp_path, "worker-b"))
    wait_for(lambda: a.ready()[0] == 200 and b.ready()[0] == 200, 60, "both workers share the partitions")
    produce_json(settings, settings.topic_transactions, txs)
    all_alerted(settings, {t["transaction_id"] for t in txs}, 120)
    return a, b


def all_alerted(settings: Settings, ids: set[str], timeout: float, worker: WorkerProcess | None = None) -> list[dict]:
    return consume(settings, settings.topic_alerts, lambda a: ids <= {x["transaction_id"] for x in a}, timeout, worker)


def test_sigkill_mid_stream_then_restart_loses_nothing(settings, start_worker):
    settings = fault_settings(settings)
    txs = transactions(3000, seed=21)
    first, mid, second = txs[:1000], txs[1000:2000], txs[2000:]
    worker = start_worker(settings)
    produce_json(settings, settings.topic_transactions, first)
    # labels: 200 for scored transactions (they teach), 100 reported ahead of the stream (deferred)
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total", 0) >= 600, 90, "600 scored", worker)
    early, ahead = first[:200], first[200:300]
    produce_json(settings, settings.topic_labels, labels_for(early, after_s=1.0))
    produce_json(settings, settings.topic_labels, labels_for(ahead, after_s=30 * 86400.0))
    wait_for(lambda: worker.label_outcomes().get("learned", 0) == 200, 60, "200 labels learned", worker)
    wait_for(lambda: worker.metrics().get("kuntur_deferred_labels") == 100, 60, "100 labels deferred", worker)
    # a checkpoint (every 2 s) holds the stream's event time: a label re-delivered after the
    # crash is then joined as before (with an older watermark it would wait a second time)
    time.sleep(3.0)
    produce_json(settings, settings.topic_transactions, mid)  # and SIGKILL while they are being processed
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total", 0) >= 1150, 60, "mid-stream", worker)
    scored_before = worker.metrics()["kuntur_transactions_total"]
    worker.kill()

    produce_json(settings, settings.topic_transactions, second)
    started = time.monotonic()
    restarted = start_worker(settings)
    ready_s = time.monotonic() - started
    m = restarted.metrics()
    # the model came back with every example it had learned (checkpoint + the training log)
    assert m["kuntur_model_examples_seen"] == 200
    assert m["kuntur_deferred_labels"] == 100  # so did the labels waiting for their time
    alerts = all_alerted(settings, {t["transaction_id"] for t in txs}, 180, restarted)
    expected = uninterrupted(settings, txs)
    # every delivery, re-deliveries included, sees the uninterrupted run's account windows; a
    # re-delivery older than the lateness tolerance (the backlog puts hours of event time in
    # the uncommitted input) is late: not counted again, it sees its account's newer windows
    wrong, late = account_windows_checked(alerts, txs, expected, settings.late_tolerance_s)
    by_id: dict[str, list[dict]] = {}
    for alert in alerts:
        by_id.setdefault(alert["alert_id"], []).append(alert)
    assert len(by_id) == len(txs)
    redelivered = len(alerts) - len(by_id)
    # pending transactions came back from the changelog: labels for ones scored before the crash teach
    wait_for(lambda: restarted.metrics().get("kuntur_pending_labels") == len(txs) - 200, 60, "pending", restarted)
    later = first[300:500]  # scored before the crash
    produce_json(settings, settings.topic_labels, labels_for(later, after_s=1.0))
    wait_for(lambda: restarted.label_outcomes().get("learned", 0) >= 200, 60, "labels after restart", restarted)
    # the deferred labels teach when the stream reaches their report time
    last = max(ts(t) for t in txs)
    probe = [{"transaction_id": "probe-1", "account_id": "acc-probe", "timestamp": last + 31 * 86400.0, "amount": 1.0}]
    produce_json(settings, settings.topic_transactions, probe)
    wait_for(lambda: restarted.label_outcomes().get("learned", 0) >= 300, 60, "deferred labels taught", restarted)
    outcomes = restarted.label_outcomes()
    assert outcomes.get("unknown-transaction", 0) == 0
    report(
        "sigkill-restart", sent=len(txs), scored=len(by_id), lost=len(txs) - len(by_id), redelivered=redelivered,
        scored_before_kill=scored_before, labels_sent=500, labels_lost=int(outcomes.get("unknown-transaction", 0)),
        restart_ready_s=round(ready_s, 1), duplicates_recognised=restarted.metrics().get("kuntur_duplicates_total", 0),
        late_redeliveries=len(late), deliveries_with_wrong_account_state=len(wrong),
    )
    # a re-delivered transaction the restored account state already counted is recognised (its id
    # is remembered while inside the lateness tolerance): no delivery sees it counted twice
    assert not wrong, f"{len(wrong)} of {len(alerts)} deliveries saw account windows unlike the uninterrupted run"
    assert len({a["transaction_id"] for a in late}) <= restarted.metrics().get("kuntur_late_events_total", 0)


def test_a_transaction_re_delivered_hours_later_is_a_duplicate_after_a_restart(settings, start_worker):
    """300+ transactions of one account over 4 hours of event time, a restart (the id memory comes
    back from the changelog), then the first again: inside a 6-hour tolerance it is a duplicate;
    on an account whose 300+ span 7 hours it is late. Neither is counted twice."""
    settings = fault_settings(settings).replace(late_tolerance_s=6 * HOUR)
    t0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC

    def history(account: str, span_s: float, n: int = 320) -> list[dict[str, Any]]:
        return [
            {"transaction_id": f"{account}-{i}", "account_id": account, "timestamp": t0 + span_s * i / n,
             "amount": round(5.0 + (i * 37) % 90, 2)}
            for i in range(n + 1)
        ]

    inside, outside = history("acc-4h", 4 * HOUR), history("acc-7h", 7 * HOUR)
    worker = start_worker(settings)
    produce_json(settings, settings.topic_transactions, inside + outside)
    all_alerted(settings, {t["transaction_id"] for t in inside + outside}, 120, worker)
    assert worker.stop(timeout=30) == 0  # the id memory must come back from the accounts changelog
    restarted = start_worker(settings)
    after = [{**h[-1], "transaction_id": f"{h[-1]['account_id']}-after", "timestamp": h[-1]["timestamp"] + 60.0}
             for h in (inside, outside)]
    produce_json(settings, settings.topic_transactions, [inside[0], outside[0], *after])
    alerts = all_alerted(settings, {t["transaction_id"] for t in after}, 120, restarted)
    m = restarted.metrics()
    deliveries = {tid: sum(a["transaction_id"] == tid for a in alerts) for tid in ("acc-4h-0", "acc-7h-0")}
    expected = uninterrupted(settings, [*inside, *outside, *after])  # without the re-deliveries
    got = {a["transaction_id"]: account_features(a) for a in alerts}
    count = STREAM_FEATURES.index("account_tx_count_24h")
    report(
        "re-delivered-hours-later", account_transactions=len(inside), event_time_span_h=[4.0, 7.0],
        tolerance_h=6.0, duplicates_recognised=m.get("kuntur_duplicates_total", 0),
        late_events=m.get("kuntur_late_events_total", 0), deliveries_of_the_redelivered=deliveries,
        tx_count_24h_after=[got[t["transaction_id"]][count] for t in after],
    )
    assert m.get("kuntur_duplicates_total", 0) == 1  # the one 4 hours old, 320 transactions later
    assert deliveries == {"acc-4h-0": 1, "acc-7h-0": 2}  # not scored again / late: scored, not counted
    assert m.get("kuntur_late_events_total", 0) == 1
    for t in after:  # the windows after the re-delivery are the uninterrupted run's: not inflated
        assert got[t["transaction_id"]] == pytest.approx(expected[t["transaction_id"]], abs=1e-6)
        assert got[t["transaction_id"]][count] == len(inside) + 1


@pytest.mark.parametrize("settings", [4], indirect=True, ids=["4-partitions"])
def test_two_workers_kill_one_survivor_takes_over_with_learning_state(settings, start_worker, tmp_path):
    settings = fault_settings(settings)
    txs = transactions(2000, seed=22, accounts=200)
    a, b = two_workers_scoring(settings, start_worker, tmp_path, txs)
    ahead = txs[:100]
    produce_json(settings, settings.topic_labels, labels_for(ahead, after_s=30 * 86400.0))
    deferred = lambda: sum(w.metrics().get("kuntur_deferred_labels", 0) for w in (a, b))  # noqa: E731
    wait_for(lambda: deferred() == 100, 60, "labels deferred on both workers")
    assert a.metrics()["kuntur_deferred_labels"] > 0 and b.metrics()["kuntur_deferred_labels"] > 0
    b_scored = b.metrics()["kuntur_transactions_total"]
    assert 0 < b_scored < len(txs)  # b really held partitions

    b.kill()
    killed = time.monotonic()
    last = max(ts(t) for t in txs)
    probe = [
        {"transaction_id": f"probe-{i}", "account_id": f"acc-probe-{i}", "timestamp": last + 60.0, "amount": 1.0}
        for i in range(40)
    ]
    produce_json(settings, settings.topic_transactions, probe)
    all_alerted(settings, {p["transaction_id"] for p in probe}, 120, a)
    takeover_s = time.monotonic() - killed
    assert a.metrics()["kuntur_deferred_labels"] == 100  # b's deferred labels moved to a
    # every label for a transaction b scored now reaches a, which holds its features
    labels = labels_for(txs[100:], after_s=1.0)
    produce_json(settings, settings.topic_labels, labels)
    wait_for(lambda: a.label_outcomes().get("learned", 0) >= len(labels), 90, "all labels learned on a", a)
    # and the deferred ones teach when a's stream reaches their time
    produce_json(settings, settings.topic_transactions, [{**probe[0], "transaction_id": "probe-late",
                                                          "timestamp": last + 31 * 86400.0}])
    wait_for(lambda: a.label_outcomes().get("learned", 0) >= len(labels) + 100, 60, "deferred labels taught", a)
    outcomes = a.label_outcomes()
    assert outcomes.get("unknown-transaction", 0) == 0
    report(
        "two-workers-kill-one", sent=len(txs) + len(probe), scored_by_killed=int(b_scored), lost=0,
        labels_sent=len(labels) + 100, labels_learned=int(outcomes.get("learned", 0)),
        labels_lost=int(outcomes.get("unknown-transaction", 0)), takeover_s=round(takeover_s, 1),
    )


def test_broker_stopped_and_restarted_under_a_running_worker(settings, start_worker, own_kafka):
    settings = fault_settings(settings.replace(kafka_bootstrap=own_kafka.bootstrap))
    txs = transactions(1200, seed=23)
    worker = start_worker(settings)
    produce_json(settings, settings.topic_transactions, txs[:600])
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == 600, 90, "first half", worker)
    log_before = worker.log_path.read_text(errors="replace").count("\n")

    node = own_kafka.nodes[0]
    node.stop()
    stopped = time.monotonic()
    wait_for(lambda: worker.ready()[0] == 503, 30, "/ready 503 while the broker is down", worker)
    not_ready_s = time.monotonic() - stopped
    assert worker.metrics()["kuntur_broker_up"] == 0
    time.sleep(15.0)  # an outage of ~20 s: the clients retry all along
    node.start()
    own_kafka.wait_ready(60)
    wait_for(lambda: worker.ready()[0] == 200, 60, "/ready 200 when the broker is back", worker)
    outage_s = time.monotonic() - stopped
    lines = worker.log_path.read_text(errors="replace").splitlines()[log_before:]
    assert sum("is unreachable" in line for line in lines) == 1, "\n".join(lines[-40:])
    assert len(lines) < 150, f"{len(lines)} log lines in a {outage_s:.0f}s outage:\n" + "\n".join(lines[-60:])

    produce_json(settings, settings.topic_transactions, txs[600:])
    alerts = all_alerted(settings, {t["transaction_id"] for t in txs}, 120, worker)
    distinct = {a["transaction_id"] for a in alerts}

    node.stop()  # and SIGTERM while it is down: honoured within seconds
    wait_for(lambda: worker.ready()[0] == 503, 30, "/ready 503", worker)
    assert worker.proc is not None
    term = time.monotonic()
    code = worker.stop(timeout=30)
    stop_s = time.monotonic() - term
    assert code == 0 and stop_s < 20
    report(
        "broker-restart", sent=len(txs), scored=len(distinct), lost=len(txs) - len(distinct),
        redelivered=len(alerts) - len(distinct), outage_s=round(outage_s, 1), ready_503_after_s=round(not_ready_s, 1),
        log_lines_during_outage=len(lines), sigterm_with_broker_down_s=round(stop_s, 1),
    )


def test_a_worker_gives_up_after_the_deadline_without_a_broker(settings, start_worker, own_kafka):
    settings = fault_settings(settings.replace(kafka_bootstrap=own_kafka.bootstrap)).replace(
        broker_unreachable_exit_s=8.0
    )
    worker = start_worker(settings)
    own_kafka.nodes[0].stop()
    stopped = time.monotonic()
    assert worker.proc is not None
    code = worker.proc.wait(timeout=60)
    waited = time.monotonic() - stopped
    assert code == 3, worker.log()
    assert "giving up (exit 3)" in worker.log()
    report("broker-gone-while-running", deadline_s=8.0, exited_after_s=round(waited, 1), exit_code=code)


def test_a_worker_started_without_a_broker_exits_with_one_readable_line(settings, tmp_path):
    settings = settings.replace(kafka_bootstrap=f"127.0.0.1:{free_port()}", broker_unreachable_exit_s=4.0)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"], env=worker_env(settings), cwd=ROOT,
        capture_output=True, timeout=60, check=False,
    )
    took = time.monotonic() - started
    out = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
    assert done.returncode == 3, out
    assert len(out) <= 3 and "Traceback" not in "\n".join(out), out
    assert out[-1].startswith("kuntur: error: cannot reach Kafka at 127.0.0.1:"), out
    assert took < 30
    report("no-broker-at-start", deadline_s=4.0, exited_after_s=round(took, 1), exit_code=done.returncode,
           output_lines=len(out))

