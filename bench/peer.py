"""The peer: Kuntur's features and scoring as the shortest reasonable plain consumer loop.

What a user who skipped Faust would write: one ``confluent_kafka.Consumer`` subscribed to
the transactions and labels topics, ``consume()`` in batches of up to 10,000, orjson
decode and validation (``parse_transaction``/``parse_label``), the core's in-process
:class:`~stream.pipeline.runner.Runner` (AccountStage → MerchantStage → ScoreStage, the
very stages the worker runs) over dicts of state objects, and alerts produced with a
10 ms linger. Offsets are auto-committed.

It is a baseline, never a runtime: no changelogs (state is lost with the process), no
internal topics (one process holds every account and merchant, so it cannot scale out
by partition), no shared model, no dead-letter topic, no metrics beyond a counter. The
Kuntur worker does all of those; the ratio worker/peer says what they cost.

Started by the throughput benchmark as a child process, configured like a worker
(``KUNTUR_*`` variables: bootstrap, app id = consumer group, topics, model)::

    KUNTUR_KAFKA_BOOTSTRAP=127.0.0.1:9092 KUNTUR_APP_ID=peer python -m bench.peer --web-port 6071

``GET /count`` answers ``{"count": <transactions handled>}``; ``GET /ready`` answers 200
once partitions are assigned.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from config.settings import Settings, load_settings
from stream.errors import InvalidEvent
from stream.pipeline.alerts import build_alert
from stream.pipeline.runner import Runner
from stream.pipeline.stages import Pipeline, new_detector
from stream.pipeline.validation import limits_from, parse_label, parse_transaction

#: Most messages one ``consume()`` returns.
BATCH = 10_000


class Counter:
    """What the loop has done, read by the web thread."""

    def __init__(self) -> None:
        self.count = 0
        self.ready = False
        self.alerts = 0
        self.labels = 0
        self.invalid = 0


def serve(counter: Counter, port: int) -> ThreadingHTTPServer:
    """``/count`` and ``/ready`` on loopback, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body: dict[str, Any]
            if self.path == "/count":
                body, status = {"count": counter.count, "alerts": counter.alerts, "labels": counter.labels}, 200
            elif self.path == "/ready":
                body, status = {"ready": counter.ready}, 200 if counter.ready else 503
            else:
                body, status = {"error": "not found"}, 404
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(settings: Settings, counter: Counter, stop: threading.Event) -> None:
    """The loop: consume a batch, run each message through the core, produce alerts."""
    client = settings.kafka_client_config()
    consumer = Consumer(
        {
            **client,
            "group.id": settings.app_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "fetch.wait.max.ms": settings.consumer_fetch_max_wait_ms,
        }
    )
    producer = Producer({**client, "linger.ms": 10})
    runner = Runner(Pipeline(settings, new_detector(settings)))
    limits = limits_from(settings)
    tx_topic, labels_topic, alerts_topic = settings.topic_transactions, settings.topic_labels, settings.topic_alerts
    threshold = settings.alert_threshold

    def on_assign(_: Any, partitions: list[Any]) -> None:
        counter.ready = counter.ready or bool(partitions)

    consumer.subscribe([tx_topic, labels_topic], on_assign=on_assign)
    try:
        while not stop.is_set():
            batch = consumer.consume(BATCH, 0.1)
            now = time.time()
            for msg in batch:
                if msg.error() is not None:
                    continue
                try:
                    if msg.topic() == labels_topic:
                        runner.label(parse_label(msg.value(), now, limits))
                        counter.labels += 1
                        continue
                    tx = parse_transaction(msg.value(), now, limits)
                except InvalidEvent:
                    counter.invalid += 1
                    continue
                verdict = runner.transaction(tx)
                if verdict is not None and verdict.alert:
                    version = runner.pipeline.detector.model.version
                    alert = build_alert(tx, verdict.features, verdict.scored, threshold, version, verdict.rules, now)
                    producer.produce(alerts_topic, orjson.dumps(alert), tx.account_id.encode())
                    counter.alerts += 1
                counter.count += 1
            producer.poll(0)
    finally:
        producer.flush(10)
        consumer.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.split("\n\n")[0])
    p.add_argument("--web-port", type=int, required=True, help="port of /count and /ready")
    args = p.parse_args(argv)
    settings = load_settings(env=dict(os.environ))
    counter, stop = Counter(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = serve(counter, args.web_port)
    try:
        run(settings, counter, stop)
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
