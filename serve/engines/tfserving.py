"""The real ``tensorflow_model_server`` as an engine, driven by the same flags and files.

It binds every interface (it has no host flag) and does not know zoo's own flags, which
are left out of its command line.
"""

from __future__ import annotations

import shutil

from zoo.serve.engines.base import BINARY, Engine
from zoo.serve.options import to_flags


class TFServingEngine(Engine):
    name = "tfserving"

    def command(self) -> list[str]:
        return [shutil.which(BINARY) or BINARY, *to_flags(self.options, zoo_flags=False)]
