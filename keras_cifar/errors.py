"""keras-cifar's errors: one hierarchy, so the CLI catches exactly these and nothing else.

Every error a user can cause or meet (a bad setting, a bad file, a busy or full disk, an
interrupt) is a `KerasCifarError`; the CLI maps each class to an exit code in one table
(`keras_cifar.cli.core.EXIT_CODES`). Any other exception is a bug and shows as one, traceback
included. Bad input subclasses `ValueError` as well, so library users can catch it as such.
No TensorFlow here.
"""

from __future__ import annotations

import signal


class KerasCifarError(Exception):
    """Base of every error keras-cifar raises on purpose."""


class ConfigError(KerasCifarError, ValueError):
    """A setting that cannot be used (learning rate, seeds, strategy...), with what was received."""


class ZooError(KerasCifarError, ValueError):
    """A zoo file, network or experiment that cannot be used, with where and why."""


class DataError(KerasCifarError, ValueError):
    """A data source that cannot be read as CIFAR-10, naming the file and what is wrong."""


class RunError(KerasCifarError, ValueError):
    """A run or output directory that cannot be used as asked (exists, differs, unwritable)."""


class RunMismatch(RunError):
    """A run directory holds a run of other settings (`differing` names them)."""

    def __init__(self, message: str, differing=()):
        super().__init__(message)
        self.differing = tuple(differing)


class RunInUse(RunError):
    """Another live process holds the run directory's lock."""


class DiskError(RunError):
    """A write failed for lack of space; the run keeps its last complete epoch."""


class ModelFileError(KerasCifarError, ValueError):
    """A model or image file that cannot be used, naming the file."""


class ImageError(KerasCifarError, ValueError):
    """An image file that cannot be read as an image (missing, a URL, too large, not an image),
    naming the file."""


class MissingDependency(KerasCifarError, ImportError):
    """An optional package a call needs is not installed; names the extra that installs it.

    Args:
        packages: the missing importable names, e.g. `["ray"]`.
        extra: the keras-cifar extra that installs them, e.g. `"ray"`.
        needed_for: what asked for them, e.g. `'executor="ray"'`.
    """

    def __init__(self, packages, extra: str, needed_for: str):
        self.packages, self.extra, self.needed_for = tuple(packages), extra, needed_for
        super().__init__(
            f"{needed_for} needs {', '.join(self.packages)}, which this Python lacks. Install "
            f"the {extra} extra: pip install \"keras-cifar[{extra}]\" (in a checkout: pip install "
            f"-e \".[{extra}]\"). Nothing was done. Received: missing={list(self.packages)}")


class ExportError(KerasCifarError, RuntimeError):
    """An export that failed after its inputs were checked; nothing was written."""


class TrainingError(KerasCifarError, RuntimeError):
    """Training stopped by a failure (a NaN loss); the run directory says `failed`.

    Attributes:
        epoch: the epoch (from 1) in which the loss diverged, where known.
    """

    def __init__(self, message: str, epoch: int | None = None):
        super().__init__(message)
        self.epoch = epoch


class TrainingInterrupted(KerasCifarError, RuntimeError):
    """Training stopped by Ctrl-C; `resume=True` continues from the last finished epoch."""


class RunsStopped(KerasCifarError, RuntimeError):
    """SIGINT or SIGTERM stopped a pool of runs; running the same command again continues."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"Stopped by {signal.Signals(signum).name}: no more runs were started "
                         "and the workers were stopped. Run the same command again to continue; "
                         "finished runs are skipped and interrupted ones resume.")
