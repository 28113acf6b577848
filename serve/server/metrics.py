"""Prometheus metrics under TF Serving's names, at its monitoring path on the REST port.

TF Serving exports ``:tensorflow:serving:request_count`` (counter; labels model_name,
status), ``:tensorflow:serving:request_latency`` (histogram in microseconds; labels
model_name, API, entrypoint; successful requests only) and, with batching, the sizes of
requests and of the batches run (``:tensorflow:serving:batching_session:input_batch_size``
and ``processed_batch_size``), in Prometheus's text format with these exact names, so
dashboards written for it work unchanged (util/prometheus_exporter.cc,
batching/batching_util.h). prometheus_client is not used: it would name the counter
``..._total``. Label values are escaped as the text format requires (backslash, double
quote, newline), and the API label is spelled as the gRPC method (``Predict``) for gRPC
and REST alike. Requests naming a model that is not served are counted under
``model_name=""``, so unknown names cannot grow the exposition.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from google.protobuf import text_format

from zoo.serve.protos import MonitoringConfig
from zoo.serve.server_files import METRICS_PATH

PREFIX = ":tensorflow:serving:"
REQUEST_COUNT = PREFIX + "request_count"
REQUEST_LATENCY = PREFIX + "request_latency"
BATCH_SIZES = PREFIX + "batching_session:"
#: TF Serving's latency buckets, in microseconds: Exponential(10, 1.8, 33).
LATENCY_BUCKETS = [10 * 1.8**i for i in range(33)]
#: Its batch-size buckets: Exponential(1, 2, 14).
SIZE_BUCKETS = [2.0**i for i in range(14)]


def escape(value: str) -> str:
    """A label value as Prometheus's text exposition format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**values: str) -> str:
    return ",".join(f'{name}="{escape(value)}"' for name, value in values.items())


class Histogram:
    """Cumulative bucket counts, a sum and a count."""

    def __init__(self, buckets: list[float]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for index, limit in enumerate(self.buckets):
            if value <= limit:
                self.counts[index] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, label_text: str) -> list[str]:
        prefix = f"{label_text}," if label_text else ""
        lines = [
            f'{name}_bucket{{{prefix}le="{limit:g}"}} {count}'
            for limit, count in zip(self.buckets, self.counts, strict=True)
        ]
        lines.append(f'{name}_bucket{{{prefix}le="+Inf"}} {self.count}')
        suffix = f"{{{label_text}}}" if label_text else ""
        return [*lines, f"{name}_sum{suffix} {self.sum:g}", f"{name}_count{suffix} {self.count}"]


class Metrics:
    """Request counts and latencies per model, API and outcome, and batch sizes; thread-safe."""

    def __init__(self, path: str = METRICS_PATH) -> None:
        self.path = path or METRICS_PATH
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str, str], Histogram] = {}
        self._sizes: dict[str, Histogram] = {}

    @classmethod
    def from_config_file(cls, path: str | Path) -> Metrics | None:
        """Metrics as a MonitoringConfig file asks (None when Prometheus is not enabled)."""
        config = text_format.Parse(Path(path).read_text(), MonitoringConfig())
        if not config.prometheus_config.enable:
            return None
        return cls(config.prometheus_config.path)

    def record(
        self, api: str, model: str, status: str, seconds: float, entrypoint: str = "GRPC"
    ) -> None:
        """One request: ``model`` is a served model's name, or "" for any other name."""
        with self._lock:
            self._counts[(model, status)] += 1
            if status == "OK":
                key = (model, api, entrypoint)
                histogram = self._latency.setdefault(key, Histogram(LATENCY_BUCKETS))
                histogram.observe(seconds * 1e6)

    def record_batch_size(self, kind: str, size: int) -> None:
        """``input_batch_size`` (one request's) or ``processed_batch_size`` (a batch run)."""
        with self._lock:
            self._sizes.setdefault(kind, Histogram(SIZE_BUCKETS)).observe(size)

    def exposition(self) -> str:
        """The metrics in Prometheus's text format."""
        with self._lock:
            lines = [f"# TYPE {REQUEST_COUNT} counter"]
            for (model, status), count in sorted(self._counts.items()):
                lines.append(
                    f"{REQUEST_COUNT}{{{labels(model_name=model, status=status)}}} {count}"
                )
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), histogram in sorted(self._latency.items()):
                label_text = labels(model_name=model, API=api, entrypoint=entrypoint)
                lines += histogram.lines(REQUEST_LATENCY, label_text)
            for kind, histogram in sorted(self._sizes.items()):
                lines.append(f"# TYPE {BATCH_SIZES}{kind} histogram")
                lines += histogram.lines(BATCH_SIZES + kind, "")
            return "\n".join(lines) + "\n"
