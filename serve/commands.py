"""``zoo serve`` and ``zoo predict``, added to the command line through the plugin hook.

zoo.serve is registered as a plugin (entry-point group ``zoo``), exactly as a third
party's package would be; the core never imports it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from zoo import hookimpl

DEFAULT_PORT = 8500
DEFAULT_REST_PORT = 8501


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(serve_command)
    cli.add_command(predict_command)
    cli.add_command(demo_command)


@click.command("serve")
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--engine",
    type=click.Choice(["auto", "tfserving", "docker", "embedded"]),
    default="auto",
    show_default=True,
    help="auto: tensorflow_model_server if installed, else docker, else embedded.",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="gRPC port.")
@click.option(
    "--rest-port", default=DEFAULT_REST_PORT, show_default=True, help="REST port (0: none)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--batching", is_flag=True, help="Batch concurrent requests on the server.")
@click.option("--gpu", is_flag=True, help="docker: the latest-gpu image with --gpus all.")
@click.option(
    "--intra-op-threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Threads within one TensorFlow op (0: TensorFlow's choice). On a CPU, 1 serves "
    "many concurrent clients faster.",
)
@click.option(
    "--poll",
    default=1,
    show_default=True,
    help="Seconds between scans for new versions (and, for a config file, for its changes).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    help="Where the config files go [default: a temporary folder].",
)
@click.option(
    "--emit",
    type=click.Choice(["compose", "k8s"]),
    help="Write deployment files for these models (docker compose or Kubernetes) instead of serving.",
)
@click.option(
    "--emit-to",
    type=click.Path(file_okay=False),
    help="Folder for --emit's files [default: deploy/compose or deploy/k8s].",
)
@click.option("--force", is_flag=True, help="--emit: replace files that differ.")
def serve_command(
    models: Sequence[str],
    engine: str,
    port: int,
    rest_port: int,
    host: str,
    batching: bool,
    gpu: bool,
    intra_op_threads: int,
    poll: int,
    workdir: str | None,
    emit: str | None,
    emit_to: str | None,
    force: bool,
) -> None:
    """Serve exported models on TF Serving's gRPC (and REST) API until Ctrl-C.

    MODELS are folders of models (BASE/NAME/<version>/), single models' folders, or a
    TF Serving model config file. With --emit, write a docker compose project or
    Kubernetes manifests that serve them on tensorflow/serving instead.
    """
    from zoo.serve.config import entries_for, read_model_config, write_model_config
    from zoo.serve.engines import choose, running
    from zoo.serve.options import ServerOptions
    from zoo.serve.server_files import write_server_files

    config_file = (
        Path(models[0]).resolve() if len(models) == 1 and Path(models[0]).is_file() else None
    )
    entries = read_model_config(config_file) if config_file else entries_for(models)
    if emit:
        from zoo.serve.deploy import DeploySettings
        from zoo.serve.deploy import emit as emit_files

        settings = DeploySettings(
            gpu=gpu,
            batching=batching,
            port=port,
            rest_port=rest_port or DEFAULT_REST_PORT,
            host=host,
            intra_op_threads=intra_op_threads,
        )
        out = Path(emit_to or Path("deploy") / emit)
        for path in emit_files(emit, entries, out, settings, force=force):
            click.echo(f"wrote {path}")
        return
    folder = Path(workdir or tempfile.mkdtemp(prefix="zoo-serve-"))
    folder.mkdir(parents=True, exist_ok=True)
    options = ServerOptions(
        port=port,
        rest_api_port=rest_port,
        host=host,
        file_system_poll_wait_seconds=poll,
        tensorflow_intra_op_parallelism=intra_op_threads,
        enable_grpc_healthcheck_service=True,  # for load balancers and Kubernetes probes
        # the user's config file itself, re-read as it changes; folders get one written here
        model_config_file=str(config_file or write_model_config(folder / "models.config", entries)),
        model_config_file_poll_wait_seconds=poll if config_file else 0,
    )
    write_server_files(options, folder, batching=batching, metrics=bool(rest_port))
    server = choose(engine, options, entries, gpu=gpu)
    click.echo(
        f"starting the {server.name} server for {', '.join(e.name for e in entries)} ...", err=True
    )
    try:
        with running(server, log=folder / "server.log"):
            address = f"{host}:{port}"
            click.echo(
                f"serving on grpc://{address}"
                + (f" and http://{host}:{rest_port}" if rest_port else "")
            )
            first = entries[0].name
            click.echo(f"  zoo predict IMAGE.png --server {address} --model {first}")
            if rest_port:
                click.echo(f"  curl http://{host}:{rest_port}/v1/models/{first}")
            click.echo(f"logs and config files: {folder}; Ctrl-C stops the server")
            while server.alive:
                time.sleep(0.5)
            click.echo(f"the server exited; see {folder / 'server.log'}", err=True)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@click.command("predict")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--server", "address", default=f"127.0.0.1:{DEFAULT_PORT}", show_default=True)
@click.option("--model", required=True, help="Model name on the server.")
@click.option("--version", "version_number", type=int, help="Version [default: the latest].")
@click.option("--label", help="Version label, instead of --version.")
@click.option("--signature", help="Signature [default: serving_default; the float one for FITS].")
@click.option("--top-k", default=3, show_default=True, help="Labels shown per file.")
@click.option("--bands", help="FITS bands to send, by index or name (as the model was trained).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate: use TLS.")
@click.option(
    "--cert", type=click.Path(exists=True, dir_okay=False), help="Client certificate (mutual TLS)."
)
@click.option(
    "--key", type=click.Path(exists=True, dir_okay=False), help="Client key (mutual TLS)."
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per request.")
@click.option(
    "--wait",
    default=0.0,
    show_default=True,
    help="Seconds to wait for the model (or --version) to be available, e.g. after starting a server.",
)
def predict_command(
    files: Sequence[str],
    address: str,
    model: str,
    version_number: int | None,
    label: str | None,
    signature: str | None,
    top_k: int,
    bands: str | None,
    as_json: bool,
    ca: str | None,
    cert: str | None,
    key: str | None,
    timeout: float,
    wait: float,
) -> None:
    """Predict with a served model on image FILES, over gRPC (labels, or values)."""
    from zoo.serve.client import TLS, ServingClient
    from zoo.serve.predict import predict_files, wait_for_model

    tls = TLS(Path(ca), Path(cert) if cert else None, Path(key) if key else None) if ca else None
    with ServingClient(address, timeout=timeout, tls=tls) as client:
        if wait:
            wait_for_model(client, model, version_number, wait)
        results = predict_files(
            client, [Path(f) for f in files], model, signature=signature, version=version_number,
            label=label, top_k=top_k, bands=bands,
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for result in results:
        click.echo(f"{result['file']}: {_shown(result)}  (version {result['version']})")


def _shown(result: dict[str, Any]) -> str:
    """A prediction on one line: top labels, a multi-label set, or named values."""
    if "values" in result:
        return ", ".join(f"{name} {_number(value)}" for name, value in result["values"].items())
    best = ", ".join(f"{name} {score:.3f}" for name, score in result["top"])
    if "labels" in result:
        return f"labels: {', '.join(result['labels']) or '(none)'}; scores {best}"
    return best


def _number(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.3f}" for v in value) + "]"
    return f"{value:.3f}"


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="zoo-demo",
    show_default=True,
    help="Where the data, run, export and server files go (new, empty or an earlier demo's).",
)
@click.option(
    "--keep-serving", is_flag=True, help="Keep the server up after the table, until Ctrl-C."
)
@click.option("--per-class", default=100, show_default=True, help="Synthetic images per class.")
@click.option("--size", default=64, show_default=True, help="Image size in pixels.")
@click.option("--seed", default=0, show_default=True, help="Seed of the images and the run.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="gRPC port, if free.")
@click.option(
    "--rest-port", default=DEFAULT_REST_PORT, show_default=True, help="REST port, if free."
)
def demo_command(
    workdir: str,
    keep_serving: bool,
    per_class: int,
    size: int,
    seed: int,
    port: int,
    rest_port: int,
) -> None:
    """The whole path in a few minutes: synthetic galaxies, fine-tune, export, serve, predict.

    Prints the served model's accuracy per class beside the run's test accuracy (they must
    be equal), the serving latency, and where everything is. The server stops when the
    demo ends, fails or is interrupted; with --keep-serving it stays up until Ctrl-C.
    """
    from zoo.errors import ZooError
    from zoo.serve.demo import DemoResult, run_demo
    from zoo.serve.engines import Engine

    def report(result: DemoResult, server: Engine) -> None:
        click.echo("")
        click.echo(
            f"model '{result.model}' version {result.version} on the {result.engine} server, "
            f"grpc://{result.address}; the run's test split:"
        )
        for line in result.table():
            click.echo(f"  {line}")
        click.echo("")
        for name, where in result.paths.items():
            click.echo(f"  {name + ':':<12} {where}")
        if not keep_serving:
            return
        image = next(Path(result.paths["data"]).glob("*/*.png"))
        click.echo("")
        click.echo("try, from another shell:")
        click.echo(f"  zoo predict {image} --server {result.address} --model {result.model}")
        click.echo(
            f'  curl -d \'{{"instances": [{{"b64": "\'$(base64 -w0 {image})\'"}}]}}\' '
            f"http://{result.rest_address}/v1/models/{result.model}:predict"
        )
        click.echo("serving until Ctrl-C", err=True)
        while server.alive:
            time.sleep(0.5)
        raise ZooError(f"the server exited; see {result.paths['server log']}")

    try:
        run_demo(
            Path(workdir), per_class=per_class, size=size, seed=seed, port=port,
            rest_port=rest_port, on_serving=report, say=lambda line: click.echo(line, err=True),
        )  # fmt: skip
    except KeyboardInterrupt:
        click.echo("stopped; the server is down", err=True)
        if not keep_serving:
            raise
