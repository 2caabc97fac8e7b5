"""Pseudonymisation on a real worker: with a key, no real account id, device id or IP address
goes past the worker's entry, and labels keyed by real ids still teach."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from offline.simulator import SimConfig, generate
from stream.dev.process import write_key_file
from tests.integration.conftest import consume, produce_json, wait_for

pytestmark = pytest.mark.slow


def test_alerts_state_and_checkpoints_hold_pseudonyms_and_labels_by_real_id_still_teach(
    settings, start_worker, tmp_path
):
    key_file = write_key_file(tmp_path / "pseudonym.key")  # a file: worker children get no secrets by env
    settings = settings.replace(
        alert_threshold=0.0, warmup_genuine=0, pseudonym_key_file=str(key_file), checkpoint_interval_s=1.0
    )
    worker = start_worker(settings)
    txs = [e.value for e in generate(SimConfig(seed=8, accounts=60, transactions=600)) if e.kind == "transaction"]
    real = {t["account_id"] for t in txs} | {t["device_id"] for t in txs if t.get("device_id")}
    real |= {t["ip_address"] for t in txs if t.get("ip_address")}
    produce_json(settings, settings.topic_transactions, txs)  # keyed by the real account ids
    alerts = consume(settings, settings.topic_alerts, lambda a: len(a) >= len(txs), 120, worker)
    assert {a["transaction_id"] for a in alerts} == {t["transaction_id"] for t in txs}
    text = orjson.dumps(alerts).decode()
    assert not [r for r in real if f'"{r}"' in text], "a real identifier reached an alert"
    assert all(a["account_id"].startswith("p_") for a in alerts)
    # a bank reports frauds by real account id: they reach the transaction's partition and teach
    labels = [
        {
            "transaction_id": t["transaction_id"],
            "account_id": t["account_id"],
            "is_fraud": True,
            "reported_at": t["timestamp"],
        }
        for t in txs[:50]
    ]
    produce_json(settings, settings.topic_labels, labels)
    wait_for(lambda: worker.metrics().get("kuntur_model_examples_seen", 0) >= 50, 90, "labels learned", worker)
    wait_for(lambda: (Path(settings.data_dir) / "model.ckpt").exists(), 30, "a checkpoint", worker)
    assert worker.stop() == 0
    blob = (Path(settings.data_dir) / "model.ckpt").read_bytes().decode("latin-1") + worker.log()
    assert not [r for r in real if r in blob], "a real identifier reached the checkpoint or the log"
