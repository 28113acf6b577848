"""The ``zoo`` command group: one-line errors, quiet output, and commands from plugins.

Errors are one line on stderr and a non-zero exit; ``--debug`` (or ``ZOO_DEBUG=1``)
shows the traceback instead. A user sees zoo's own progress, warnings (one line each)
and results; TensorFlow's start-up logs and other libraries' warnings appear only with
``--verbose`` or ``--debug``. Plugins add commands through ``register_commands(cli)``;
they are looked up the first time a command is, so ``zoo --help`` lists them too.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from zoo.errors import PluginWarning, ZooError, ZooWarning

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class ZooGroup(click.Group):
    """The root group: turns errors into one line and takes commands from plugins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_commands_loaded = False

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
            raise
        except Exception as exc:
            if ctx.meta.get("zoo.debug"):
                raise
            click.echo(f"error: {error_line(exc)}", err=True)
            ctx.exit(EXIT_ERROR)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self.load_plugin_commands()
        return super().get_command(ctx, name)

    def load_plugin_commands(self) -> None:
        """Let each working plugin add commands; none may replace a command already here."""
        if self._plugin_commands_loaded:
            return
        self._plugin_commands_loaded = True
        from zoo.plugin_loader import get_plugins

        plugins = get_plugins()
        for info in plugins.working():
            before = dict(self.commands)
            try:
                plugins.call("register_commands", info, cli=self)
            except Exception as exc:
                self.commands = before  # none of a failing plugin's commands
                plugins.fail(info, exc, "its commands are unavailable")
                continue
            for name, command in before.items():
                if self.commands.get(name) is not command:
                    self.commands[name] = command
                    warnings.warn(
                        f"plugin '{info.name}' tried to replace the command 'zoo {name}'; "
                        "it is kept as it was",
                        PluginWarning,
                        stacklevel=2,
                    )


def error_line(exc: BaseException) -> str:
    """The one line the CLI prints for an error: zoo's own message, or the kind of a bug."""
    if isinstance(exc, ZooError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo", prog_name="zoo")
@click.option(
    "--debug",
    is_flag=True,
    envvar="ZOO_DEBUG",
    help="Show full tracebacks and every library's logs.",
)
@click.option(
    "--verbose", "-v", is_flag=True, help="Show TensorFlow's logs and other libraries' warnings."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """zoo: image backbones to fine-tune, export and serve on TensorFlow Serving."""
    ctx.meta["zoo.debug"] = debug
    quiet_libraries(not (debug or verbose))


def quiet_libraries(quiet: bool) -> None:
    """Keep TensorFlow's C++ start-up lines and other libraries' warnings off the screen.

    Runs before any command imports TensorFlow, which reads the variables when it loads.
    """
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # logs after start-up, at least
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # e.g. "retracing" notes
        warnings.showwarning = _show_zoo_warnings_only
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        logging.getLogger("tensorflow").setLevel(logging.NOTSET)
        warnings.showwarning = _show_every_warning


def _show_zoo_warnings_only(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, ZooWarning):
        click.echo(f"warning: {message}", err=True)


def _show_every_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, ZooWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _library_showwarning(message, category, filename, lineno, file, line)


_library_showwarning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_zoo_warnings_only  # until the options are read
    args = list(argv) if argv is not None else sys.argv[1:]
    if not _asks_for_logs(args):
        from zoo.cli.quiet import filter_cpp_logs

        filter_cpp_logs()
    try:
        cli.main(args=args, prog_name="zoo")
    except BrokenPipeError:  # `zoo list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except ZooError as exc:  # raised while click built the help, before any command ran
        if _asks_for_logs(args):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


def _asks_for_logs(args: Sequence[str]) -> bool:
    """--debug, --verbose or ZOO_DEBUG among the options before the command name."""
    for arg in args:
        if not arg.startswith("-"):
            break  # the command's own options are its own
        if arg in ("--debug", "--verbose", "-v"):
            return True
    return os.environ.get("ZOO_DEBUG", "").lower() in {"1", "true", "yes", "on"}
