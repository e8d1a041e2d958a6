"""Prometheus metrics of the web app, correct under gunicorn's several worker processes.

Under gunicorn each worker is its own process with its own counters, and a scrape reaches one of
them. prometheus-client's multiprocess mode fixes that: when ``PROMETHEUS_MULTIPROC_DIR`` is set
(before ``prometheus_client`` is first imported; ``segmenter serve`` does it), every process writes its
values to files in that directory and ``/metrics`` sums them with a ``MultiProcessCollector``. The
gunicorn config marks dead workers (``child_exit``) so their live gauges disappear.

Without the variable (tests, the development server) the metrics live on an injectable registry.

Names: prefix ``segmenter_web_``, base units, ``_total`` on counters; labels are route names, methods,
status codes and segment ids: all bounded, never a customer id. A client chooses the method and the
path of its request, so both are mapped onto fixed sets first: a method outside :data:`METHODS` and
a path no route matches (a 404) are counted as ``other``.

>>> method_label("GET"), method_label("BREW"), route_label(None)
('GET', 'other', 'other')
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE_LATEST", "METHODS", "OTHER", "WebMetrics", "method_label", "multiprocess_dir",
           "route_label"]  # fmt: skip

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def method_label(method: str) -> str:
    """``method`` if it is a standard one, else ``other``."""
    return method if method in METHODS else OTHER


def route_label(rule: str | None) -> str:
    """The matched route's rule (``/api/v1/score``), or ``other`` when no route matched."""
    return rule if rule is not None else OTHER


class WebMetrics:
    """Request and scoring metrics; ``registry`` is ignored in multiprocess mode (files hold the values)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = None if self.multiprocess else (registry or CollectorRegistry())
        r = self.registry
        self.requests = Counter(
            "segmenter_web_requests",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "segmenter_web_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scored = Counter(
            "segmenter_web_customers_scored",
            "Customers scored through the form or the API, by assigned segment id.",
            ["segment"],
            registry=r,
        )
        self.rejected = Counter(
            "segmenter_web_invalid_fields",
            "Customers or requests rejected for invalid input, by entry point.",
            ["entry"],
            registry=r,
        )
        self.model_info = Gauge(
            "segmenter_web_model_info",
            "The model the web app serves (value 1), labelled with its id, k and algorithm.",
            ["model_id", "k", "algorithm"],
            registry=r,
            multiprocess_mode="max",
        )

    def observe_request(self, rule: str | None, method: str, status: int, started: float) -> None:
        """Count one answered request; ``rule`` is the matched route's rule, None when none matched."""
        route = route_label(rule)
        self.requests.labels(route, method_label(method), str(status)).inc()
        self.latency.labels(route).observe(max(time.perf_counter() - started, 0.0))

    def exposition(self) -> bytes:
        """The text format of every metric (summed over all workers in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
