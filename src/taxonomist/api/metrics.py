"""Prometheus metrics, one registry per app (so two apps in one process never collide).

Names carry the `taxonomist_` prefix and base units (seconds, items). Label values are
bounded: the route is its template (`/v1/models/{name}/classify`), the model a served name or
empty, the status a code.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "taxonomist_http_requests",
            "HTTP requests handled, by route template, model and status code.",
            ["method", "route", "model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "taxonomist_http_request_duration_seconds",
            "Time from request to response, by route template and model.",
            ["method", "route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "taxonomist_http_requests_in_flight", "Requests being handled now.", registry=r
        )
        self.items = Counter(
            "taxonomist_items_classified", "Products classified, by model.", ["model"], registry=r
        )
        self.batch_items = Histogram(
            "taxonomist_model_batch_items",
            "Products per model call (micro-batches of concurrent requests).",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "taxonomist_model_inference_duration_seconds",
            "Time of one model call, by model.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.load_seconds = Gauge(
            "taxonomist_model_load_duration_seconds",
            "Seconds the model's current version took to load and warm up.",
            ["model"],
            registry=r,
        )
        self.loads = Counter(
            "taxonomist_model_loads",
            "Model versions loaded (at start and on promote/rollback), by model.",
            ["model"],
            registry=r,
        )
        self.ready = Gauge(
            "taxonomist_model_ready", "1 when the model is loaded.", ["model"], registry=r
        )
        Info("taxonomist_build", "Package and Python versions.", registry=r).info(
            {"version": version, "python": platform.python_version()}
        )
