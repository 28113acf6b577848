"""The files a server is started with, beside its model config: batching and monitoring."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from zoo.errors import ConfigError
from zoo.fs import write_text
from zoo.serve.options import ServerOptions
from zoo.serve.protos import BatchingParameters, MonitoringConfig

#: The BatchingParameters fields the embedded server's batcher implements.
IMPLEMENTED = (
    "max_batch_size",
    "batch_timeout_micros",
    "num_batch_threads",
    "max_enqueued_batches",
)
#: Where TF Serving publishes Prometheus metrics unless its monitoring config says otherwise.
METRICS_PATH = "/monitoring/prometheus/metrics"


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's scheduler parameters; where a file leaves them out: batches of up to 32
    images, a 2 ms wait for a batch to fill, and one batch thread per core up to 4, as TF
    Serving's guide advises on CPUs (measured here: two threads, one batch computing while
    the next fills, gave 14% more than one)."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = field(default_factory=lambda: min(os.cpu_count() or 1, 4))
    max_enqueued_batches: int = 10

    @property
    def waiting_requests(self) -> int:
        """How many requests can wait in the queues at once (each holds a server thread)."""
        return self.max_batch_size * self.max_enqueued_batches

    @classmethod
    def from_file(cls, path: str | Path) -> BatchingOptions:
        """The options of a --batching_parameters_file; a field the embedded server does not
        implement is refused by name, not ignored."""
        try:
            params = text_format.Parse(Path(path).read_text(), BatchingParameters())
        except (OSError, text_format.ParseError) as exc:
            raise ConfigError(
                f"Error parsing text-format tensorflow.serving.BatchingParameters: {exc} ({path})"
            ) from None
        unknown = sorted(
            field.name for field, _ in params.ListFields() if field.name not in IMPLEMENTED
        )
        if unknown:
            raise ConfigError(
                f"{path}: the embedded server does not implement {', '.join(unknown)}; "
                f"it takes {', '.join(IMPLEMENTED)}"
            )
        return cls(
            **{name: getattr(params, name).value for name in IMPLEMENTED if params.HasField(name)}
        )


def write_server_files(
    options: ServerOptions,
    folder: Path,
    *,
    batching: bool,
    metrics: bool,
    batch: BatchingOptions | None = None,
) -> None:
    """Write a BatchingParameters and a MonitoringConfig file as asked; point ``options`` at them."""
    if batching:
        path = write_text(folder / "batching.config", batching_text(batch or BatchingOptions()))
        options.enable_batching = True
        options.batching_parameters_file = str(path)
    if metrics:
        path = write_text(folder / "monitoring.config", monitoring_text())
        options.monitoring_config_file = str(path)


def batching_text(chosen: BatchingOptions) -> str:
    """A --batching_parameters_file: TF Serving's BatchingParameters in text format."""
    params = BatchingParameters()
    params.max_batch_size.value = chosen.max_batch_size
    params.batch_timeout_micros.value = chosen.batch_timeout_micros
    params.num_batch_threads.value = chosen.num_batch_threads
    params.max_enqueued_batches.value = chosen.max_enqueued_batches
    return text_format.MessageToString(params)


def monitoring_text() -> str:
    """A --monitoring_config_file: Prometheus metrics at TF Serving's path."""
    config = MonitoringConfig()
    config.prometheus_config.enable = True
    config.prometheus_config.path = METRICS_PATH
    return text_format.MessageToString(config)
