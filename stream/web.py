"""The worker's HTTP views: /health, /ready, /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from stream.metrics import Metrics


def is_ready(app: faust.App, broker_up: Callable[[], bool] = lambda: True) -> tuple[bool, int]:
    """Ready once partitions are assigned and table recovery has completed, while the
    broker answers (:class:`stream.health.BrokerWatch`)."""
    assigned = len(app.consumer.assignment()) if app._consumer is not None else 0
    tables: Any = app.tables  # the TableManager (its type stub lacks ``recovery``)
    ready = assigned > 0 and not app.rebalancing and tables.recovery.completed.is_set() and broker_up()
    return ready, assigned


def add_views(
    app: faust.App, metrics: Metrics, refresh: Callable[[], None], broker_up: Callable[[], bool] = lambda: True
) -> None:
    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        ready, assigned = is_ready(app, broker_up)
        body = {"ready": ready, "assigned_partitions": assigned, "broker_up": broker_up()}
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        refresh()
        return web.bytes(metrics.exposition(), content_type="text/plain", headers={"X-Format": "prometheus-0.0.4"})
