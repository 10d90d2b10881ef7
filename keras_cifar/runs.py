"""Run directories: names, file names, atomic writes, and the checks that guard resuming."""

from __future__ import annotations

import contextlib
import csv
import enum
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from keras_cifar.errors import DiskError, RunError, RunInUse  # noqa: F401  (re-exported)

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
LOCK = ".lock"  # held (flock) by the one process that writes the directory



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


def child_path(root: str | os.PathLike, name: str, what: str = "run directory") -> Path:
    """Returns `root/name`, refusing a `name` that would lead outside `root`.

    Raises:
        RunError: `name` is empty, absolute, or resolves outside `root` (`..`, links).
    """
    root = Path(root)
    candidate = root / name
    inside = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(candidate))
    if not name or Path(name).is_absolute() or resolved == inside or inside not in resolved.parents:
        raise RunError(f"The {what} name must stay inside {root}: a plain name, no '..', no "
                       f"absolute path. Received: name={name!r}")
    return candidate


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Checks that `path` can be a directory this process writes into (it may not exist yet).

    Raises:
        RunError: it is an existing file, or neither it nor its nearest existing parent is a
            writable directory (read-only filesystem, permissions).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{option} must be a directory, but {path} is a file. Choose a directory. "
                       f"Received: {option}={str(path)!r}")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise RunError(f"{option} cannot be created: {existing} is a file. Received: "
                       f"{option}={str(path)!r}")
    _require_writable(existing, option, path)
    return path


def _nearest_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (what a mkdir -p would write into)."""
    while not path.exists():
        path = path.parent
    return path


def _require_writable(folder: Path, option: str, path: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunError(f"Cannot write into {folder}: it is read-only for this process (a "
                       f"read-only filesystem or missing permissions). Received: "
                       f"{option}={str(path)!r}")


def check_output_file(path: str | os.PathLike, option: str = "--output") -> Path:
    """Checks that a file can be written at `path`: its folder exists and is writable, and
    `path` is not a directory.

    Raises:
        RunError: as `check_output_dir`, or the folder does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise RunError(f"{option} must be a file name, but {path} is a directory. Received: "
                       f"{option}={str(path)!r}")
    parent = path.parent
    if not parent.is_dir():
        raise RunError(f"The folder {parent} does not exist; create it first or write elsewhere. "
                       f"Received: {option}={str(path)!r}")
    _require_writable(parent, option, path)
    return path


def check_free_space(path: str | os.PathLike, needed_bytes: int, what: str) -> None:
    """Raises DiskError unless the filesystem of `path` (or its nearest existing parent) has
    `needed_bytes` free, saying how much is needed and how much there is."""
    existing = _nearest_existing(Path(path))
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise DiskError(f"Not enough free space in {existing}: {what} needs about "
                        f"{needed_bytes / 2**20:.0f} MiB, {free / 2**20:.0f} MiB are free. Free "
                        "some space or choose another --out.")


def is_disk_full(error: BaseException) -> bool:
    """Whether an exception is (or wraps) a full disk or quota."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def lock_run_dir(run_dir: str | os.PathLike, what: str = "run") -> Iterator[Path]:
    """Holds an exclusive OS lock (`flock`) on `run_dir/.lock` for the duration.

    The lock dies with its process, so a killed run never blocks a `--resume`. The lock file
    records the holder's PID and host for the message another process gets. A directory this
    call created is removed again if it holds nothing but the lock file when the block ends
    with an error, so a refused run leaves no empty directory.

    Raises:
        RunInUse: another live process holds it.
    """
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise RunInUse(
                f"The {what} {run_dir} is in use by another keras-cifar process ({holder}). "
                "Wait for it to finish, or stop it and continue with the same command plus "
                "--resume; its lock ends with the process."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        try:
            yield run_dir
        except BaseException:
            if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    finally:
        os.close(fd)


def config_hash(identity: dict) -> str:
    """Returns an 8-hex-digit hash of a run's identity (canonical JSON)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def settings_label(network_id: str, lr: float, momentum: float, epochs: int) -> str:
    """The readable part of every run directory's name: `cnn3-lr0.01-m0.9-e20`."""
    return f"{network_id}-lr{lr:g}-m{momentum:g}-e{epochs}"


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


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = "") -> None:
    """Writes a file through `write(temporary_path)` in the same folder, then renames it into
    place: readers see the old file or the new one, never a half-written one. The folder is
    created if missing; the temporary file is removed if `write` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename, never half-written."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_save_model(model, path: str | os.PathLike) -> None:
    """Saves a Keras model to a `.keras` file atomically."""
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")


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
                       "with --force.") from None


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
    """Returns the state its config.json records; NOT_STARTED when there is none.

    Runs written before states were an enum stored a failure as `failed: <reason>`; that
    reads as FAILED.
    """
    try:
        stored = read_config(run_dir).get("status", RunStatus.NOT_STARTED.value)
    except RunError:
        return RunStatus.NOT_STARTED
    if str(stored).startswith("failed:"):
        return RunStatus.FAILED
    try:
        return RunStatus(stored)
    except ValueError:
        raise RunError(f"{Path(run_dir) / CONFIG} records an unknown run status; expected one of "
                       f"{[s.value for s in RunStatus]}. Received: status={stored!r}") from None


def prepare_run_dir(run_dir: Path, identity: dict, *, resume=False, force=False) -> None:
    """Checks that the (locked) run directory may be (re)used; with `force`, empties it.

    Raises:
        RunError: it holds another run (naming the keys that differ), or a finished or
            unfinished run and neither `resume` nor `force` was given.
    """
    contents = [p for p in run_dir.iterdir() if p.name != LOCK] if run_dir.exists() else []
    if force:
        for path in contents:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        return
    if not (run_dir / CONFIG).exists():
        if contents:
            raise RunError(f"{run_dir} exists and is not an empty run directory; choose "
                                "another --name or --out, or pass --force to replace it.")
        return
    saved = read_config(run_dir)
    differing = identity_differences(saved.get("identity", {}), identity)
    if differing:
        raise RunError(
            f"{run_dir} holds a different run; these settings differ: {', '.join(differing)}. "
            "Use another --name, or --force to replace it."
        )
    status = saved.get("status", "")
    if not resume:
        what = "a finished run" if status == STATUS_FINISHED else f"an unfinished run ({status})"
        raise RunError(f"{run_dir} already holds {what}; pass --resume to continue it or "
                            "--force to train it again from scratch.")
