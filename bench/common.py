"""Shared machinery of the benchmarks: one broker, pre-produced traffic, worker processes,
progress polling, tables and result files.

Every benchmark is a plain function ``run(ctx, ...) -> dict`` that takes a
:class:`Context` (which owns the embedded broker and the pre-produced topic, so that
several benchmarks in one ``python -m bench`` run share them) and a ``main(argv)`` that
runs it alone. Figures are printed and written as JSON under ``bench/results/``; nothing
here asserts on a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.machine import cpu_seconds, load_average, machine, rss_mib
from config.settings import Settings, load_settings
from offline.simulator import SimConfig, SimEvent, generate, produce
from stream.dev.broker import EmbeddedBroker, free_port
from stream.dev.process import is_ready, worker_env, write_key_file
from stream.dev.prom import scrape
from stream.kafka.admin import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"


# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Size:
    """How big a run is. ``quick`` is for smoke runs, ``default`` is what ``make bench`` runs."""

    transactions: int = 200_000
    accounts: int = 20_000
    partitions: int = 4
    seed: int = 7
    latency_rates: tuple[float, ...] = (500.0, 1000.0, 2000.0)
    latency_seconds: float = 20.0
    profile_transactions: int = 50_000
    state_accounts: int = 1_000_000


SIZES = {
    "quick": Size(
        transactions=20_000,
        accounts=2_000,
        latency_rates=(500.0, 1000.0),
        latency_seconds=6.0,
        profile_transactions=5_000,
        state_accounts=50_000,
    ),
    "default": Size(),
}


def bench_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its module docstring's first paragraph as the
    description, the rest as the epilog, and the arguments every benchmark takes."""
    text = doc or ""
    p = argparse.ArgumentParser(
        prog=prog,
        description=text.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=text.split("\n\n", 1)[1] if "\n\n" in text else None,
    )
    add_common_arguments(p)
    return p


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smoke-test sizes (seconds, not minutes)")
    p.add_argument("--transactions", type=int, help="transactions pre-produced (default 200000, quick 20000)")
    p.add_argument("--accounts", type=int, help="simulated accounts (default 20000, quick 2000)")
    p.add_argument("--partitions", type=int, help="partitions of every topic (default 4)")
    p.add_argument("--seed", type=int, help="simulator seed (default 7)")
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="use this running Kafka instead of starting the embedded broker (loopback only)",
    )
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (worker and broker logs)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a worker setting for every run, e.g. --set consumer_fetch_max_wait_ms=5 (repeatable)",
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def size_from_args(args: argparse.Namespace) -> Size:
    base = SIZES["quick" if args.quick else "default"]
    changes = {
        name: getattr(args, name)
        for name in ("transactions", "accounts", "partitions", "seed")
        if getattr(args, name, None) is not None
    }
    return Size(**{**base.__dict__, **changes})


@contextlib.contextmanager
def apache_kafka(ctx: Context) -> Iterator[Context]:
    """A context like ``ctx`` on a one-node Apache Kafka 3.9 of its own (jars from ``make
    kafka``), its broker process known so that broker CPU is measured too."""
    from stream.dev.kafka import KafkaCluster

    ctx.say("starting an Apache Kafka node ...")
    with KafkaCluster(nodes=1) as cluster:
        node = cluster.nodes[0]
        with Context(ctx.size, cluster.bootstrap, say=ctx.say, keep=ctx.keep, overrides=ctx.overrides) as kctx:
            kctx.broker_pid = node._proc.pid if node._proc is not None else None
            yield kctx


# ----------------------------------------------------------------------------- processes


class Proc:
    """A child process (Kuntur worker or bench passthrough) with a web port to poll."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], web_port: int, log_path: Path, count_path: str
    ) -> None:
        self.name = name
        self.base_url = f"http://127.0.0.1:{web_port}"
        self.log_path = log_path
        self._count_path = count_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds until /ready answers 200."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if is_ready(self.base_url):
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log()}")

    def count(self) -> float:
        """Events processed so far (0 if the process does not answer)."""
        if self._count_path == "/metrics":
            return float(scrape(f"{self.base_url}/metrics").get("kuntur_transactions_total", 0.0))
        try:
            with urllib.request.urlopen(f"{self.base_url}{self._count_path}", timeout=2) as resp:  # noqa: S310
                return float(json.loads(resp.read())["count"])
        except (OSError, ValueError, KeyError):
            return 0.0

    def metrics(self) -> dict[str, Any]:
        return scrape(f"{self.base_url}/metrics")

    def rss_mib(self) -> float | None:
        return rss_mib(self.pid)

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: offsets committed, checkpoint, changelog seal), SIGKILL if stuck."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def start_worker(settings: Settings, log_path: Path, profile_to: Path | None = None) -> Proc:
    """A real ``kuntur worker`` process (optionally under cProfile, stats dumped on SIGTERM)."""
    ensure_topics(settings)
    cmd = [sys.executable]
    if profile_to is not None:
        cmd += ["-m", "cProfile", "-o", str(profile_to)]
    cmd += ["-m", "stream.cli", "worker"]
    return Proc("worker", cmd, worker_env(settings), settings.web_port, log_path, "/metrics")


# ----------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """(monotonic seconds, events processed) samples of one run."""

    expected: int
    samples: list[tuple[float, float]] = field(default_factory=list)

    def crossing(self, n: float) -> float | None:
        """Interpolated time at which the count first reached ``n``."""
        prev: tuple[float, float] | None = None
        for t, c in self.samples:
            if c >= n:
                if prev is None or c == prev[1]:
                    return t
                return prev[0] + (t - prev[0]) * (n - prev[1]) / (c - prev[1])
            prev = (t, c)
        return None

    @property
    def done(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0

    def rate(self, lo: float = 0.1, hi: float = 0.9) -> float | None:
        """Events/s between ``lo`` and ``hi`` of the expected count: steady state, no start-up or tail."""
        a, b = self.crossing(lo * self.expected), self.crossing(hi * self.expected)
        if a is None or b is None or b <= a:
            return None
        return (hi - lo) * self.expected / (b - a)

    def overall(self) -> float | None:
        """Events/s from the first processed event to the last: the headline rate.

        (Stages of a pipeline drain a backlog unevenly: the 10-90% rate of the last stage
        can be far from what the whole pipeline sustains.)"""
        first = next((t for t, c in self.samples if c > 0), None)
        last = self.crossing(self.done)
        if first is not None and last is not None and last <= first:
            # everything arrived between two samples (a small backlog drained in a few large
            # batches): from the last sample that saw nothing, a lower bound of the rate
            first = max((t for t, c in self.samples if c <= 0 and t < last), default=None)
        if first is None or last is None or last <= first:
            return None
        return self.done / (last - first)

    def milestones(self) -> dict[str, float | None]:
        """Seconds from the first processed event to 10/50/90/100% of the expected count."""
        first = next((t for t, c in self.samples if c > 0), None)
        out: dict[str, float | None] = {}
        for q in (0.1, 0.5, 0.9, 1.0):
            t = self.crossing(q * self.expected)
            out[f"{int(q * 100)}%"] = round(t - first, 2) if t is not None and first is not None else None
        return out

    def summary(self) -> dict[str, Any]:
        rate, overall = self.rate(), self.overall()
        return {
            "expected": self.expected,
            "processed": int(self.done),
            "events_per_s": round(overall, 1) if overall else None,
            "events_per_s_10_90": round(rate, 1) if rate else None,
            "seconds_to": self.milestones(),
        }


def follow(
    count: Callable[[], float],
    expected: int,
    alive: Callable[[], bool] = lambda: True,
    stall_s: float = 60.0,
    timeout: float = 1800.0,
    interval: float = 0.2,
) -> Progress:
    """Poll ``count`` until it reaches ``expected``, stalls for ``stall_s`` or the timeout passes."""
    progress = Progress(expected)
    began = last_change = time.monotonic()
    last = -1.0
    while True:
        now = time.monotonic()
        c = count()
        progress.samples.append((now, c))
        if c != last:
            last, last_change = c, now
        if c >= expected or now - began > timeout or not alive():
            return progress
        if c > 0 and now - last_change > stall_s:
            return progress
        time.sleep(interval)


# ----------------------------------------------------------------------------- context


class Context:
    """One benchmark session: the broker, a scratch directory and the pre-produced traffic."""

    def __init__(
        self,
        size: Size,
        bootstrap: str | None = None,
        say: Callable[[str], None] | None = None,
        keep: bool = False,
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.size = size
        self.keep = keep
        self.overrides = dict(overrides or {})
        self._bootstrap = bootstrap
        self.broker: EmbeddedBroker | None = None
        #: the external broker's process, when the caller started one (its CPU is measured too)
        self.broker_pid: int | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="kuntur-bench-"))
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.source: Settings | None = None
        self.source_counts: dict[str, int] = {}
        self.results: dict[str, Any] = {}
        self._children: list[Proc] = []

    def __enter__(self) -> Context:
        if self._bootstrap is None:
            self.broker = EmbeddedBroker(log_path=self.tmp / "tansu.log").start()
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        for child in self._children:
            if child.alive():
                child.proc.kill()
                child.proc.wait()
        if self.broker is not None:
            self.broker.stop()
        if self.keep:
            self.say(f"scratch directory kept: {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def fresh(self) -> Context:
        """A context for the same session with a broker of its own (the same external
        Kafka if one was given): the embedded broker slows down as it fills up."""
        ctx = Context(self.size, self._bootstrap, say=self.say, keep=self.keep, overrides=self.overrides)
        ctx.broker_pid = self.broker_pid
        return ctx

    def broker_cpu_seconds(self) -> float | None:
        proc = self.broker._proc if self.broker is not None else None
        pid = proc.pid if proc is not None else self.broker_pid
        return cpu_seconds(pid) if pid is not None else None

    @property
    def bootstrap(self) -> str:
        if self._bootstrap is not None:
            return self._bootstrap
        assert self.broker is not None, "use the context in a with block"
        return self.broker.bootstrap

    def key_file(self) -> Path:
        """One random model key for the run, outside every worker's data dir."""
        path = self.tmp / "model.key"
        return path if path.exists() else write_key_file(path)

    def settings(self, name: str, **changes: Any) -> Settings:
        """Settings with a unique app id, data dir, web port and output topics; input topics
        are the pre-produced ones unless ``changes`` say otherwise."""
        tag = f"{name}-{uuid.uuid4().hex[:6]}"
        base = {
            "kafka_bootstrap": self.bootstrap,
            "app_id": f"bench-{tag}",
            "topic_transactions": f"bench-tx-{tag}",
            "topic_labels": f"bench-labels-{tag}",
            "topic_alerts": f"bench-alerts-{tag}",
            "topic_scores": f"bench-scores-{tag}",
            "topic_dlq": f"bench-dlq-{tag}",
            "partitions": self.size.partitions,
            "data_dir": str(self.tmp / tag),
            "web_port": free_port(),
            "model_key_file": str(self.key_file()),
        }
        if self.source is not None:
            base["topic_transactions"] = self.source.topic_transactions
            base["topic_labels"] = self.source.topic_labels
        base.update(self.overrides)
        base.update(changes)
        return load_settings(overrides=base)

    def track(self, proc: Proc) -> Proc:
        self._children.append(proc)
        return proc

    def log_path(self, name: str) -> Path:
        return self.tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"

    def sim_config(self, transactions: int | None = None) -> SimConfig:
        s = self.size
        return SimConfig(seed=s.seed, accounts=s.accounts, transactions=transactions or s.transactions)

    def ensure_source(self) -> Settings:
        """Pre-produce the simulator's transactions (and its labels) once per session."""
        if self.source is not None:
            return self.source
        settings = self.settings("source")
        ensure_topics(settings)
        self.say(f"pre-producing {self.size.transactions:,} simulator transactions to {settings.topic_transactions}")
        events: list[SimEvent] = list(generate(self.sim_config()))
        began = time.monotonic()
        counts = produce(
            events,
            settings.kafka_client_config(),
            settings.topic_transactions,
            settings.topic_labels,
            rate=0.0,
            progress=False,
        )
        counts["seconds"] = round(time.monotonic() - began, 2)  # type: ignore[assignment]
        self.source, self.source_counts = settings, counts
        return settings


# ----------------------------------------------------------------------------- output


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    for r in cells:
        out.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or (text[0] in "-." and len(text) > 1))


def save(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>-<UTC time>.json`` and ``<name>-latest.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    body = json.dumps(data, indent=2, sort_keys=False, default=str)
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(body)
    (RESULTS_DIR / f"{name}-latest.json").write_text(body)
    return path


def code_version() -> dict[str, Any]:
    """The commit measured, and the runtime files that differed from it (a shared checkout)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.rstrip()

    dirty = git("status", "--short", "--", "stream", "features", "models", "config")
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "uncommitted": dirty.splitlines()}


def envelope(size: Size) -> dict[str, Any]:
    """The header every results file starts with."""
    return {
        "measured_at": datetime.now(tz=UTC).isoformat(),
        "code": code_version(),
        "machine": machine(),
        "size": {k: (list(v) if isinstance(v, tuple) else v) for k, v in size.__dict__.items()},
        "load_average_before": load_average(),
    }
