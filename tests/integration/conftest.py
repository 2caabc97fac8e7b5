"""Integration fixtures: one real Apache Kafka 3.9 (KRaft) broker per session, real
worker processes.

Each test gets its own topic names and consumer group (app id), so tests share the
broker without seeing each other's data. The broker's jars come from ``make kafka``
(stream/dev/kafka.py); its logs are kept under pytest's temporary directory when a test
failed. The fault tests that stop brokers start their own (``kafka_cluster``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from config.settings import Settings, load_settings
from stream.dev.broker import EmbeddedBroker, free_port
from stream.dev.kafka import KafkaCluster
from stream.dev.process import is_ready, worker_env, write_key_file
from stream.dev.prom import scrape
from stream.kafka.admin import ensure_topics
from stream.kafka.reader import topic_reader

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster | EmbeddedBroker]:
    """Apache Kafka; ``TEST_BROKER=tansu`` runs the suite on the embedded broker instead."""
    if os.environ.get("TEST_BROKER", "kafka") == "tansu":
        with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as tansu:
            yield tansu
        return
    with KafkaCluster(nodes=1, data_dir=tmp_path_factory.mktemp("kafka")) as kafka:
        yield kafka


@pytest.fixture
def settings(broker: KafkaCluster | EmbeddedBroker, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings with a unique app id and topic set for this test."""
    tag = uuid.uuid4().hex[:8]
    key_file = write_key_file(tmp_path / "keys" / "model.key")
    partitions = getattr(request, "param", 2)
    return load_settings(
        overrides={
            "kafka_bootstrap": broker.bootstrap,
            "app_id": f"kt-{tag}",
            "model_key_file": str(key_file),
            "topic_transactions": f"tx-{tag}",
            "topic_labels": f"labels-{tag}",
            "topic_alerts": f"alerts-{tag}",
            "topic_scores": f"scores-{tag}",
            "topic_dlq": f"dlq-{tag}",
            "partitions": partitions,
            "data_dir": str(tmp_path / "worker"),
            "web_port": free_port(),
            "checkpoint_interval_s": 5.0,
        }
    )


class WorkerProcess:
    """A real `kuntur worker` subprocess."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{settings.web_port}"
        self.url = f"{self.base_url}/metrics"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        ensure_topics(self.settings)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                env=worker_env(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_for(lambda: is_ready(self.base_url), 90, "worker /ready (partitions assigned, tables recovered)", self)
        return self

    def metrics(self) -> dict[str, Any]:
        return scrape(self.url)

    def label_outcomes(self) -> dict[str, float]:
        """``kuntur_labels_total`` by outcome (learned, unknown-transaction, deferred, ...)."""
        out: dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            if line.startswith("kuntur_labels_total{"):
                outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                out[outcome] = float(line.rsplit(" ", 1)[1])
        return out

    def ready(self) -> tuple[int, dict[str, Any]]:
        """``/ready``'s status and body (status 0 when the worker does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/ready", timeout=2) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read() or b"{}")
        except OSError:
            return 0, {}

    def kill(self) -> None:
        """SIGKILL: a crash — no checkpoint, no commit, no changelog seal."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url, timeout=5) as resp:
            return resp.read().decode()

    def stop(self, timeout: float = 60) -> int:
        """Graceful stop (SIGTERM): offsets committed, model checkpointed."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"worker did not stop within {timeout}s:\n{self.log()}") from None
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def wait_for(cond: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if worker is not None and worker.proc is not None and worker.proc.poll() is not None:
            raise AssertionError(f"worker exited with {worker.proc.returncode} waiting for {what}:\n{worker.log()}")
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"\n{worker.log()}" if worker else ""))


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaCluster]:
    """A broker of this test's own, for tests that stop it."""
    with KafkaCluster(nodes=1, data_dir=tmp_path / "own-kafka") as kafka:
        yield kafka


def another_worker(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """The same app (consumer group, topics) with its own data directory and web port."""
    return settings.replace(data_dir=str(tmp_path / name), web_port=free_port())


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(w)
        return w

    yield start
    for w in workers:
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def produce(
    settings: Settings,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    extra: dict[str, Any] | None = None,
) -> int:
    p = Producer({**settings.kafka_client_config(), **(extra or {})})
    n = 0
    for key, value in messages:
        p.produce(topic, key=key, value=value)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    return n


def produce_json(settings: Settings, topic: str, records: Iterable[dict[str, Any]]) -> int:
    return produce(settings, topic, ((r["account_id"].encode(), orjson.dumps(r)) for r in records))


def consume(
    settings: Settings,
    topic: str,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float,
    worker: WorkerProcess | None = None,
) -> list[dict[str, Any]]:
    """Read a topic from the beginning until ``until(records)`` holds."""
    c = topic_reader(settings, topic)
    out: list[dict[str, Any]] = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                out.append(orjson.loads(msg.value()))
                continue
            if until(out):
                return out
            if worker is not None and worker.proc is not None and worker.proc.poll() is not None:
                raise AssertionError(f"worker exited:\n{worker.log()}")
    finally:
        c.close()
    raise AssertionError(f"timed out reading {topic}: got {len(out)} records" + (f"\n{worker.log()}" if worker else ""))


os.environ.setdefault("PYTHONUNBUFFERED", "1")
