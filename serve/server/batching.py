"""Server-side batching: concurrent Predict requests of one signature run as one batch.

As TF Serving's batching session: requests queue per model version, signature and input
shape; a batch runs when it holds ``max_batch_size`` images or its oldest request has
waited ``batch_timeout_micros``; ``num_batch_threads`` batches run at once; and when
``max_enqueued_batches`` batches are already waiting, a request is answered UNAVAILABLE
("The batch scheduling queue to which this task was submitted is full"). Parameters come
from TF Serving's --batching_parameters_file (a BatchingParameters text proto). Stopping
answers every request still queued (UNAVAILABLE), so no client waits for a batch that
will never run.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from zoo.serve.options import ServerOptions
from zoo.serve.server import handlers
from zoo.serve.server.manager import ModelManager
from zoo.serve.server.metrics import Metrics
from zoo.serve.server.status import ServingError, invalid
from zoo.serve.server_files import BatchingOptions

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"
STOPPED = "The server is stopping; the request was not run"


@dataclass
class _Task:
    call: handlers.PredictCall
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] | None = None
    error: ServingError | None = None
    queued: float = field(default_factory=time.monotonic)


class _Queue:
    """Tasks waiting for one (version, signature, input shapes)."""

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0


class Batcher:
    """Predict with batching; other requests go straight to their handlers."""

    def __init__(
        self,
        manager: ModelManager,
        options: BatchingOptions,
        *,
        as_content: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self.manager = manager
        self.options = options
        self.as_content = as_content  # --enable_serialization_as_tensor_content
        self.metrics = metrics
        self._lock = threading.Condition()
        self._queues: dict[tuple[Any, ...], _Queue] = {}
        self._stopped = False
        self._workers = [
            threading.Thread(target=self._work, daemon=True, name=f"zoo-batch-{i}")
            for i in range(options.num_batch_threads)
        ]
        for worker in self._workers:
            worker.start()

    @classmethod
    def from_options(
        cls, server: ServerOptions, manager: ModelManager, metrics: Metrics | None = None
    ) -> Batcher:
        file = server.batching_parameters_file
        return cls(
            manager,
            BatchingOptions.from_file(file) if file else BatchingOptions(),
            as_content=server.enable_serialization_as_tensor_content,
            metrics=metrics,
        )

    def predict(self, request: Any) -> Any:
        version = self.manager.resolve(*handlers.model_spec(request))
        call = handlers.prepare_predict(version, request, as_content=self.as_content)
        sizes = {int(t.shape[0]) if t.ndim else -1 for t in call.arguments.values()}
        if len(sizes) != 1 or -1 in sizes:
            return call.response(call.run())  # not batchable: inputs without one batch size
        size = sizes.pop()
        if size > self.options.max_batch_size:
            raise invalid(
                f"Task size {size} is larger than maximum input batch size {self.options.max_batch_size}"
            )
        key = (
            id(call.version), call.signature, tuple(call.outputs),
            tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(call.arguments.items())),
        )  # fmt: skip
        task = _Task(call, size)
        with self._lock:
            if self._stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, STOPPED)
            queue = self._queues.setdefault(key, _Queue())
            waiting = math.ceil((queue.size + size) / self.options.max_batch_size)
            if waiting > self.options.max_enqueued_batches:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, QUEUE_FULL)
            queue.tasks.append(task)
            queue.size += size
            self._lock.notify_all()
        if self.metrics is not None:
            self.metrics.record_batch_size("input_batch_size", size)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return call.response(task.outputs)

    def stop(self) -> None:
        """Run no more batches; answer every request still queued."""
        with self._lock:
            self._stopped = True
            waiting = [task for queue in self._queues.values() for task in queue.tasks]
            self._queues.clear()
            self._lock.notify_all()
        for task in waiting:
            task.error = ServingError(grpc.StatusCode.UNAVAILABLE, STOPPED)
            task.done.set()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Task] | None:
        timeout = self.options.batch_timeout_micros / 1e6
        with self._lock:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                ready, wait = None, None
                for key, queue in self._queues.items():
                    if not queue.tasks:
                        continue
                    due = queue.tasks[0].queued + timeout
                    if queue.size >= self.options.max_batch_size or due <= now:
                        ready = key
                        break
                    wait = due - now if wait is None else min(wait, due - now)
                if ready is not None:
                    return self._take(self._queues[ready])
                self._lock.wait(wait)

    def _take(self, queue: _Queue) -> list[_Task]:
        batch, total = [], 0
        while queue.tasks and total + queue.tasks[0].size <= self.options.max_batch_size:
            task = queue.tasks.pop(0)
            batch.append(task)
            total += task.size
        queue.size -= total
        return batch

    def _run(self, batch: list[_Task]) -> None:
        first = batch[0].call
        arguments = {
            name: np.concatenate([task.call.arguments[name] for task in batch], axis=0)
            for name in first.arguments
        }
        if self.metrics is not None:
            self.metrics.record_batch_size("processed_batch_size", sum(t.size for t in batch))
        try:
            outputs = first.version.run(first.signature, arguments, first.outputs)
        except Exception as exc:  # every waiting request gets the error, none hangs
            error = exc if isinstance(exc, ServingError) else ServingError.internal(exc)
            for task in batch:
                task.error = error
                task.done.set()
            return
        start = 0
        for task in batch:
            task.outputs = {k: v[start : start + task.size] for k, v in outputs.items()}
            start += task.size
            task.done.set()
