"""The decode cache: decoded CIFAR-10 arrays as `.npz` files keyed by their source's identity.

Every entry carries a checksum of its arrays, verified on each load; a damaged entry is
discarded with a warning and the source decoded again, never trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from keras_cifar import _fs
from keras_cifar.data.cifar import CLASS_NAMES, CifarData, fingerprint_arrays

CACHE_DIR_ENV_VAR = "KERAS_CIFAR_CACHE_DIR"
CACHE_FORMAT = 2  # bump when the decoded layout changes, so old cache entries are not trusted


def cache_dir() -> Path:
    """Returns the decode cache: `$KERAS_CIFAR_CACHE_DIR`, else `$XDG_CACHE_HOME/keras-cifar`,
    else `~/.cache/keras-cifar`."""
    configured = os.environ.get(CACHE_DIR_ENV_VAR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras-cifar"


def source_identity(path: Path) -> str:
    """A key that changes when any file of the source changes (path, size, mtime)."""
    digest = hashlib.sha256(f"v{CACHE_FORMAT}|{path.resolve()}".encode())
    if path.is_file():
        st = path.stat()
        digest.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                digest.update(f"|{dirpath}/{name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def _cache_file(key: str) -> Path:
    return cache_dir() / f"cifar10-{key}.npz"


def _cache_problem(arrays: list[np.ndarray], meta: dict) -> str | None:
    """What is wrong with a cache entry's arrays, or None: shapes, dtypes, label range, and
    the checksum (the data fingerprint) recomputed over the arrays."""
    train_images, train_labels, test_images, test_labels = arrays
    for name, images, labels in (("train", train_images, train_labels),
                                 ("test", test_images, test_labels)):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            return f"{name} images of shape {images.shape} and dtype {images.dtype}"
        if labels.ndim != 1 or len(labels) != len(images):
            return f"{len(labels)} {name} labels for {len(images)} images"
        if len(labels) and not (0 <= labels.min() and labels.max() < len(CLASS_NAMES)):
            return f"{name} labels outside 0-9"
    if fingerprint_arrays(*arrays) != meta.get("checksum"):
        return "its checksum does not match its arrays"
    return None


def read_cache(key: str) -> CifarData | None:
    """Returns the cached data, or None when there is no entry or it fails a check (then it
    is removed, with a one-line warning, and the caller decodes the source again)."""
    path = _cache_file(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = [npz[name] for name in ("train_images", "train_labels", "test_images", "test_labels")]
        problem = _cache_problem(arrays, meta)
        meta.pop("checksum", None)
    except Exception as e:  # np.load raises many types for a damaged zip (BadZipFile, EOFError...)
        problem = f"unreadable ({type(e).__name__}: {str(e)[:80]})"
    if problem is None:
        return CifarData(*arrays, class_names=CLASS_NAMES, **meta)
    warnings.warn(f"Discarding the damaged data cache {path}: {problem}; decoding the source "
                  "again.", stacklevel=3)
    with contextlib.suppress(OSError):
        path.unlink()
    return None


STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a killed writer


def remove_stale_temporaries(directory: Path | None = None) -> list[Path]:
    """Removes the temporary files of cache writes that were killed before their rename
    (`.cifar10-*.npz` older than `STALE_TEMP_SECONDS`); returns them. A write in progress is
    seconds old and is left alone."""
    directory = directory or cache_dir()
    removed = []
    now = time.time()
    for tmp in directory.glob(".cifar10-*.npz") if directory.is_dir() else []:
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                tmp.unlink()
                removed.append(tmp)
    return removed


def write_cache(key: str, data: CifarData) -> None:
    """Writes a cache entry atomically; a failure only warns, the data is still returned.
    Temporary files that killed writes left behind are removed first."""
    path = _cache_file(key)
    remove_stale_temporaries(path.parent)
    meta = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)
            if f.name in ("source", "format", "location", "fingerprint", "is_cifar10")}
    meta["checksum"] = fingerprint_arrays(data.train_images, data.train_labels, data.test_images,
                                          data.test_labels)
    try:
        _fs.atomic_write(path, lambda tmp: np.savez(
            tmp, train_images=data.train_images, train_labels=data.train_labels,
            test_images=data.test_images, test_labels=data.test_labels,
            meta=np.array(json.dumps(meta))), suffix=".npz")
    except OSError as e:
        warnings.warn(f"Could not write the data cache {path} ({e.strerror or e}); loading without "
                      f"the cache. Set {CACHE_DIR_ENV_VAR} to a writable directory to cache decoded "
                      "data.", stacklevel=3)


def cache_entries() -> list[Path]:
    """Returns the cache files present, newest first."""
    directory = cache_dir()
    if not directory.is_dir():
        return []
    return sorted(directory.glob("cifar10-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)


def tfds_key(prepared_dir: Path) -> str:
    """The cache key of a tfds-prepared dataset directory."""
    return hashlib.sha256(f"v{CACHE_FORMAT}|tfds|{prepared_dir.resolve()}".encode()).hexdigest()[:24]
