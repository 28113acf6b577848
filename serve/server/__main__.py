"""``python -m zoo.serve.server --port=8500 --model_config_file=...``: tensorflow_model_server's
command line, served by the embedded server."""

import logging
import sys

from zoo.errors import ZooError
from zoo.serve.options import parse_flags
from zoo.serve.server.app import run

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
try:
    options = parse_flags(sys.argv[1:])
except ZooError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(255)
run(options)
