"""Run directories: file names, names, statuses, config.json/history/metrics readers, and the
checks that guard resuming. Atomic writes and the lock are `keras_cifar._fs`'s.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from keras_cifar._fs import LOCK
from keras_cifar.errors import RunError, RunMismatch
from keras_cifar.zoo import TrainSettings

CONFIG = "config.json"
HISTORY = "history.csv"
MODEL = "model.keras"
SUMMARY = "summary.txt"
PARAMETERS = "parameters.txt"
METRICS = "metrics.json"
CURVES = "curves.png"
KERNELS = "kernels.png"
CONFUSION = "confusion.png"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"


class RunStatus(str, enum.Enum):
    """A run directory's state, stored as its value in config.json's `status` (a failed run's
    reason goes beside it, under `error`)."""

    NOT_STARTED = "not started"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    FINISHED = "finished"

    def __str__(self) -> str:
        return self.value


STATUS_RUNNING = RunStatus.RUNNING
STATUS_FINISHED = RunStatus.FINISHED
STATUS_INTERRUPTED = RunStatus.INTERRUPTED


def config_hash(identity: dict) -> str:
    """Returns an 8-hex-digit hash of a run's identity (canonical JSON)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def number_label(value: float) -> str:
    """A setting as a name shows it: `%g` where that reads back as the same number (0.01,
    1e-05), else the shortest exact form (0.9999999, not %g's 1)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def settings_label(network_id: str, lr: float, momentum: float, epochs: int) -> str:
    """The readable part of every run directory's name: `cnn3-lr0.01-m0.9-e20`."""
    return f"{network_id}-lr{number_label(lr)}-m{number_label(momentum)}-e{epochs}"


def run_dir_name(label: str, seed: int = 0) -> str:
    """The run directory of a reproduction's experiment (label: its id) or a sweep's point
    (label: `settings_label`), plus `-s<seed>` for seeds other than 0."""
    return label if seed == 0 else f"{label}-s{seed}"


def run_name(identity: dict) -> str:
    """Returns the name of a single `train` run: its settings label, seed and identity hash.

    Example: `cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d`. The hash keeps runs of other data or settings
    (batch size, init, limit, precision) apart.
    """
    label = settings_label(identity["network"]["id"], identity["lr"], identity["momentum"],
                           identity["epochs"])
    return f"{label}-s{identity['seed']}-{config_hash(identity)}"


def identity_differences(saved: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Returns the dotted keys whose values differ between two identities."""
    keys = []
    for key in sorted(set(saved) | set(wanted)):
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(identity_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


@dataclass(frozen=True)
class SavedRun:
    """A run directory's config.json, read once (`read_run`), with the fields its readers need.

    Attributes:
        run_dir: the directory.
        config: config.json as saved: `identity` (what defines the run), `status`, `data` (the
            loaded data's description), `speed`, `versions`, `started`, ...
    """

    run_dir: Path
    config: dict

    @property
    def identity(self) -> dict:
        return self.config.get("identity", {})

    @property
    def status(self) -> RunStatus:
        return _status(self.config.get("status", RunStatus.NOT_STARTED.value), self.run_dir)

    @property
    def network_id(self) -> str | None:
        return self.identity.get("network", {}).get("id")

    @property
    def backend(self) -> str:
        """The Keras backend it trained on (identities name it off TensorFlow only)."""
        return self.identity.get("backend", "tensorflow")

    @property
    def train(self) -> TrainSettings | None:
        """The SGD settings it ran with, or None if its identity lacks them."""
        try:
            return TrainSettings.from_dict(self.identity)
        except (TypeError, ValueError):
            return None

    @property
    def lr(self) -> float | None:
        return self.identity.get("lr")

    @property
    def momentum(self) -> float | None:
        return self.identity.get("momentum")

    @property
    def seed(self) -> int:
        return int(self.identity.get("seed", 0))

    @property
    def limit(self) -> int | None:
        return self.identity.get("limit")

    @property
    def data(self) -> dict:
        """What it trained on: the data's description (`CifarData.describe`)."""
        return self.config.get("data", {})

    @property
    def is_cifar10(self) -> bool:
        return bool(self.data.get("is_cifar10", self.identity.get("data", {}).get("is_cifar10", True)))

    @property
    def started(self) -> str:
        return str(self.config.get("started", ""))

    @property
    def diverged_epoch(self) -> int | None:
        """The epoch (from 1) whose loss became NaN, for a run that diverged; else None."""
        if self.config.get("status") != RunStatus.FAILED.value:
            return None
        epoch = self.config.get("diverged_epoch")
        return int(epoch) if epoch is not None else None


def diverged_epoch(run_dir: str | os.PathLike) -> int | None:
    """The epoch (from 1) in which the run in `run_dir` diverged, or None (no run there, or one
    that did not diverge)."""
    try:
        return read_run(run_dir).diverged_epoch
    except RunError:
        return None


def read_run(run_dir: str | os.PathLike) -> SavedRun:
    """Returns a run directory's config.json as a `SavedRun`.

    Raises:
        RunError: the directory holds no readable config.json.
    """
    return SavedRun(Path(run_dir), read_config(run_dir))


def read_config(run_dir: str | os.PathLike) -> dict:
    """Returns a run's config.json.

    Raises:
        RunError: the directory holds no readable config.json.
    """
    return _read_json(Path(run_dir) / CONFIG,
                      f"{run_dir} is not a keras-cifar run directory: it has no {CONFIG}.")


def _read_json(path: Path, missing: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(missing) from None
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"Cannot read {path}: {e}. The run directory is damaged; train it again "
                       "with `force=True`.") from None


def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Returns a run's history.csv as one dict of floats per epoch (epoch counted from 0).

    Raises:
        RunError: the directory has no history.csv or it holds no epoch.
    """
    path = Path(run_dir) / HISTORY
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k: float(v) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]
    except FileNotFoundError:
        raise RunError(f"{run_dir} has no {HISTORY}: it is not a run directory, or its run "
                       "stopped before finishing an epoch.") from None
    except (OSError, ValueError) as e:
        raise RunError(f"Cannot read {path}: {e}.") from None
    if not rows:
        raise RunError(f"{path} holds no finished epoch yet.")
    return rows


def check_history(run_dir: str | os.PathLike, epochs_done: int) -> None:
    """Checks, before a run resumes, that history.csv holds one readable row for each of the
    `epochs_done` epochs its checkpoint has trained, epoch 0 first (rows past them are the
    resume's to drop, `truncate_history`).

    Raises:
        RunError: the file is missing, a line is not a history row, or rows are missing or out
            of order; the message names the line or the epochs. Nothing is changed.
    """
    path = Path(run_dir) / HISTORY
    if epochs_done == 0:
        return
    fix = ("Restore it from a copy, or train the run again from scratch with `force=True`; "
           "the checkpoint alone cannot rebuild the history.")
    if not path.exists():
        raise RunError(f"{path} is missing, but the run's checkpoint has trained {epochs_done} "
                       f"epoch(s). {fix}")
    epochs = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                epochs.append(int(float(row["epoch"])))
                [float(v) for k, v in row.items() if k is not None and v not in ("",)]
            except (KeyError, TypeError, ValueError):
                raise RunError(f"{path}, line {line}, is not a history row (it was edited or "
                               f"damaged). {fix} Received: {row!r}") from None
    kept = [e for e in epochs if e < epochs_done]
    if kept != list(range(epochs_done)):
        missing = sorted(set(range(epochs_done)) - set(kept))
        raise RunError(f"{path} does not match the run's checkpoint, which has trained "
                       f"{epochs_done} epoch(s): the rows of epochs {missing or 'in order'} are "
                       f"missing (a row was removed or moved by hand). {fix} Received: "
                       f"epochs={epochs}")


def truncate_history(run_dir: str | os.PathLike, epochs_kept: int) -> None:
    """Keeps the header and the rows of epochs before `epochs_kept` in history.csv.

    Truncates in place (one `truncate` call), so a logger that holds the file open for
    appending goes on writing at the new end.
    """
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return
    with open(path, "r+", newline="", encoding="utf-8") as f:
        lines = f.readlines()
        if not lines:
            return
        header = next(csv.reader([lines[0]]))
        column = header.index("epoch") if "epoch" in header else 0
        keep = 1
        for line in lines[1:]:
            row = next(csv.reader([line]), [])
            if not row or int(float(row[column])) >= epochs_kept:
                break
            keep += 1
        f.seek(0)
        f.truncate(len("".join(lines[:keep]).encode("utf-8")))


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """Returns a run's metrics.json.

    Raises:
        RunError: it is missing or unreadable.
    """
    return _read_json(Path(run_dir) / METRICS, f"{run_dir} has no {METRICS}: the run has not finished.")


def run_status(run_dir: str | os.PathLike) -> RunStatus:
    """Returns the state its config.json records; NOT_STARTED when there is none."""
    try:
        stored = read_config(run_dir).get("status", RunStatus.NOT_STARTED.value)
    except RunError:
        return RunStatus.NOT_STARTED
    return _status(stored, run_dir)


def _status(stored, run_dir) -> RunStatus:
    try:
        return RunStatus(stored)
    except ValueError:
        raise RunError(f"{Path(run_dir) / CONFIG} records an unknown run status; expected one of "
                       f"{[s.value for s in RunStatus]}. Received: status={stored!r}") from None


def prepare_run_dir(run_dir: Path, identity: dict, *, resume=False, force=False,
                    reuse_finished=False) -> None:
    """Checks that the (locked) run directory may be (re)used; with `force`, empties it.

    `reuse_finished` lets a finished run of the same identity through without `resume`.

    Raises:
        RunError: it holds another run (naming the keys that differ), or a finished or
            unfinished run and neither `resume` nor `force` (nor, for a finished one,
            `reuse_finished`) was given.
    """
    contents = [p for p in run_dir.iterdir() if p.name != LOCK] if run_dir.exists() else []
    if force:
        for path in contents:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        return
    if not (run_dir / CONFIG).exists():
        if (run_dir / BACKUP_DIR).is_dir() and any((run_dir / BACKUP_DIR).iterdir()):
            raise RunError(f"{run_dir} holds checkpoints ({BACKUP_DIR}/) but no {CONFIG}, so "
                           "its settings cannot be checked against these. Restore its "
                           f"{CONFIG} from a copy to resume it; `force=True` deletes the "
                           "checkpoints and trains from scratch.")
        if contents:
            raise RunError(f"{run_dir} exists and is not an empty run directory; choose "
                           "another `name` or `out_dir`, or pass `force=True` to replace it.")
        return
    saved = read_config(run_dir)
    differing = identity_differences(saved.get("identity", {}), identity)
    if "backend" in differing:
        ran = saved.get("identity", {}).get("backend", "tensorflow")
        now = identity.get("backend", "tensorflow")
        raise RunMismatch(
            f"{run_dir} was trained on the {ran} backend and this process runs {now}; a run "
            f"continues on the backend it started on. Use `backend=\"{ran}\"` for it, or "
            "another `name` for a new run (its finished model.keras loads on any backend).",
            differing)
    if differing:
        raise RunMismatch(
            f"{run_dir} holds a different run; these settings differ: {', '.join(differing)}. "
            "Use another `name`, or `force=True` to replace it.", differing)
    status = saved.get("status", "")
    if not resume and not (reuse_finished and status == STATUS_FINISHED):
        what = "a finished run" if status == STATUS_FINISHED else f"an unfinished run ({status})"
        raise RunError(f"{run_dir} already holds {what}; pass `resume=True` to continue it or "
                       "`force=True` to train it again from scratch.")
