"""What one request may cost the server, checked before anything is allocated for it.

A request is a few bytes that can ask for gigabytes: a tensor whose shape declares 3e8
elements and carries no values (TensorFlow would fill them in), a small PNG whose header
says 20000 x 20000 pixels, many large bodies at once. The embedded server refuses these
before it builds a tensor or decodes an image, so one client cannot take the memory
every other client needs:

- a tensor's shape is checked first: a negative dimension is INVALID_ARGUMENT; more
  elements than ``--max_request_elements`` is RESOURCE_EXHAUSTED; values that do not
  match the shape (raw bytes of another size, string values fewer than the elements) are
  INVALID_ARGUMENT;
- an image inside a string tensor or a ``tf.Example`` (PNG, JPEG, GIF, BMP, WebP...) has
  its size read from its header, and more pixels than ``--max_image_pixels`` (50 million
  by default, as zoo's data checks) is INVALID_ARGUMENT;
- the bytes of the requests being served at once are counted, and one that would pass
  ``--max_inflight_request_mb`` is answered RESOURCE_EXHAUSTED instead of being queued
  in memory.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from PIL import Image
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import input_pb2

from zoo.serve.server.status import ServingError, invalid

#: The first bytes of the image formats TensorFlow's decoders read.
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
_ITEM_SIZES = {
    types_pb2.DT_FLOAT: 4, types_pb2.DT_DOUBLE: 8, types_pb2.DT_INT32: 4,
    types_pb2.DT_UINT8: 1, types_pb2.DT_INT16: 2, types_pb2.DT_INT8: 1,
    types_pb2.DT_INT64: 8, types_pb2.DT_BOOL: 1, types_pb2.DT_UINT16: 2,
    types_pb2.DT_UINT32: 4, types_pb2.DT_UINT64: 8, types_pb2.DT_HALF: 2,
    types_pb2.DT_BFLOAT16: 2, types_pb2.DT_COMPLEX64: 8, types_pb2.DT_COMPLEX128: 16,
}  # fmt: skip


@dataclass(frozen=True)
class RequestLimits:
    """The caps; zoo's flags --max_request_elements and --max_image_pixels."""

    max_elements: int = 100_000_000
    max_image_pixels: int = 50_000_000

    def check_tensor(self, alias: str, proto: tensor_pb2.TensorProto) -> None:
        """The tensor's declared shape against the cap and the values it carries."""
        dims = [d.size for d in proto.tensor_shape.dim]
        if any(d < 0 for d in dims):
            raise invalid(f"input {alias}: a tensor's dimensions must be 0 or more, got {dims}")
        elements = int(np.prod(dims, dtype=np.float64)) if dims else 1
        if elements > self.max_elements:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"input {alias} declares {elements} elements; this server takes at most "
                f"{self.max_elements} in one tensor (--max_request_elements)",
            )
        if proto.tensor_content:
            size = _ITEM_SIZES.get(proto.dtype)
            if size is not None and len(proto.tensor_content) != elements * size:
                raise invalid(
                    f"input {alias}: {len(proto.tensor_content)} bytes of tensor_content for "
                    f"{elements} elements of {size} bytes"
                )
        elif proto.dtype == types_pb2.DT_STRING:
            if len(proto.string_val) != elements:
                raise invalid(
                    f"input {alias}: {len(proto.string_val)} string values for a shape of "
                    f"{elements} elements"
                )
            for index, value in enumerate(proto.string_val):
                self.check_image(value, f"input {alias}, element {index}")

    def check_image(self, data: bytes, where: str) -> None:
        """An encoded image's size, from its header, against --max_image_pixels."""
        if not data.startswith(IMAGE_MAGIC):
            return
        size = image_size(data)
        if size is not None and size[0] * size[1] > self.max_image_pixels:
            raise invalid(
                f"{where}: an image of {size[0]}x{size[1]} pixels, over the "
                f"{self.max_image_pixels} pixels this server decodes (--max_image_pixels)"
            )

    def check_predict(self, request: Any) -> None:
        for alias, proto in request.inputs.items():
            self.check_tensor(alias, proto)

    def check_examples(self, given: input_pb2.Input) -> None:
        """The images in the bytes features of a request's tf.Examples (and its context)."""
        kind = given.WhichOneof("kind")
        if kind == "example_list":
            examples = list(given.example_list.examples)
        elif kind == "example_list_with_context":
            listed = given.example_list_with_context
            examples = [listed.context, *listed.examples]
        else:
            return
        for index, example in enumerate(examples):
            for name, feature in example.features.feature.items():
                for value in feature.bytes_list.value:
                    self.check_image(value, f"example {index}, feature {name}")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding it; None if unreadable.

    A PNG's header is read here (its IHDR chunk); other formats' by Pillow, which reads
    only the header when it opens a file, with its own bomb check lifted for the call."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    with warnings.catch_warnings(), _no_pillow_limit():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size
        except Exception:  # not an image Pillow reads: TensorFlow's decoder will say
            return None


_PILLOW = threading.Lock()


@contextmanager
def _no_pillow_limit() -> Iterator[None]:
    with _PILLOW:
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


class InflightBudget:
    """The bytes of the requests being served at once, under ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Count ``size`` bytes while the request is served; RESOURCE_EXHAUSTED if over."""
        with self._lock:
            if self.used + size > self.limit:
                raise ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the server is serving {self.used} bytes of requests; this one of {size} "
                    f"bytes would pass its limit of {self.limit} (--max_inflight_request_mb)",
                )
            self.used += size
        try:
            yield
        finally:
            with self._lock:
                self.used -= size
