"""The ceiling: a Faust agent that reads each transaction and writes it to another topic.

Same Faust, same consumer/producer tuning as the Kuntur worker (``stream.batching.app_options``,
``stream.faust_patches``),
no validation, no state, no model: what one worker process can move at all on this
broker. Run by the throughput benchmark as a child process::

    python -m bench.passthrough --bootstrap 127.0.0.1:9092 --source transactions --sink copy --web-port 6070

Options for the transports benchmark (``bench.transports``): ``--transport confluent``
(Faust's librdkafka driver instead of aiokafka), ``--max-poll-records`` /
``--max-fetch-bytes`` / ``--buffer-maxsize`` (larger fetches and stream buffers) and
``--delivery direct|faust`` (``stream.faust_patches``' direct delivery, or Faust's own
per-message delivery; the worker's ``consumer_direct_delivery`` decides by default).

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


def build_app(
    bootstrap: str,
    app_id: str,
    source: str,
    sink: str,
    web_port: int,
    fetch_max_wait_ms: int,
    transport: str = "kafka",
    max_poll_records: int | None = None,
    max_fetch_bytes: int | None = None,
    buffer_maxsize: int | None = None,
    direct_delivery: bool = False,
) -> faust.App:
    settings = load_settings(
        overrides={"kafka_bootstrap": bootstrap, "app_id": app_id, "consumer_fetch_max_wait_ms": fetch_max_wait_ms}
    )
    faust_patches.install(settings.consumer_fetch_max_wait_ms, direct_delivery=direct_delivery)
    options = app_options(settings)
    options["broker"] = [f"{transport}://{h}" for h in settings.kafka_bootstrap_servers]
    if max_poll_records:
        options["broker_max_poll_records"] = max_poll_records
    if max_fetch_bytes:
        options["consumer_max_fetch_size"] = max_fetch_bytes
    if buffer_maxsize:
        options["stream_buffer_maxsize"] = buffer_maxsize
    app = faust.App(
        app_id,
        **options,
        topic_allow_declare=True,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=web_port,
        web_bind="127.0.0.1",
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
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
    p.add_argument("--transport", choices=("kafka", "confluent"), default="kafka", help="Faust driver (aiokafka)")
    p.add_argument("--max-poll-records", type=int, help="Faust broker_max_poll_records (default: unbounded)")
    p.add_argument("--max-fetch-bytes", type=int, help="Faust consumer_max_fetch_size, per partition (default 1 MiB)")
    p.add_argument("--buffer-maxsize", type=int, help="Faust stream_buffer_maxsize (default 4096)")
    p.add_argument(
        "--delivery",
        choices=("direct", "faust"),
        default="faust",
        help="faust: Faust's own per-message delivery (default, as the worker); direct: stream.faust_patches'",
    )
    p.add_argument("--loglevel", default="warning", help="Faust's log level (default warning)")
    args = p.parse_args(argv)
    from faust.worker import Worker

    app = build_app(
        args.bootstrap,
        args.app_id,
        args.source,
        args.sink,
        args.web_port,
        args.fetch_max_wait_ms,
        transport=args.transport,
        max_poll_records=args.max_poll_records,
        max_fetch_bytes=args.max_fetch_bytes,
        buffer_maxsize=args.buffer_maxsize,
        direct_delivery=args.delivery == "direct",
    )
    Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
