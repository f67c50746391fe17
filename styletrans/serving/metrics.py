"""Prometheus metrics of one app: requests by route and status, latency, batch sizes, queue depth.

Each app has its own registry (several servers can live in one process, as in tests).
Routes are labelled by their template (``/v1/stylize/{style}``), never the raw path, so
a client cannot create unbounded label values; the style is a label only on batch
metrics, where it comes from the loaded models.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch_size: int) -> None:
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = CollectorRegistry()
        self.requests = Counter("styletrans_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("styletrans_request_seconds", "HTTP request latency (seconds)", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, max_batch_size} & set(range(1, max_batch_size + 1)))
        self.batch_size = Histogram("styletrans_batch_size", "Requests per network call", ["style"],
                                    buckets=sizes, registry=self.registry)
        self.batch_seconds = Histogram("styletrans_batch_seconds", "Network time per batch (seconds)", ["style"],
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("styletrans_queue_depth", "Requests waiting for the network",
                                 registry=self.registry)
        self.in_progress = Gauge("styletrans_requests_in_progress", "Stylize requests being handled",
                                 registry=self.registry)
        self.models = Gauge("styletrans_models_loaded", "Styles being served", registry=self.registry)
        self.reloads = Counter("styletrans_model_reloads", "Model directory reloads that changed something",
                               registry=self.registry)

    def observe_batch(self, style: str, size: int, seconds: float) -> None:
        self.batch_size.labels(style).observe(size)
        self.batch_seconds.labels(style).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts every response by route template and status, and times it (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, skip: Callable[[str], bool] = lambda path: False) -> None:
        self.app = app
        self.metrics = metrics
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.skip(scope["path"]):
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering
        start = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
