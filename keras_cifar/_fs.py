"""Files that are never half-written, and folders only one process writes: atomic writes,
output checks, free-space checks and an OS lock. No TensorFlow, nothing run-specific.
"""

from __future__ import annotations

import contextlib
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

from keras_cifar.errors import DiskError, RunError, RunInUse

LOCK = ".lock"  # held (flock) by the one process that writes the directory


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


def check_output_dir(path: str | os.PathLike, option: str = "out_dir") -> Path:
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


def check_output_file(path: str | os.PathLike, option: str = "path") -> Path:
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
                        "some space or choose another `out_dir`.")


def is_disk_full(error: BaseException) -> bool:
    """Whether an exception is (or wraps) a full disk or quota."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


RESUME_HINT = "stop it and continue with the same call plus `resume=True`"
RERUN_HINT = ("stop it and run the same command again: finished runs are skipped and "
              "interrupted ones resume")


@contextlib.contextmanager
def lock_run_dir(run_dir: str | os.PathLike, what: str = "run",
                 then: str = RESUME_HINT) -> Iterator[Path]:
    """Holds an exclusive OS lock (`flock`) on `run_dir/.lock` for the duration.

    The lock dies with its process, so a killed run never blocks a resume. The lock file
    records the holder's PID and host for the message another process gets, which ends with
    `then` (how to continue: `RESUME_HINT` for a run, `RERUN_HINT` for a sweep's or a
    reproduction's folder, whose commands resume by themselves). A directory this
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
                f"Wait for it to finish, or {then}; its lock ends with the process."
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


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (`hashlib` algorithm name), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
