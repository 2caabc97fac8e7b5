"""``POST /score`` latency under a steady request load while the stream runs.

Two workers share the partitions and score paced simulator traffic (``--stream-rate``,
tx/s). Meanwhile one client sends ``--request-rate`` requests per second, alternating
``POST /score`` (a simulated transaction under a new id, so the account and merchant
have history) and ``GET /health`` (the baseline: the same web server, HTTP client and
event loop, no work), each to a worker chosen at random over kept-alive connections.
A ``/score`` answered by the worker asked is *direct*; one answered by the other worker
(the ``X-Kuntur-Served-By`` header) was *forwarded* to the account's owner. The client
sends one request at a time: beyond what it can keep up with, the achieved rate is lower. The figures
are client-side wall-clock times; ratios against ``/health`` of the same run make them
comparable across machines. Nothing is asserted.

    python -m bench.score_api                         # 20 s, 500 tx/s stream, 40 req/s
    python -m bench.score_api --seconds 60 --request-rate 200
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from bench.common import (
    Context,
    add_common_arguments,
    envelope,
    load_average,
    overrides_from_args,
    save,
    size_from_args,
    start_worker,
    table,
)
from offline.simulator import SimConfig, generate, produce
from stream.dev.broker import free_port
from stream.score_api import SERVED_BY

QUANTILES = (0.5, 0.99)


class Client:
    """One kept-alive HTTP connection per worker."""

    def __init__(self, ports: Sequence[int]) -> None:
        self.conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports}

    def call(self, port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, float, str]:
        conn = self.conns[port]
        began = time.perf_counter()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        resp.read()
        took = time.perf_counter() - began
        return resp.status, took, resp.getheader(SERVED_BY) or ""

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def quantiles(values: list[float]) -> dict[str, float | None]:
    arr = np.array(values) * 1000.0
    return {f"p{int(q * 100)}_ms": round(float(np.quantile(arr, q)), 2) if len(arr) else None for q in QUANTILES}


def run(ctx: Context, seconds: float = 20.0, stream_rate: float = 500.0, request_rate: float = 40.0) -> dict:
    settings = ctx.settings("score", emit_scores=False)
    n = int(stream_rate * (seconds + 10))
    events = list(generate(SimConfig(seed=ctx.size.seed, accounts=ctx.size.accounts, transactions=n)))
    txs = [e.value for e in events if e.kind == "transaction"]
    ports = [settings.web_port, free_port()]
    workers = [
        ctx.track(start_worker(settings.replace(data_dir=f"{settings.data_dir}-{i}", web_port=port),
                               ctx.log_path(f"score-api-{i}")))
        for i, port in enumerate(ports)
    ]  # fmt: skip
    for w in workers:
        w.wait_ready()
    ctx.say(f"score api: stream {stream_rate:.0f} tx/s, {request_rate:.0f} req/s for {seconds:.0f} s ...")
    producer = threading.Thread(
        target=produce,
        args=(events, settings.kafka_client_config(), settings.topic_transactions, settings.topic_labels),
        kwargs={"rate": stream_rate, "progress": False},
        daemon=True,
    )
    producer.start()
    time.sleep(3.0)  # the stream has begun: accounts have history
    client = Client(ports)
    rng = random.Random(ctx.size.seed)
    health: list[float] = []
    direct: list[float] = []
    forwarded: list[float] = []
    statuses: dict[int, int] = {}
    load = load_average()
    began = time.monotonic()
    i = 0
    try:
        while (now := time.monotonic()) - began < seconds:
            due = began + i / request_rate
            if due > now:
                time.sleep(due - now)
            port = rng.choice(ports)
            if i % 2:
                status, took, _ = client.call(port, "GET", "/health")
                health.append(took)
            else:
                tx = {**txs[rng.randrange(int(len(txs) * 0.3))], "transaction_id": f"whatif-{i}"}
                status, took, served = client.call(port, "POST", "/score", orjson.dumps(tx))
                (direct if served.endswith(f":{port}") else forwarded).append(took)
            statuses[status] = statuses.get(status, 0) + 1
            i += 1
    finally:
        client.close()
        for w in workers:
            w.stop()
    elapsed = time.monotonic() - began
    h, d, f = quantiles(health), quantiles(direct), quantiles(forwarded)
    result: dict[str, Any] = {
        "seconds": seconds,
        "stream_rate": stream_rate,
        "request_rate": request_rate,
        "achieved_request_rate": round(i / elapsed, 1),
        "statuses": statuses,
        "load_average": load,
        "health": {**h, "n": len(health)},
        "score_direct": {**d, "n": len(direct)},
        "score_forwarded": {**f, "n": len(forwarded)},
    }
    for name, q in (("score_direct", d), ("score_forwarded", f)):
        for k in ("p50_ms", "p99_ms"):
            mine, base = q[k], h[k]
            if mine is not None and base:
                result[name][f"{k[:3]}_vs_health"] = round(mine / base, 1)
    ctx.results["score_api"] = result
    return result


def render(r: dict) -> str:
    rows = [
        [name, r[key]["n"], r[key]["p50_ms"], r[key]["p99_ms"], r[key].get("p50_vs_health", "1"),
         r[key].get("p99_vs_health", "1")]
        for name, key in (("GET /health (baseline)", "health"), ("POST /score, direct", "score_direct"),
                          ("POST /score, forwarded", "score_forwarded"))
    ]  # fmt: skip
    title = (
        f"POST /score latency, two workers, stream {r['stream_rate']:.0f} tx/s, "
        f"{r['achieved_request_rate']:.0f} req/s (statuses {r['statuses']})"
    )
    return table(title, ["request", "n", "p50 ms", "p99 ms", "p50 / health", "p99 / health"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.score_api", description=__doc__.split("\n\n")[0])
    add_common_arguments(p)
    p.add_argument("--seconds", type=float, default=20.0, help="request load duration (default 20)")
    p.add_argument("--stream-rate", type=float, default=500.0, help="transactions per second streamed (default 500)")
    p.add_argument("--request-rate", type=float, default=40.0, help="requests per second, half /score (default 40)")
    args = p.parse_args(argv)
    size = size_from_args(args)
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        r = run(ctx, 6.0 if args.quick else args.seconds, args.stream_rate, args.request_rate)
        print(render(r))
    if not args.no_save:
        print(f"saved {save('score_api', {**envelope(size), **ctx.results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
