"""The versions of zoo and the libraries it runs on, recorded with every run and export."""

from __future__ import annotations

import platform
import sys


def library_versions() -> dict[str, str]:
    """zoo, TensorFlow, Keras, numpy and Python versions, and the platform."""
    import keras
    import numpy
    import tensorflow

    from zoo import __version__

    return {
        "zoo": __version__,
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
