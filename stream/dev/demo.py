"""``kuntur demo``: everything on this machine, bounded, with a live and a final summary.

Starts the embedded broker on a free loopback port, one worker process and the
simulator; tails the alerts topic; scrapes the worker's /metrics for the live line.
The summary names where each figure comes from: ``*_vs_simulator_truth`` compares the
alerts with the simulator's ground truth; ``online_*_from_labels`` are the worker's own
figures from the labels it has received (``None``/"n/a" before the first label).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from config.settings import Settings
from offline.simulator import SimConfig, SimEvent, generate, produce
from stream.dev.broker import EmbeddedBroker, free_port
from stream.dev.process import is_ready, worker_env, write_key_file
from stream.dev.prom import histogram_quantile, scrape
from stream.kafka.admin import ensure_topics
from stream.kafka.reader import topic_reader

#: Malformed messages the demo sends on purpose, to show the dead-letter path.
BAD_MESSAGES = [
    b"{not json",
    b'{"transaction_id": "bad-1", "account_id": "x", "amount": -3, "timestamp": "2026-01-01T00:00:00-05:00"}',
    b'{"transaction_id": "bad-2", "account_id": "x", "amount": 10, "timestamp": "yesterday"}',
    b'{"transaction_id": "bad-3", "amount": 10, "timestamp": "2026-01-01T00:00:00-05:00"}',
]


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--transactions", type=int, default=20_000, help="transactions to simulate (default 20000)")
    p.add_argument(
        "--rate", type=float, default=500.0, help="transactions per wall second (default 500, 0 = as fast as possible)"
    )
    p.add_argument("--accounts", type=int, default=2_000, help="simulated accounts (default 2000)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument(
        "--label-horizon-hours",
        type=float,
        default=24.0,
        help="event-time hours after which unreported transactions teach 'genuine' (default 24 in the demo; "
        "production default is 7 days)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many wall seconds (default 300)")
    p.add_argument("--json", action="store_true", help="print only the final summary, as JSON")
    p.add_argument(
        "--exit", action="store_true",
        help="stop when the simulation ends (default when not on a terminal or with --json); otherwise the "
        "console stays open until Ctrl-C",
    )
    p.add_argument("--console-port", type=int, default=8765, help="the console's port (another if busy; default 8765)")


@dataclass
class Truth:
    """What the simulator produced: ground truth for the summary."""

    transactions: int = 0
    frauds: set[str] = field(default_factory=set)
    labels: int = 0

    def tap(self, events: Iterator[SimEvent]) -> Iterator[SimEvent]:
        for ev in events:
            if ev.kind == "transaction":
                self.transactions += 1
                if ev.is_fraud:
                    self.frauds.add(ev.value["transaction_id"])
            else:
                self.labels += 1
            yield ev


class AlertCollector(threading.Thread):
    """Consumes the alerts topic in the background; tells the model's alerts from the rules'."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.alerted: set[str] = set()
        self.by_model: set[str] = set()
        self.stop = threading.Event()
        self._consumer = topic_reader(settings, settings.topic_alerts)

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self._consumer.poll(0.2)
            value = msg.value() if msg is not None and not msg.error() else None
            if value is not None:
                alert = orjson.loads(value)
                self.alerted.add(alert["transaction_id"])
                if alert["score"] >= alert["threshold"] and not alert.get("rules"):
                    self.by_model.add(alert["transaction_id"])
        self._consumer.close()


def model_state(log_path: Path) -> str:
    """``"alerting"`` once the worker logged that its model's score alerts, else ``"warming up"``."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "warming up"
    return "alerting" if "model alerting:" in text else "warming up"


def ratio(value: float | None, labels: float) -> str:
    """An online figure for the live line: ``n/a`` until a label has arrived.

    >>> ratio(0.0, 0), ratio(0.345, 12)
    ('n/a', '0.34')
    """
    return "n/a" if not labels or value is None else f"{value:.2f}"


def run_demo(args: argparse.Namespace, base: Settings) -> int:
    out = sys.stderr if args.json else sys.stdout
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=out, flush=True))  # noqa: E731
    with (
        tempfile.TemporaryDirectory(prefix="kuntur-demo-") as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker,
    ):
        settings = base.replace(
            kafka_bootstrap=broker.bootstrap,
            data_dir=str(Path(tmp) / "worker"),
            web_port=free_port(),
            app_id="kuntur-demo",
            label_horizon_s=args.label_horizon_hours * 3600.0,
            checkpoint_interval_s=30.0,
        )
        if not (settings.model_key or settings.model_key_file):  # a throw-away key for a throw-away model
            settings = settings.replace(model_key_file=str(write_key_file(Path(tmp) / "model.key")))
        say(f"broker   Tansu on {broker.bootstrap}")
        ensure_topics(settings)
        log_path = Path(tmp) / "worker.log"
        started = time.time()
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                env=worker_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        metrics_url = f"http://127.0.0.1:{settings.web_port}/metrics"
        say(f"worker   pid {worker.pid}, metrics {metrics_url}, decisions POST {metrics_url[:-8]}/score")
        console: Console | None = None
        try:
            console = Console.start(settings, Path(tmp), args.console_port)
            say(f"console  {console.url}  sign in as {console.user} / {console.password} (investigator): open an "
                "alert, read why it alerted, confirm fraud or genuine")  # fmt: skip
            summary = _drive(args, settings, worker, metrics_url, started, say, log_path)
            if summary is not None and not args.json and not args.exit and sys.stdout.isatty():
                _report(summary, say)
                say(f"\nthe console stays open: {console.url}  (user {console.user}, password {console.password})"
                    "\nyour decisions go to the labels topic and teach the worker. Ctrl-C stops it all.")  # fmt: skip
                with contextlib.suppress(KeyboardInterrupt):
                    while worker.poll() is None and console.proc.poll() is None:
                        time.sleep(0.5)
                return 0
        finally:
            for proc in ([console.proc] if console is not None else []) + [worker]:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if summary is None:
            print(f"kuntur demo: the worker did not finish; its log:\n{log_path.read_text()[-4000:]}", file=sys.stderr)
            return 1
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        _report(summary, say)
    return 0


def _report(summary: dict[str, Any], say: Any) -> None:
    say("\nfinal summary")
    for key, value in summary.items():
        say(f"  {key:<34} {'n/a' if value is None else value}")
    say(
        "\n  *_vs_simulator_truth: the alerts against the simulator's ground truth (every fraud known at once);"
        "\n  online_*_from_labels: the worker's own figures from the labels it has received, within the label"
        "\n  horizon (frauds reported later count as false positives, so they read lower);"
        f"\n  dead_lettered includes the {len(BAD_MESSAGES)} malformed messages the demo sends on purpose."
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Console:
    """``kuntur console`` for the demo: its own store, one investigator with a random password."""

    proc: subprocess.Popen[bytes]
    url: str
    user: str
    password: str

    @classmethod
    def start(cls, settings: Settings, tmp: Path, port: int, timeout: float = 60.0) -> Console:
        port = port if _port_free(port) else free_port()
        db, user, password = tmp / "console.sqlite3", "demo", secrets.token_urlsafe(12)
        env = worker_env(settings.replace(console_port=port, console_db=str(db), console_host="127.0.0.1"))
        cli = [sys.executable, "-m", "stream.cli", "console"]
        subprocess.run([*cli, "--add-user", user, "--role", "investigator"], input=f"{password}\n".encode(),
                       env=env, check=True, capture_output=True)  # fmt: skip
        with open(tmp / "console.log", "wb") as log:
            proc = subprocess.Popen(cli, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + timeout
        while proc.poll() is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}health", timeout=1):  # noqa: S310 (our own http:// URL)
                    return cls(proc, url, user, password)
            except OSError:
                time.sleep(0.2)
        proc.kill()
        raise RuntimeError(f"the console did not start; its log:\n{(tmp / 'console.log').read_text()[-2000:]}")


def _drive(
    args: argparse.Namespace,
    settings: Settings,
    worker: subprocess.Popen[bytes],
    metrics_url: str,
    started: float,
    say: Any,
    log_path: Path,
) -> dict[str, Any] | None:
    base_url = metrics_url.rsplit("/", 1)[0]
    while not is_ready(base_url):
        if worker.poll() is not None or time.time() > started + args.timeout:
            return None
        time.sleep(0.2)
    ready_s = time.time() - started
    say(f"ready    worker processing after {ready_s:.1f}s")
    bad = Producer(settings.kafka_client_config())
    for i, raw in enumerate(BAD_MESSAGES):
        bad.produce(settings.topic_transactions, key=f"bad-{i}".encode(), value=raw)
    bad.flush(10)
    truth = Truth()
    collector = AlertCollector(settings)
    collector.start()
    cfg = SimConfig(seed=args.seed, accounts=args.accounts, transactions=args.transactions)
    counts: dict[str, int] = {}
    producer = threading.Thread(
        target=lambda: counts.update(
            produce(
                truth.tap(generate(cfg)),
                settings.kafka_client_config(),
                settings.topic_transactions,
                settings.topic_labels,
                rate=args.rate,
                progress=False,
            )
        ),
        daemon=True,
    )
    producer.start()
    say(f"simulate {args.transactions} transactions at {args.rate:.0f}/s ({args.accounts} accounts, seed {args.seed})")
    say(
        f"dlq      {len(BAD_MESSAGES)} malformed messages sent on purpose go to the dead-letter topic\n"
        f"model    warming up: alerts are the rules' until it has learned {settings.warmup_genuine} genuine examples "
        f"(a transaction teaches 'genuine' {args.label_horizon_hours:g} h of event time after it happened)"
    )
    state = "warming up"
    first_processed: float | None = None
    last: dict[str, Any] = {}
    processed_at: list[tuple[float, float]] = []
    deadline = started + args.timeout
    while time.time() < deadline:
        if worker.poll() is not None:
            return None
        time.sleep(1.0)
        m = scrape(metrics_url) or last
        last = m
        done = m.get("kuntur_transactions_total", 0.0)
        if done and first_processed is None:
            first_processed = time.time()
        processed_at.append((time.time(), done))
        rate = _rate(processed_at)
        labels = m.get("labels", 0)
        if state != "alerting" and model_state(log_path) == "alerting":
            state = "alerting"
            seen = m.get("kuntur_model_examples_seen", 0)
            say(f"model    alerting: learned {seen:.0f} examples; its score now alerts")
        say(
            f"  {done:>8.0f} tx  {rate:>7.0f} tx/s  alerts {len(collector.alerted):>5} "
            f"(model {len(collector.by_model):>4})  labels {labels:>5.0f}  dlq {m.get('dead_letters', 0):>3.0f}  "
            f"model {state}  online precision {ratio(m.get('kuntur_model_precision'), labels)} "
            f"recall {ratio(m.get('kuntur_model_recall'), labels)}"
        )
        if not producer.is_alive() and done >= truth.transactions and m.get("labels", 0) >= truth.labels:
            break
    time.sleep(1.0)  # let the last alerts arrive
    collector.stop.set()
    collector.join(5)
    m = scrape(metrics_url) or last
    tp = len(collector.alerted & truth.frauds)
    alerts = len(collector.alerted)
    elapsed = max(1e-9, (processed_at[-1][0] if processed_at else time.time()) - (first_processed or started))
    p50 = histogram_quantile(0.5, m.get("buckets", []))
    p99 = histogram_quantile(0.99, m.get("buckets", []))
    labels = int(m.get("labels", 0))
    return {
        "transactions": int(m.get("kuntur_transactions_total", 0)),
        "alerts": alerts,
        "alerts_by_model_score": len(collector.by_model),
        "model_state": model_state(log_path),
        "labels": labels,
        "dead_lettered": int(m.get("dead_letters", 0)),
        "dead_lettered_on_purpose": len(BAD_MESSAGES),
        "precision_vs_simulator_truth": round(tp / alerts, 4) if alerts else None,
        "recall_vs_simulator_truth": round(tp / len(truth.frauds), 4) if truth.frauds else None,
        "online_precision_from_labels": round(m.get("kuntur_model_precision", 0.0), 4) if labels else None,
        "online_recall_from_labels": round(m.get("kuntur_model_recall", 0.0), 4) if labels else None,
        "fraud_transactions": len(truth.frauds),
        "throughput": round(m.get("kuntur_transactions_total", 0) / elapsed, 1),
        "p50_latency_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "p99_latency_ms": round(p99 * 1000, 2) if p99 is not None else None,
        "startup_s": round(ready_s, 2),
        "model_version": m.get("model_version"),
        "examples_seen": int(m.get("kuntur_model_examples_seen", 0)),
        "offered_rate": args.rate,
    }


def _rate(points: list[tuple[float, float]], span: float = 5.0) -> float:
    if len(points) < 2:
        return 0.0
    t1, n1 = points[-1]
    t0, n0 = next(((t, n) for t, n in points if t >= t1 - span), points[0])
    with contextlib.suppress(ZeroDivisionError):
        return (n1 - n0) / (t1 - t0)
    return 0.0
