"""The errors zoo raises on purpose.

Every message says what went wrong and what to do about it; the CLI prints the message
as one line and exits non-zero (the traceback only under ``--debug``).
"""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, for errors that quote a library's words."""
    return " ".join(str(getattr(exc, "message", None) or exc).split())


class ZooError(Exception):
    """Base class: an error the user can act on, as opposed to a bug."""


class SpecError(ZooError, ValueError):
    """A backbone spec (from a plugin or a catalog entry) is malformed."""


class CatalogError(SpecError):
    """A registry.yaml file is unreadable or one of its entries is invalid."""


class UnknownBackboneError(ZooError, KeyError):
    """No backbone of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateBackboneError(ZooError):
    """Two registrations claim the same backbone name."""


class WeightsError(ZooError):
    """Weights cannot be found, downloaded, verified, recognised or loaded."""


class DownloadError(WeightsError):
    """A weights download failed: offline, HTTP error, or checksum mismatch."""


class PluginError(ZooError):
    """A plugin failed to import or raised while registering (fatal under ZOO_STRICT_PLUGINS=1)."""


class PluginWarning(UserWarning):
    """A plugin was skipped; the rest of zoo keeps working."""
