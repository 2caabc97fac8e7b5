"""No secret and no account id where it does not belong.

Every command runs at debug log level (text and JSON logs) with a known Kafka password and
a known model key in its environment; the test then searches everything a person or a
scraper can see: stdout, stderr, the worker's log, /metrics, the data dir (checkpoint and
its sidecar), the alerts, error output of a command that fails. Account ids must never be
Prometheus label values.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from offline.simulator import SimConfig, generate
from stream.dev.process import is_ready, worker_env
from stream.kafka.admin import ensure_topics
from tests.integration.conftest import consume, produce_json, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Zq81-never-print-me"  # noqa: S105 - a marker, not a credential
MODEL_KEY = "mk-" + "7f3a" * 12


def secret_env(settings, log_format: str) -> dict[str, str]:
    env = worker_env(settings)
    env.pop("KUNTUR_MODEL_KEY_FILE", None)
    env.update(
        KUNTUR_KAFKA_SASL_PASSWORD=PASSWORD,
        KUNTUR_KAFKA_SASL_USERNAME="kuntur-user",
        KUNTUR_MODEL_KEY=MODEL_KEY,
        KUNTUR_LOG_LEVEL="debug",
        KUNTUR_LOG_FORMAT=log_format,
    )
    return env


def kuntur(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", *args], env=env, capture_output=True, timeout=timeout, cwd=ROOT
    )
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


def assert_clean(where: str, text: str) -> None:
    assert PASSWORD not in text, f"the Kafka password appears in {where}"
    assert MODEL_KEY not in text, f"the model key appears in {where}"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_leaks_from_any_command_and_no_account_id_is_a_metric_label(settings, tmp_path, log_format):
    settings = settings.replace(alert_threshold=0.0, warmup_genuine=0, checkpoint_interval_s=1.0)
    env = secret_env(settings, log_format)
    ensure_topics(settings)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        base_url = f"http://127.0.0.1:{settings.web_port}"
        wait_for(lambda: is_ready(base_url), 90, "worker ready")
        txs = [e.value for e in generate(SimConfig(seed=4, accounts=50, transactions=300)) if e.kind == "transaction"]
        accounts = {t["account_id"] for t in txs}
        produce_json(settings, settings.topic_transactions, txs)
        alerts = consume(settings, settings.topic_alerts, lambda a: len(a) >= len(txs), 120)
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        label_values = {
            v for family in text_string_to_metric_families(metrics) for s in family.samples for v in s.labels.values()
        }
        assert not accounts & label_values, "account ids used as Prometheus label values"
        assert_clean("/metrics", metrics)
        assert_clean("alerts", str(alerts))
        wait_for(lambda: (Path(settings.data_dir) / "model.ckpt").exists(), 30, "a checkpoint")
    finally:
        worker.terminate()
        worker.wait(60)
    assert_clean("the worker's log", log_path.read_text(errors="replace"))
    for path in Path(settings.data_dir).rglob("*"):
        if path.is_file():
            assert_clean(str(path), path.read_bytes().decode("latin-1"))

    history = tmp_path / "history.csv"
    outputs = {
        "simulate --out": kuntur(env, "simulate", "--out", str(history), "--transactions", "2000", "--no-progress"),
        "simulate": kuntur(env, "simulate", "--transactions", "100", "--rate", "0", "--no-progress"),
        "evaluate": kuntur(env, "evaluate", str(history), "--no-progress", "--report", str(tmp_path / "r.html")),
        "replay": kuntur(env, "replay", str(history), "--speed", "max", "--no-progress"),
        "alerts": kuntur(env, "alerts", "--from-beginning", "--limit", "3"),
        "features": kuntur(env, "features", "--format", "json"),
        "worker --help": kuntur(env, "worker", "--help"),
        # a failure prints its error, never the secret behind it
        "worker, short key": kuntur({**env, "KUNTUR_MODEL_KEY": "short"}, "worker"),
    }
    for name, text in outputs.items():
        assert_clean(f"`kuntur {name}`", text)
    assert_clean("the HTML report", (tmp_path / "r.html").read_text())
    assert os.environ.get("KUNTUR_KAFKA_SASL_PASSWORD") != PASSWORD
