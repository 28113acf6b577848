"""Every error and warning zoo raises on purpose, in one tree under ZooError and ZooWarning.

Every message says what went wrong and what to do about it; the CLI prints the message
as one line and exits non-zero (the traceback only under ``--debug``). Warnings under
ZooWarning are printed by the CLI as one clean line each.

    ZooError
    ├── SpecError (ValueError)        a backbone spec is malformed
    │   └── RegistryFileError         a registry.yaml file or one of its entries
    ├── UnknownBackboneError (KeyError)
    ├── DuplicateBackboneError
    ├── PluginError                   a broken plugin, under ZOO_STRICT_PLUGINS=1
    ├── WeightsError                  weights cannot be found, recognised or loaded
    │   └── DownloadError
    ├── ConfigError (ValueError)      a setting is out of range or inconsistent
    ├── DataError                     a data set cannot be used as given
    │   └── ImageError                one image file cannot be read
    ├── MetricsError (ValueError)     predictions that cannot be scored or plotted
    ├── RunDirError                   a run folder cannot be used as asked
    ├── FolderLockedError             another zoo process is writing that folder
    ├── TrainingError                 training cannot go on (a NaN loss, too little memory)
    ├── ExportError                   a run cannot be exported, or an export fails its check
    └── TrainingInterrupted           stopped by the user; the run can be resumed
    ZooWarning (UserWarning)
    ├── PluginWarning, RegistryFileWarning, WeightsWarning, DataWarning, TrainingWarning
"""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, for errors that quote a library's words."""
    return " ".join(str(getattr(exc, "message", None) or exc).split())


class ZooError(Exception):
    """Base class: an error the user can act on, as opposed to a bug."""


class SpecError(ZooError, ValueError):
    """A backbone spec (from a plugin or a registry file entry) is malformed."""


class RegistryFileError(SpecError):
    """A registry.yaml file is unreadable or one of its entries is invalid."""


class UnknownBackboneError(ZooError, KeyError):
    """No backbone of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateBackboneError(ZooError):
    """Two registrations claim the same backbone name."""


class PluginError(ZooError):
    """A plugin failed to import or raised in a hook (fatal under ZOO_STRICT_PLUGINS=1)."""


class WeightsError(ZooError):
    """Weights cannot be found, downloaded, verified, recognised or loaded."""


class DownloadError(WeightsError):
    """A weights download failed: offline, HTTP error, or checksum mismatch."""


class ConfigError(ZooError, ValueError):
    """A setting (of fine-tuning, of the synthetic data generator, ...) is out of range."""


class DataError(ZooError):
    """The data set cannot be used as given (no images, one class, an empty class, ...)."""


class ImageError(DataError):
    """An image file cannot be read or does not have the bands asked for."""


class MetricsError(ZooError, ValueError):
    """Predictions, labels or histories that cannot be scored or plotted as given."""


class RunDirError(ZooError):
    """A run folder cannot be used as asked (occupied, locked, or not a finished run)."""


class FolderLockedError(ZooError):
    """Another zoo process is writing the folder; the message names its process."""


class TrainingError(ZooError):
    """Training cannot go on as set up: the loss diverged, or the model cannot fit in memory."""


class ClusterMemberLost(TrainingError):
    """A member of a multi-worker cluster stopped answering during training."""


class ExportError(ZooError):
    """A run cannot be exported as asked, or the exported model failed its verification."""


class TrainingInterrupted(ZooError):
    """Training was interrupted; the run was checkpointed and can be resumed."""


class ZooWarning(UserWarning):
    """Something the user should know; the work goes on."""


class PluginWarning(ZooWarning):
    """A plugin was skipped; the rest of zoo keeps working."""


class RegistryFileWarning(ZooWarning):
    """The user's registry.yaml is broken; its backbones are left out."""


class WeightsWarning(ZooWarning):
    """Weights are used without a checksum to verify them."""


class DataWarning(ZooWarning):
    """Files were skipped; the run summary lists them."""


class TrainingWarning(ZooWarning):
    """A run will train, but perhaps not as the user expects."""
