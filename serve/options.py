"""The command line of ``tensorflow_model_server``, for the part the embedded server implements.

Every engine is driven with the same flags (``--name=value``; booleans also bare), so
``zoo serve`` builds one command line whichever server runs it. A flag the embedded
server does not implement is refused by name, instead of being ignored as TF Serving
ignores unknown flags. Some flags are zoo's own (ZOO_FLAGS): ``--host`` (TF Serving binds
every interface; the embedded server binds 127.0.0.1 unless told), the limits of what one
request may cost (serve/server/limits.py), and ``--enable_model_management``, since a
reload of the model config is an administrator's act.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from zoo.errors import ConfigError

#: The embedded server's own flags, which tensorflow_model_server does not take.
ZOO_FLAGS = (
    "host",
    "max_request_mb",
    "max_inflight_request_mb",
    "max_request_elements",
    "max_image_pixels",
    "enable_model_management",
)
#: Set by zoo's engine: the server stops when the process with this pid is gone.
PARENT_ENV = "ZOO_SERVE_PARENT_PID"


@dataclass
class ServerOptions:
    """The flags, under their tensorflow_model_server names, with its defaults."""

    port: int = 8500
    grpc_socket_path: str = ""  # also serve gRPC on this Unix socket
    grpc_channel_arguments: str = ""  # "name=value,name=value" gRPC arguments of the server
    rest_api_port: int = 0
    rest_api_timeout_in_ms: int = 30_000
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0  # re-read the config file this often; 0: never
    model_name: str = "default"
    model_base_path: str = ""
    prefer_tflite_model: bool = False  # serve model.tflite beside a SavedModel, if there is one
    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5  # a failed load is tried again this many times
    load_retry_interval_micros: int = 60_000_000  # ... this long apart
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_model_warmup: bool = True
    enable_grpc_healthcheck_service: bool = False
    enable_serialization_as_tensor_content: bool = False
    grpc_max_threads: int = 4 * (os.cpu_count() or 1)
    tensorflow_intra_op_parallelism: int = 0  # threads within one op; 0: TensorFlow's choice
    tensorflow_inter_op_parallelism: int = 0  # ops run at once; 0: TensorFlow's choice
    monitoring_config_file: str = ""
    ssl_config_file: str = ""
    host: str = "127.0.0.1"
    max_request_mb: int = 256  # one request's bytes, over gRPC or REST
    max_inflight_request_mb: int = 1024  # the bytes of all requests being served at once
    max_request_elements: int = 100_000_000  # elements one tensor may declare
    max_image_pixels: int = 50_000_000  # pixels an encoded image may declare
    enable_model_management: bool = False  # HandleReloadConfigRequest (also on with mTLS)

    def check(self) -> None:
        if not self.model_config_file and not self.model_base_path:
            raise ConfigError(
                "Both server_options.model_base_path and server_options.model_config_file are "
                "empty!"
            )
        if self.batching_parameters_file and not self.enable_batching:
            raise ConfigError(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true."
            )
        for name in ("tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} takes 0 (TensorFlow's choice) or more threads")
        for name in (
            "max_num_load_retries",
            "load_retry_interval_micros",
            "model_config_file_poll_wait_seconds",
            "rest_api_timeout_in_ms",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} takes 0 or more")
        channel_arguments(self.grpc_channel_arguments)  # refused here if malformed
        for name in (
            "model_config_file",
            "batching_parameters_file",
            "monitoring_config_file",
            "ssl_config_file",
        ):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ConfigError(f"--{name}={value}: no such file")


def channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """--grpc_channel_arguments ("grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb")
    as gRPC options: numbers as integers, the rest as strings, as TF Serving passes them."""
    arguments: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--grpc_channel_arguments: {item!r} is not name=value")
        arguments.append((name, int(value) if value.lstrip("-").isdigit() else value))
    return arguments


def parse_flags(argv: Sequence[str]) -> ServerOptions:
    """``--name=value`` flags (``--name value`` too), as ServerOptions; unknown ones refused."""
    known = {f.name: f for f in fields(ServerOptions)}
    options = ServerOptions()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}; flags look like --port=8500")
        name, sep, value = arg[2:].partition("=")
        field = known.get(name)
        if field is None:
            raise ConfigError(f"--{name}: the embedded server does not implement this flag")
        if field.type in ("bool", bool):
            if sep and value.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"--{name} takes true or false, got {value!r}")
            setattr(options, name, not sep or value.lower() in ("true", "1"))
            continue
        if not sep:
            if not args:
                raise ConfigError(f"--{name} needs a value")
            value = args.pop(0)
        try:
            setattr(options, name, int(value) if field.type in ("int", int) else value)
        except ValueError:
            raise ConfigError(f"--{name} takes a number, got {value!r}") from None
    options.check()
    return options


def to_flags(options: ServerOptions, *, zoo_flags: bool = True) -> list[str]:
    """The command line for ``options`` (flags left at their defaults are left out).

    ``zoo_flags`` False leaves out the embedded server's own flags, for the real
    tensorflow_model_server.
    """
    default = ServerOptions()
    flags = []
    for field in fields(ServerOptions):
        value = getattr(options, field.name)
        if field.name in ZOO_FLAGS and not zoo_flags:
            continue
        if value == getattr(default, field.name) and field.name != "port":
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        flags.append(f"--{field.name}={value}")
    return flags
