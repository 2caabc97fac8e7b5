"""The ceiling: a Faust agent that reads each transaction and writes it to another topic.

Same Faust, same consumer/producer tuning as the Kuntur worker (``stream.batching.app_options``,
``stream.faust_patches``),
no validation, no state, no model: what one worker process can move at all on this
broker. Run by the throughput benchmark as a child process::

    python -m bench.passthrough --bootstrap 127.0.0.1:9092 --source transactions --sink copy --web-port 6070

``GET /count`` answers ``{"count": <events forwarded>}``; ``GET /ready`` answers 200 once
partitions are assigned.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import faust

from config.settings import load_settings
from stream import faust_patches
from stream.batching import app_options


def build_app(bootstrap: str, app_id: str, source: str, sink: str, web_port: int, fetch_max_wait_ms: int) -> faust.App:
    settings = load_settings(
        overrides={"kafka_bootstrap": bootstrap, "app_id": app_id, "consumer_fetch_max_wait_ms": fetch_max_wait_ms}
    )
    faust_patches.install(settings.consumer_fetch_max_wait_ms)
    app = faust.App(
        app_id,
        **app_options(settings),
        topic_allow_declare=True,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=web_port,
        web_bind="127.0.0.1",
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    src = app.topic(source, **raw)
    dst = app.topic(sink, **raw)
    forwarded = [0]

    @app.agent(src, name="passthrough")
    async def passthrough(stream: Any) -> None:
        async for event in stream.events():
            await dst.send(key=event.message.key, value=event.value)
            forwarded[0] += 1

    @app.page("/count")
    async def count_view(web: Any, request: Any) -> Any:
        return web.json({"count": forwarded[0]})

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app._consumer is not None else 0
        return web.json({"ready": assigned > 0}, status=200 if assigned else 503)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.passthrough", description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap HOST:PORT")
    p.add_argument("--app-id", default="bench-passthrough", help="Faust app id (consumer group)")
    p.add_argument("--source", required=True, help="topic to read")
    p.add_argument("--sink", required=True, help="topic to write")
    p.add_argument("--web-port", type=int, required=True, help="port of /count and /ready")
    p.add_argument("--fetch-max-wait-ms", type=int, default=20, help="consumer fetch wait cap, as the worker's")
    args = p.parse_args(argv)
    from faust.worker import Worker

    app = build_app(args.bootstrap, args.app_id, args.source, args.sink, args.web_port, args.fetch_max_wait_ms)
    Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
