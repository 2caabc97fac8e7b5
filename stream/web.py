"""The worker's HTTP views: /health, /ready, /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from stream.metrics import Metrics


def is_ready(app: faust.App) -> tuple[bool, int]:
    """Ready once partitions are assigned and table recovery has completed."""
    assigned = len(app.consumer.assignment()) if app._consumer is not None else 0
    tables: Any = app.tables  # the TableManager (its type stub lacks ``recovery``)
    return assigned > 0 and not app.rebalancing and tables.recovery.completed.is_set(), assigned


def add_views(app: faust.App, metrics: Metrics, refresh: Callable[[], None]) -> None:
    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        ready, assigned = is_ready(app)
        return web.json({"ready": ready, "assigned_partitions": assigned}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        refresh()
        return web.bytes(metrics.exposition(), content_type="text/plain", headers={"X-Format": "prometheus-0.0.4"})
