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
    path = Path(run_dir) / CONFIG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{run_dir} is not a keras-cifar run directory: it has no {CONFIG}.") from None
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"Cannot read {path}: {e}. The run directory is damaged; retrain it with "
                       "--force.") from None


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
    """Keeps the header and the first `epochs_kept` epochs of history.csv (for a resume)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    epoch_col = header.index("epoch") if "epoch" in header else None
    kept = [r for r in body if epoch_col is None or (r and int(float(r[epoch_col])) < epochs_kept)]

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([header, *kept])

    _atomic(path, write)


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """Returns a run's metrics.json.

    Raises:
        RunError: it is missing or unreadable.
    """
    path = Path(run_dir) / METRICS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{run_dir} has no {METRICS}: the run has not finished.") from None
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"Cannot read {path}: {e}.") from None


def run_status(run_dir: str | os.PathLike) -> str:
    """Returns `finished`, `running`, `interrupted`, `failed: ...`, or `not started`."""
    try:
        return read_config(run_dir).get("status", "not started")
    except RunError:
        return "not started"
