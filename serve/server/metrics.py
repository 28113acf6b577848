"""Prometheus metrics under TF Serving's names, at its monitoring path on the REST port.

TF Serving exports ``:tensorflow:serving:request_count`` (counter; labels model_name,
status) and ``:tensorflow:serving:request_latency`` (histogram in microseconds; labels
model_name, API, entrypoint; successful requests only), in Prometheus's text format with
these exact names, so dashboards written for it work unchanged (util/
prometheus_exporter.cc; the Python Prometheus client would add ``_total`` to the counter).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from google.protobuf import text_format

from zoo.serve.protos import MonitoringConfig

DEFAULT_PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
#: TF Serving's latency buckets, in microseconds: Exponential(10, 1.8, 33).
BUCKETS = [10 * 1.8**i for i in range(33)]


class Metrics:
    """Request counts and latencies per model, API and outcome; thread-safe."""

    def __init__(self, path: str = DEFAULT_PATH) -> None:
        self.path = path or DEFAULT_PATH
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str, str], list[float]] = {}

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
        with self._lock:
            self._counts[(model, status)] += 1
            if status == "OK":
                histogram = self._latency.setdefault(
                    (model, api, entrypoint), [0.0] * (len(BUCKETS) + 2)
                )
                micros = seconds * 1e6
                for index, limit in enumerate(BUCKETS):
                    if micros <= limit:
                        histogram[index] += 1
                histogram[-2] += micros  # sum
                histogram[-1] += 1  # count

    def exposition(self) -> str:
        """The metrics in Prometheus's text format."""
        with self._lock:
            lines = [f"# TYPE {REQUEST_COUNT} counter"]
            for (model, status), count in sorted(self._counts.items()):
                lines.append(f'{REQUEST_COUNT}{{model_name="{model}",status="{status}"}} {count}')
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), histogram in sorted(self._latency.items()):
                labels = f'model_name="{model}",API="{api}",entrypoint="{entrypoint}"'
                for limit, count in zip(BUCKETS, histogram, strict=False):
                    lines.append(
                        f'{REQUEST_LATENCY}_bucket{{{labels},le="{limit:g}"}} {int(count)}'
                    )
                lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="+Inf"}} {int(histogram[-1])}')
                lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {histogram[-2]:g}")
                lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {int(histogram[-1])}")
            return "\n".join(lines) + "\n"
