"""The Quix Streams peer: the same core stages as ``bench.peer``, run by a Quix Streams app.

Two streaming dataframes (transactions, labels) in one ``quixstreams.Application``;
each message goes through the core's :class:`~stream.pipeline.runner.Runner` (dict state,
as in ``bench.peer``) and alerts go to the alerts topic with ``to_topic``. Like the
plain peer it is a baseline only: Quix's own state stores and changelogs are not used.

Quix Streams is not a Kuntur dependency, and it pins ``confluent-kafka<2.13`` (the
project uses a newer one), so it lives in a side environment that sees the project's
venv behind its own packages (git-ignored ``.cache/``)::

    python3.11 -m venv .cache/quix-venv
    echo "$PWD/.venv/lib/python3.11/site-packages" > .cache/quix-venv/lib/python3.11/site-packages/zz-kuntur.pth
    .cache/quix-venv/bin/pip install quixstreams

The throughput benchmark runs this module with that interpreter when it exists
(``--quix-python`` to choose another) and skips it, saying why, when quixstreams cannot
be imported there. Configured like a worker (``KUNTUR_*`` variables)::

    .cache/quix-venv/bin/python -m bench.peer_quix --web-port 6072 --state-dir /tmp/quix
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The side environment described above.
DEFAULT_PYTHON = ROOT / ".cache" / "quix-venv" / "bin" / "python"


def interpreter(python: str | None = None) -> str:
    """The Python to run the Quix peer with: ``python``, the side venv if present, or ours."""
    if python:
        return python
    return str(DEFAULT_PYTHON) if DEFAULT_PYTHON.exists() else sys.executable


def probe(python: str) -> tuple[str | None, str | None]:
    """(quixstreams version, None) if the Quix peer can run with ``python``, else (None, why not)."""
    probe = "import quixstreams, stream.pipeline.runner; print(quixstreams.__version__)"
    try:
        done = subprocess.run(
            [python, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run {python}: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"quixstreams not importable with {python} ({last}); see bench/peer_quix.py to install it"
    return done.stdout.strip().splitlines()[-1], None


def run(web_port: int, state_dir: str) -> None:
    from quixstreams import Application

    from bench.peer import Counter, serve
    from config.settings import load_settings
    from stream.errors import InvalidEvent
    from stream.pipeline.alerts import build_alert
    from stream.pipeline.runner import Runner
    from stream.pipeline.stages import Pipeline, new_detector
    from stream.pipeline.validation import limits_from, parse_label, parse_transaction

    settings = load_settings(env=dict(os.environ))
    counter = Counter()
    counter.ready = True  # rates are timed from the first transaction handled, not from readiness
    server = serve(counter, web_port)
    runner = Runner(Pipeline(settings, new_detector(settings)))
    limits = limits_from(settings)
    app = Application(
        broker_address=settings.kafka_bootstrap,
        consumer_group=settings.app_id,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        use_changelog_topics=False,
        producer_extra_config={"linger.ms": 10},
        consumer_extra_config={"fetch.wait.max.ms": settings.consumer_fetch_max_wait_ms},
    )
    raw = {"key_deserializer": "bytes", "value_deserializer": "bytes"}
    transactions = app.topic(settings.topic_transactions, **raw)
    labels = app.topic(settings.topic_labels, **raw)
    alerts = app.topic(settings.topic_alerts, key_serializer="str", value_serializer="json")
    threshold = settings.alert_threshold

    def on_transaction(value: bytes) -> dict[str, Any] | None:
        try:
            tx = parse_transaction(value, time.time(), limits)
        except InvalidEvent:
            counter.invalid += 1
            return None
        verdict = runner.transaction(tx)
        counter.count += 1
        if verdict is None or not verdict.alert:
            return None
        counter.alerts += 1
        version = runner.pipeline.detector.model.version
        return build_alert(tx, verdict.features, verdict.scored, threshold, version, verdict.rules, time.time())

    def on_label(value: bytes) -> None:
        try:
            runner.label(parse_label(value, time.time(), limits))
            counter.labels += 1
        except InvalidEvent:
            counter.invalid += 1

    sdf: Any = app.dataframe(transactions).apply(on_transaction).filter(lambda out: out is not None)
    sdf.to_topic(alerts, key=lambda alert: alert["account_id"])
    app.dataframe(labels).update(on_label)
    try:
        app.run()
    finally:
        server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer_quix", description=__doc__.split("\n\n")[0])
    p.add_argument("--web-port", type=int, required=True, help="port of /count and /ready")
    p.add_argument("--state-dir", required=True, help="Quix's state directory (unused by the peer, but required)")
    args = p.parse_args(argv)
    try:
        import quixstreams  # noqa: F401
    except ImportError:
        print("bench.peer_quix skipped: quixstreams is not installed (see this module's docstring)", file=sys.stderr)
        return 0
    run(args.web_port, args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
