"""``python -m zoo.serve.server --port=8500 --model_config_file=...``: tensorflow_model_server's
command line, served by the embedded server.

The flags and config files are checked before TensorFlow is imported, so a mistake is
one line on standard error (and exit status 255), not one line among TensorFlow's logs.
"""

import logging
import sys

from zoo.errors import ZooError
from zoo.serve.config import read_model_config
from zoo.serve.options import parse_flags
from zoo.serve.server_files import BatchingOptions


def main() -> None:
    try:
        options = parse_flags(sys.argv[1:])
        if options.model_config_file:  # read as the server will, to fail before it starts
            read_model_config(options.model_config_file)
        if options.batching_parameters_file:
            BatchingOptions.from_file(options.batching_parameters_file)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(255)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from zoo.serve.server.app import run

    run(options)


main()
