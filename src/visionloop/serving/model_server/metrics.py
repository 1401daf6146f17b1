"""Prometheus metrics of the inference server, in a registry owned by one app (nothing global)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from visionloop.serving.model_server.limits import ByteBudget
from visionloop.serving.model_server.prediction_log import PredictionLogger

__all__ = ["CONTENT_TYPE_LATEST", "InferenceMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)


class InferenceMetrics:
    """Requests, errors, latency, batch sizes and queue depth per model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("visionloop_inference_requests", "Prediction requests answered, by status code.",
                                ["model", "endpoint", "status"], registry=self.registry)
        self.errors = Counter("visionloop_inference_errors", "Rejected or failed predictions, by kind.",
                              ["model", "kind"], registry=self.registry)
        self.latency = Histogram("visionloop_inference_request_seconds",
                                 "Time from request start to answer, seconds.", ["model", "endpoint"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("visionloop_inference_batch_size", "Images per model call (dynamic batching).",
                                    ["model"], buckets=_BATCH_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram("visionloop_inference_batch_seconds",
                                       "Decode + preprocess + model time of one batch, seconds.", ["model"],
                                       buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("visionloop_inference_queue_depth", "Requests waiting for a batch worker.",
                                 ["model"], registry=self.registry)
        self.reloads = Counter("visionloop_inference_reloads", "Changes of a served model (reload, rollback, canary) "
                               "by outcome (ok, refused).", ["model", "action", "outcome"], registry=self.registry)

    def watch(self, *, inflight: ByteBudget, prediction_logger: PredictionLogger | None) -> None:
        """Expose the in-flight request bytes and, when logging, the prediction log's counters at each scrape."""
        self.registry.register(_StateCollector(inflight, prediction_logger))

    def observe_request(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request: its status, its latency and, for codes >= 400, an error."""
        self.requests.labels(model, endpoint, str(code)).inc()
        self.latency.labels(model, endpoint).observe(seconds)
        if code >= 400:
            self.errors.labels(model, str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Reads the server's bounded buffers when scraped: nothing to keep in step."""

    def __init__(self, inflight: ByteBudget, logger: PredictionLogger | None) -> None:
        self.inflight, self.logger = inflight, logger

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("visionloop_inference_inflight_bytes",
                                "Request body bytes held now (limit: max_inflight_bytes).", value=self.inflight.used)
        if self.logger is None:
            return
        log = self.logger
        yield CounterMetricFamily("visionloop_inference_prediction_log_logged",
                                  "Sampled predictions written to the log.", value=log.logged)
        yield CounterMetricFamily("visionloop_inference_prediction_log_dropped",
                                  "Sampled predictions dropped because the log's queue was full.", value=log.dropped)
        yield CounterMetricFamily("visionloop_inference_prediction_log_failed",
                                  "Sampled predictions whose write failed (disk full, read-only).", value=log.failed)
        yield GaugeMetricFamily("visionloop_inference_prediction_log_pending_bytes",
                                "Image bytes waiting to be written (limit: max_pending_bytes).",
                                value=log.pending_bytes)
