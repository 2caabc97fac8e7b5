"""A real Prometheus server (Debian's package) scrapes a real worker processing simulator traffic.

Prometheus listens on a free loopback port, scrapes the worker every second and loads the
production alert rules; the test then asks its HTTP API what a dashboard or an operator would.
The worker logs in JSON (``KUNTUR_LOG_FORMAT=json``), and every line of its log must parse.
Without the ``prometheus`` binary the test skips locally, never in CI.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from offline.simulator import SimConfig, generate
from stream.dev.broker import free_port
from tests.integration.conftest import produce, produce_json, wait_for
from tests.unit.test_deploy import concrete_promql, dashboard_exprs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ALERT_RULES = ROOT / "config" / "prometheus" / "alerts.yml"
P99 = "histogram_quantile(0.99, sum(rate(kuntur_scoring_latency_seconds_bucket[30s])) by (le))"
P50 = "histogram_quantile(0.5, sum(rate(kuntur_scoring_latency_seconds_bucket[30s])) by (le))"


class Prometheus:
    """A ``prometheus`` server process scraping given targets every second."""

    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(ALERT_RULES)],
            "scrape_configs": [{"job_name": "kuntur", "static_configs": [{"targets": targets}]}],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.args = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ready, 60, "prometheus /-/ready")
        return self

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return data["result"]

    def scalar(self, promql: str) -> float | None:
        """The single value of an instant query, None while it has no result."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], Prometheus]]:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is missing in CI: `make tools` installs Debian's prometheus package")
        pytest.skip("prometheus not installed (make tools)")
    servers: list[Prometheus] = []

    def start(targets: list[str]) -> Prometheus:
        workdir = tmp_path / f"prometheus-{len(servers)}"
        workdir.mkdir()
        servers.append(Prometheus(binary, workdir, targets))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()


def sim_events(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    events = list(generate(SimConfig(seed=seed, accounts=300, transactions=n)))
    return [e.value for e in events if e.kind == "transaction"], [e.value for e in events if e.kind == "label"]


def test_real_prometheus_scrapes_a_worker_under_simulator_traffic(settings, start_worker, start_prometheus):
    # debug: Faust's own lines (debug detail at info) are in the output too, and must be JSON as well
    settings = settings.replace(log_format="json", log_level="debug", checkpoint_interval_s=2.0)
    worker = start_worker(settings)
    prom = start_prometheus([f"127.0.0.1:{settings.web_port}"])

    wait_for(lambda: prom.scalar('up{job="kuntur"}') == 1.0, 30, "prometheus to scrape the worker")
    wait_for(lambda: prom.scalar("kuntur_transactions_total") is not None, 30, "the first scraped sample")
    before = prom.scalar("kuntur_transactions_total")

    txs, labels = sim_events(2000, seed=11)
    half = len(txs) // 2
    produce_json(settings, settings.topic_transactions, txs[:half])
    time.sleep(3)  # two bursts a few scrapes apart: the rate and histogram have several points
    produce_json(settings, settings.topic_transactions, txs[half:])
    produce_json(settings, settings.topic_labels, labels)
    produce(settings, settings.topic_transactions, [(b"k", b"{not json")])
    wait_for(lambda: prom.scalar("kuntur_transactions_total") == len(txs), 90, "prometheus to see every transaction")
    after = prom.scalar("kuntur_transactions_total")
    assert before is not None and after is not None and after - before == len(txs)

    p99, p50 = prom.scalar(P99), prom.scalar(P50)
    assert p99 is not None and p50 is not None and math.isfinite(p99) and math.isfinite(p50)
    assert 0.0 < p50 <= p99 <= 30.0
    rate = prom.scalar("sum(rate(kuntur_transactions_total[30s]))")
    assert rate is not None and rate > 0
    wait_for(lambda: prom.scalar('sum(kuntur_dead_letters_total{reason="bad-json"})') == 1.0, 30, "the DLQ count")
    wait_for(lambda: prom.query("kuntur_consumer_lag_messages"), 30, "the consumer lag gauge")

    # The production alert rules load and evaluate against the worker's series.
    groups = prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert rules and all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    assert not prom.query('ALERTS{alertstate="firing"}')  # a healthy worker raises no alert

    # Every query of the Grafana dashboard evaluates; the ones about traffic return data.
    answered = {}
    for title, expr in dashboard_exprs():
        answered[(title, expr)] = len(prom.query(concrete_promql(expr)))
    empty = [key for key, n in answered.items() if n == 0]
    print(  # the observed values, for the record (pytest -s shows them)
        f"\nprometheus {prom.url}: kuntur_transactions_total {before:.0f} -> {after:.0f}; "
        f"rate30s {rate:.1f}/s; p50 {p50 * 1000:.1f} ms; p99 {p99 * 1000:.1f} ms; "
        f"{len(rules)} rules ok; {len(answered) - len(empty)}/{len(answered)} dashboard queries with data; "
        f"empty: {[t for t, _ in empty]}"
    )
    for title in ("Throughput (transactions scored/s)", "Scoring latency p50 / p99 (produce → score)", "Workers up"):
        assert all(n > 0 for (t, _), n in answered.items() if t == title), title

    assert worker.stop() == 0
    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    entries = [orjson.loads(line) for line in lines]  # every line of the worker's output is JSON
    assert all({"ts", "level", "logger", "message"} <= e.keys() for e in entries)
    loggers = {e["logger"] for e in entries}
    assert {"faust.worker", "kuntur"} <= loggers, loggers  # Faust's own lines and ours
    assert any(e["logger"] == "kuntur" and e["message"].startswith("checkpoint") for e in entries)
