"""Run directories: names, file names, atomic writes, and the checks that guard resuming."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

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

STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_INTERRUPTED = "interrupted"


class RunError(ValueError):
    """A run directory that cannot be used as asked (exists, differs, or is incomplete)."""

    cli_exit_code = 2  # a usage error


def config_hash(identity: dict) -> str:
    """Returns an 8-hex-digit hash of a run's identity (canonical JSON)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_name(identity: dict) -> str:
    """Returns a readable run name: network, lr, momentum, epochs, seed and the identity hash.

    Example: `cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d`.
    """
    return (
        f"{identity['network']['id']}-lr{identity['lr']:g}-m{identity['momentum']:g}"
        f"-e{identity['epochs']}-s{identity['seed']}-{config_hash(identity)}"
    )


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


def _atomic(path: Path, write: Callable[[str], None], suffix: str = "") -> None:
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
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_save_model(model, path: str | os.PathLike) -> None:
    """Saves a Keras model to a `.keras` file atomically."""
    _atomic(Path(path), lambda tmp: model.save(tmp), suffix=".keras")


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


def run_status(run_dir: str | os.PathLike) -> str:
    """Returns `finished`, `running`, `interrupted`, `failed: ...`, or `not started`."""
    try:
        return read_config(run_dir).get("status", "not started")
    except RunError:
        return "not started"
