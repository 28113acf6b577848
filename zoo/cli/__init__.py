"""The ``zoo`` command line: parse, call one function of the core, print.

One module per command group; each is added here the way a plugin adds its own
(``register_commands(cli)``, see ``zoo.hookspecs``). Listing and inspecting (``zoo
list``, ``zoo info``, ``zoo plugins``, ``zoo --help``) never import TensorFlow.
"""

from __future__ import annotations

from zoo.cli.app import cli, main
from zoo.cli.data import data_group
from zoo.cli.embed import embed_command, similar_command
from zoo.cli.export import export_command
from zoo.cli.registry import info_command, list_command, plugins_command
from zoo.cli.train import evaluate_command, finetune_command
from zoo.cli.weights import weights_group

for _command in (
    list_command,
    info_command,
    plugins_command,
    weights_group,
    data_group,
    finetune_command,
    evaluate_command,
    export_command,
    embed_command,
    similar_command,
):
    cli.add_command(_command)

__all__ = ["cli", "main"]
