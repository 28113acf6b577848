"""The embedded server: models, gRPC (TF Serving's services and gRPC health), REST, metrics.

``run(options)`` serves until SIGTERM or SIGINT, then stops taking requests, lets those in
flight finish (up to ``GRACE`` seconds) and exits. The readiness of every model is
published on the standard gRPC health service, for load balancers and Kubernetes probes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import text_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from zoo.errors import ZooError
from zoo.serve.config import ModelEntry, read_model_config
from zoo.serve.options import PARENT_ENV, ServerOptions, channel_arguments
from zoo.serve.protos import SSLConfig
from zoo.serve.server.api import ServingApi
from zoo.serve.server.batching import Batcher
from zoo.serve.server.grpc_service import ModelService, PredictionService
from zoo.serve.server.limits import InflightBudget, RequestLimits
from zoo.serve.server.loader import SessionOptions, register_extra_ops
from zoo.serve.server.manager import LoadPolicy, ModelManager
from zoo.serve.server.metrics import Metrics
from zoo.serve.server.profiler import ProfilerService
from zoo.serve.server.rest import RestServer
from zoo.serve.server.warmup import run_warmup

log = logging.getLogger("zoo.serve")
GRACE = 30.0
HEALTH_INTERVAL = 0.5


class EmbeddedServer:
    """The parts of a running embedded server, started and stopped together."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.manager = ModelManager(
            model_entries(options),
            warmup=run_warmup if options.enable_model_warmup else None,
            session=SessionOptions(
                options.tensorflow_intra_op_parallelism, options.tensorflow_inter_op_parallelism
            ),
            retries=LoadPolicy(
                options.max_num_load_retries, options.load_retry_interval_micros / 1e6
            ),
            prefer_tflite=options.prefer_tflite_model,
        )
        self.health = health.HealthServicer()
        metrics = _metrics(options)
        self.batcher = (
            Batcher.from_options(options, self.manager, metrics)
            if options.enable_batching
            else None
        )
        self.api = ServingApi(
            self.manager,
            metrics=metrics,
            predict=self.batcher.predict if self.batcher else None,
            as_content=options.enable_serialization_as_tensor_content,
            limits=RequestLimits(options.max_request_elements, options.max_image_pixels),
            inflight=InflightBudget(options.max_inflight_request_mb * 1024 * 1024),
        )
        limit = options.max_request_mb * 1024 * 1024
        threads = options.grpc_max_threads
        if self.batcher is not None:  # a request waiting for its batch holds a thread
            threads = max(threads, self.batcher.options.waiting_requests)
        self.grpc = grpc.server(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="zoo-grpc"),
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                *channel_arguments(options.grpc_channel_arguments),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.api), self.grpc
        )
        management = options.enable_model_management or _client_verified(options)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.api, management=management), self.grpc
        )
        if options.enable_grpc_healthcheck_service:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self.grpc.add_generic_rpc_handlers((ProfilerService().handler(),))  # as TF Serving
        address = f"{options.host}:{options.port}"
        credentials = _credentials(options)
        bound = (
            self.grpc.add_secure_port(address, credentials)
            if credentials
            else self.grpc.add_insecure_port(address)
        )
        if not bound:
            raise OSError(f"cannot listen on {address}")
        self.port = bound
        if options.grpc_socket_path:  # TF Serving's second gRPC address: a Unix socket
            self.grpc.add_insecure_port(f"unix:{options.grpc_socket_path}")
        self.rest = RestServer(self.api, options, threads) if options.rest_api_port else None
        self._stopped = threading.Event()

    def start(self) -> None:
        self.grpc.start()
        if self.rest is not None:
            self.rest.start()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds:
            threading.Thread(target=self._poll_config, daemon=True, name="zoo-config").start()
        self.manager.start_polling(self.options.file_system_poll_wait_seconds)
        threading.Thread(target=self._publish_health, daemon=True).start()
        log.info(
            "serving %s on %s:%d", ", ".join(self.manager.names()), self.options.host, self.port
        )

    def stop(self, grace: float = GRACE) -> None:
        """No new requests; those in flight finish; then everything stops."""
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        done = self.grpc.stop(grace)
        if self.batcher is not None:  # requests queued for a batch are answered now
            self.batcher.stop()
        if self.rest is not None:
            self.rest.stop()
        self.manager.stop()
        done.wait(grace)

    def _poll_config(self) -> None:
        """Re-read the model config file every --model_config_file_poll_wait_seconds and serve
        what it lists now; a file that does not parse is reported and the old list kept."""
        path, seconds = (
            self.options.model_config_file,
            self.options.model_config_file_poll_wait_seconds,
        )
        current = model_entries(self.options)
        while not self._stopped.wait(seconds):
            try:
                entries = read_model_config(path)
            except ZooError as exc:
                log.error("the model config file was not reloaded: %s", exc)
                continue
            if entries != current:
                log.info(
                    "the model config file changed: serving %s", ", ".join(e.name for e in entries)
                )
                self.manager.configure(entries)
                current = entries

    def _publish_health(self) -> None:
        """As TF Serving: its two services are SERVING. Beyond it: each model once a version is
        available, and the whole server ("") once all are, so that readiness means models."""
        serving, not_serving = (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        for service in ("ModelService", "PredictionService"):
            self.health.set(service, serving)
        while not self._stopped.wait(HEALTH_INTERVAL):
            for name in self.manager.names():
                ready = bool(self.manager.available(name))
                self.health.set(name, serving if ready else not_serving)
            self.health.set("", serving if self.manager.all_available() else not_serving)


def model_entries(options: ServerOptions) -> list[ModelEntry]:
    if options.model_config_file:
        return read_model_config(options.model_config_file)
    return [ModelEntry(options.model_name, Path(options.model_base_path))]


def _credentials(options: ServerOptions) -> grpc.ServerCredentials | None:
    """TLS from TF Serving's --ssl_config_file (SSLConfig: key and certificate in PEM text,
    a custom CA, and client_verify for mutual TLS)."""
    if not options.ssl_config_file:
        return None
    config = text_format.Parse(Path(options.ssl_config_file).read_text(), SSLConfig())
    pair = [(config.server_key.encode(), config.server_cert.encode())]
    ca = config.custom_ca.encode() or None
    return grpc.ssl_server_credentials(
        pair, root_certificates=ca, require_client_auth=config.client_verify
    )


def _client_verified(options: ServerOptions) -> bool:
    """Mutual TLS: every client holds a certificate the server's CA signed."""
    if not options.ssl_config_file:
        return False
    return text_format.Parse(Path(options.ssl_config_file).read_text(), SSLConfig()).client_verify


def _metrics(options: ServerOptions) -> Metrics | None:
    if not options.monitoring_config_file:
        return None
    return Metrics.from_config_file(options.monitoring_config_file)


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Set ``stop`` once ``parent`` (the zoo process that started this server) has exited."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            log.warning("the process that started this server (%d) is gone; stopping", parent)
            stop.set()


def set_op_threads(options: ServerOptions) -> None:
    """TensorFlow's thread pools, as --tensorflow_intra/inter_op_parallelism ask (0: its choice).

    On a CPU with many concurrent single-image requests, one thread per op avoids the
    cores fighting over each op (see BENCHMARKS.md); it must be set before any model loads.
    """
    tf.config.threading.set_intra_op_parallelism_threads(options.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(options.tensorflow_inter_op_parallelism)
    log.info(
        "TensorFlow threads: %s within an op, %s ops at once",
        options.tensorflow_intra_op_parallelism or "auto",
        options.tensorflow_inter_op_parallelism or "auto",
    )


def run(options: ServerOptions) -> None:
    """Serve until SIGTERM or SIGINT, or until the process named in $ZOO_SERVE_PARENT_PID is gone."""
    set_op_threads(options)
    for package in register_extra_ops():
        log.info("ops of %s registered", package)
    server = EmbeddedServer(options)
    stop = threading.Event()
    for sign in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sign, lambda *_: stop.set())
    parent = os.environ.get(PARENT_ENV)
    if parent:
        threading.Thread(target=_watch_parent, args=(int(parent), stop), daemon=True).start()
    server.start()
    print(f"zoo embedded server on {options.host}:{server.port}", flush=True)
    stop.wait()
    server.stop()
