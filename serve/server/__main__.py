"""``python -m zoo.serve.server --port=8500 --model_config_file=...``: tensorflow_model_server's
command line, served by the embedded server.

The flags and config files are checked before TensorFlow is imported, so a mistake is
one line on standard error (and exit status 255), not one line among TensorFlow's logs.
"""

import logging
import sys

from zoo.errors import ZooError
from zoo.serve.options import parse_flags


def main() -> None:
    try:
        options = parse_flags(sys.argv[1:])
        options.read_files()
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(255)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from zoo.serve.server.app import run

    run(options)


main()
