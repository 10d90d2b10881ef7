"""CIFAR-10 from every source users have, as uint8 arrays and `tf.data` pipelines.

Sources: tfds (the default), a local copy (`--data-dir`: an image-folder tree, the official
`cifar-10-batches-py` or `cifar-10-batches-bin` releases, or any of them as a `.tar.gz`), and
deterministic synthetic data. Every source yields a `CifarData`: uint8 images (N, 32, 32, 3),
int labels in CIFAR-10's order, the class names, and where they came from. Decoded local sources
are cached as `.npz` files keyed by the source's identity, so decoding happens once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pickle
import socket
import tarfile
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np

from keras_cifar import runs
from keras_cifar.errors import DataError

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
IMAGE_SHAPE = (32, 32, 3)
DATA_DIR_ENV_VAR = "KERAS_CIFAR_DATA_DIR"
CACHE_DIR_ENV_VAR = "KERAS_CIFAR_CACHE_DIR"
SOURCES = ("tfds", "synthetic", "local")

# The MD5 sums published on the CIFAR page for the two official archives.
OFFICIAL_ARCHIVE_MD5 = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
}
_CACHE_FORMAT = 2  # bump when the decoded layout changes, so old cache entries are not trusted
_BINARY_RECORD = 1 + 32 * 32 * 3
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_DOWNLOAD_HOST = ("www.cs.toronto.edu", 443)
LAYOUTS = (
    "an image-folder tree (train/<class>/*, test/<class>/*)",
    "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
    "cifar-10-batches-bin/ (data_batch_1..5.bin, test_batch.bin, batches.meta.txt)",
    "any of these as a .tar.gz archive",
)


@dataclass(frozen=True)
class CifarData:
    """CIFAR-10 (or synthetic stand-in) as in-memory arrays.

    Attributes:
        train_images, test_images: uint8 arrays (N, 32, 32, 3), RGB.
        train_labels, test_labels: int32 arrays (N,), 0..9 in CIFAR-10's order.
        class_names: the ten class names, index = label.
        source: `tfds`, `synthetic` or `local`.
        format: `tfds`, `synthetic`, `image-folder`, `python`, `binary`.
        location: the path or dataset it was read from.
        fingerprint: a short hash of the pixels and labels; identical data, identical hash.
        is_cifar10: False for synthetic data, which must never pass for CIFAR-10.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    format: str
    location: str
    fingerprint: str
    is_cifar10: bool = True

    def describe(self) -> dict:
        """Returns where the data came from and its size, JSON-ready (no arrays)."""
        return {
            "source": self.source,
            "format": self.format,
            "location": self.location,
            "fingerprint": self.fingerprint,
            "is_cifar10": self.is_cifar10,
            "train": int(len(self.train_labels)),
            "test": int(len(self.test_labels)),
        }


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """Returns a 16-hex-digit hash of arrays' shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def _make_data(train_images, train_labels, test_images, test_labels, *, source, format,
               location, is_cifar10=True, fingerprint=None) -> CifarData:
    arrays = [np.ascontiguousarray(train_images, dtype=np.uint8),
              np.asarray(train_labels, dtype=np.int32),
              np.ascontiguousarray(test_images, dtype=np.uint8),
              np.asarray(test_labels, dtype=np.int32)]
    for split, images, labels in (("train", arrays[0], arrays[1]), ("test", arrays[2], arrays[3])):
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{location}: the {split} images have shape {images.shape}; expected "
                            f"(N, 32, 32, 3).")
        if len(images) != len(labels):
            raise DataError(f"{location}: {len(images)} {split} images but {len(labels)} labels.")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
            bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))][0]
            raise DataError(f"{location}: a {split} label is out of range; CIFAR-10 labels are "
                            f"0..9. Received: label={int(bad)}")
        if len(labels) == 0:
            raise DataError(f"{location}: the {split} split holds no images.")
    return CifarData(
        *arrays, class_names=CLASS_NAMES, source=source, format=format, location=location,
        fingerprint=fingerprint or fingerprint_arrays(*arrays), is_cifar10=is_cifar10,
    )


# ----------------------------------------------------------------------------------------------
# Synthetic data


def synthetic_data(train_size: int = 2000, test_size: int = 500, seed: int = 0) -> CifarData:
    """Returns deterministic, learnable, class-dependent 32x32 images; never CIFAR-10.

    Each class has its own colour and stripe direction, blurred by noise, so a small network
    learns it in an epoch or two: a check of the code path, not of a model.

    Args:
        train_size, test_size: images per split (classes balanced, round-robin).
        seed: the generator's seed; the same arguments give the same arrays.
    """
    if train_size < 1 or test_size < 1:
        raise DataError(f"Synthetic data needs at least 1 image per split. Received: "
                        f"train_size={train_size}, test_size={test_size}")
    # Ten well-separated colours (the corners and centre of the RGB cube, roughly), each class
    # with its own stripe direction: learnable in an epoch, yet not a constant image.
    palette = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [220, 220, 40],
                        [220, 40, 220], [40, 220, 220], [230, 230, 230], [30, 30, 30],
                        [130, 130, 130], [220, 130, 40]], dtype=np.float64)
    yy, xx = np.mgrid[0:32, 0:32]
    angles = np.linspace(0, np.pi, 10, endpoint=False)
    patterns = [np.sin((xx * np.cos(a) + yy * np.sin(a)) * 0.8) for a in angles]

    def make(n: int, rng: np.random.Generator):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        base = np.stack([palette[c] + 25 * patterns[c][..., None] for c in range(10)])
        noise = rng.normal(0, 20, size=(n, *IMAGE_SHAPE))
        images = np.clip(base[labels] + noise, 0, 255).astype(np.uint8)
        return images, labels

    rng = np.random.default_rng(seed)
    train = make(train_size, rng)
    test = make(test_size, rng)
    return _make_data(*train, *test, source="synthetic", format="synthetic",
                      location=f"synthetic(train={train_size}, test={test_size}, seed={seed})",
                      is_cifar10=False)


# ----------------------------------------------------------------------------------------------
# Local files: a directory or a tar archive, seen as a set of relative paths


class _Tree:
    """Files of a directory or an archive by relative POSIX path, read on demand."""

    def __init__(self, location: str, paths: Iterable[str], read: Callable[[str], bytes]):
        self.location = location
        self.paths = sorted(paths)
        self.read = read


def _directory_tree(root: Path) -> _Tree:
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        paths.extend((rel / f).as_posix() for f in filenames if not f.startswith("."))
    return _Tree(str(root), paths, lambda p: (root / p).read_bytes())


def _safe_member_name(archive: Path, member: tarfile.TarInfo) -> str:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(f"{archive}: member '{member.name}' points outside the archive (absolute "
                        "or '..' path); refusing to read it. Re-create the archive with relative "
                        "paths.")
    if member.issym() or member.islnk():
        raise DataError(f"{archive}: member '{member.name}' is a link; refusing to follow links "
                        "in an archive. Re-create it with plain files.")
    return name.as_posix().removeprefix("./")


def _archive_tree(archive: Path) -> _Tree:
    """Reads every regular file of a tar archive into memory, refusing unsafe members.

    The archive is streamed once rather than extracted: the decoded arrays are cached anyway,
    and nothing is written outside the cache, so path traversal cannot happen.
    """
    _verify_official_checksum(archive)
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = _safe_member_name(archive, member)
                if not member.isfile() or any(p.startswith(".") for p in name.split("/")):
                    continue
                files[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(f"{archive}: cannot read the archive ({type(e).__name__}: {e}); it may be "
                        "truncated or not a tar file. Download or copy it again.") from None
    return _Tree(str(archive), files, files.__getitem__)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_official_checksum(archive: Path) -> None:
    expected = OFFICIAL_ARCHIVE_MD5.get(archive.name)
    if expected is None:
        return
    actual = _md5(archive)
    if actual != expected:
        raise DataError(
            f"{archive}: MD5 checksum mismatch for the official archive '{archive.name}'; the file "
            f"is corrupt or not the official release. Download it again. Expected "
            f"md5={expected}. Received: md5={actual}"
        )


def _shallowest(candidates: Iterable[str]) -> str | None:
    roots = sorted(set(candidates), key=lambda r: (r.count("/") if r else -1, r))
    return roots[0] if roots else None


def _parent(path: str) -> str:
    parent = PurePosixPath(path).parent.as_posix()
    return "" if parent == "." else parent


def _join(root: str, name: str) -> str:
    return f"{root}/{name}" if root else name


def _detect(tree: _Tree) -> tuple[str, str]:
    """Returns (format, root) of the first known layout in the tree."""
    names = set(tree.paths)
    python_roots = [_parent(p) for p in tree.paths if PurePosixPath(p).name == "data_batch_1"
                    and _join(_parent(p), "test_batch") in names]
    binary_roots = [_parent(p) for p in tree.paths if PurePosixPath(p).name == "data_batch_1.bin"]
    folder_roots: dict[str, set[str]] = {}
    for p in tree.paths:
        parts = p.split("/")
        if len(parts) >= 3 and parts[-3] in ("train", "test"):
            folder_roots.setdefault("/".join(parts[:-3]), set()).add(parts[-3])
    found = [(fmt, _shallowest(roots)) for fmt, roots in (
        ("python", python_roots), ("binary", binary_roots),
        ("image-folder", [r for r, splits in folder_roots.items() if splits == {"train", "test"}]),
    ) if roots]
    if not found:
        partial = [r for r, s in folder_roots.items() if len(s) == 1]
        if partial:
            root = partial[0]
            have = next(iter(folder_roots[root]))
            missing = "test" if have == "train" else "train"
            raise DataError(f"{tree.location}: the image-folder tree at '{root or '.'}' has a "
                            f"'{have}' split but no '{missing}' split; both train/ and test/ "
                            "are needed.")
        raise DataError(
            f"{tree.location}: not a CIFAR-10 layout. Looked for: " + "; ".join(LAYOUTS)
            + f". Found {len(tree.paths)} files"
            + (f", e.g. {', '.join(tree.paths[:3])}" if tree.paths else "") + "."
        )
    found.sort(key=lambda item: item[1].count("/") if item[1] else -1)
    return found[0]


def _label_map(names: list[str], location: str) -> np.ndarray:
    """Maps a file's class order onto CIFAR-10's, by name."""
    lowered = [n.strip().lower() for n in names if n.strip()]
    if sorted(lowered) != sorted(CLASS_NAMES):
        raise DataError(f"{location}: the class names are not CIFAR-10's ten classes "
                        f"({', '.join(CLASS_NAMES)}). Received: {lowered}")
    return np.array([CLASS_NAMES.index(n) for n in lowered], dtype=np.int32)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the official batches (dicts of numpy arrays) and refuses any other object.

    A pickle can run arbitrary code when loaded; CIFAR batches only need numpy arrays.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        module = module.replace("numpy.core.", "numpy._core.")
        return super().find_class(module, name)


def _unpickle(tree: _Tree, path: str) -> dict:
    try:
        raw = _NumpyOnlyUnpickler(io.BytesIO(tree.read(path)), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as e:
        raise DataError(f"{tree.location}: cannot unpickle '{path}' ({type(e).__name__}: {e}); it "
                        "may be truncated or corrupt. Copy the CIFAR-10 python release again.") from None
    if not isinstance(raw, dict):
        raise DataError(f"{tree.location}: '{path}' is not a CIFAR batch (a dict). "
                        f"Received: {type(raw).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _require(tree: _Tree, root: str, names: Iterable[str], what: str) -> None:
    present = set(tree.paths)
    missing = [n for n in names if _join(root, n) not in present]
    if missing:
        raise DataError(f"{tree.location}: the {what} at '{root or '.'}' is missing "
                        f"{', '.join(missing)}; a missing split or batch. Copy the full release.")


def _read_python(tree: _Tree, root: str):
    _require(tree, root, [*_TRAIN_BATCHES, "test_batch"], "cifar-10-batches-py release")
    mapping = None
    if _join(root, "batches.meta") in set(tree.paths):
        meta = _unpickle(tree, _join(root, "batches.meta"))
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
        mapping = _label_map(names, f"{tree.location} ({_join(root, 'batches.meta')})")

    def batch(name):
        path = _join(root, name)
        d = _unpickle(tree, path)
        if "data" not in d or "labels" not in d:
            raise DataError(f"{tree.location}: '{path}' lacks the 'data' or 'labels' key of a "
                            f"CIFAR batch. Received keys: {sorted(d)}")
        data = np.asarray(d["data"])
        labels = np.asarray(d["labels"], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{tree.location}: '{path}' data must be uint8 (N, 3072). "
                            f"Received: shape={data.shape}, dtype={data.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"{tree.location}: '{path}' has labels out of range; CIFAR-10 labels "
                            f"are 0..9. Received: label={int(labels[(labels < 0) | (labels > 9)][0])}")
        # Rows are planes R, G, B, each 32x32 row-major.
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, labels if mapping is None else mapping[labels]

    train = [batch(name) for name in _TRAIN_BATCHES]
    test = batch("test_batch")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), *test)


def _read_binary(tree: _Tree, root: str):
    _require(tree, root, [f"{b}.bin" for b in _TRAIN_BATCHES] + ["test_batch.bin"],
             "cifar-10-batches-bin release")
    mapping = None
    meta = _join(root, "batches.meta.txt")
    if meta in set(tree.paths):
        names = tree.read(meta).decode("utf-8", "replace").splitlines()
        mapping = _label_map(names, f"{tree.location} ({meta})")

    def batch(name):
        path = _join(root, name)
        raw = np.frombuffer(tree.read(path), dtype=np.uint8)
        if raw.size == 0 or raw.size % _BINARY_RECORD:
            raise DataError(f"{tree.location}: '{path}' is {raw.size} bytes, not a whole number "
                            f"of {_BINARY_RECORD}-byte records (1 label + 3072 pixels); it is "
                            "truncated or not a CIFAR-10 binary batch.")
        records = raw.reshape(-1, _BINARY_RECORD)
        labels = records[:, 0].astype(np.int64)
        if labels.max() > 9:
            raise DataError(f"{tree.location}: '{path}' has labels out of range; CIFAR-10 labels "
                            f"are 0..9. Received: label={int(labels.max())}")
        images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, labels if mapping is None else mapping[labels]

    train = [batch(f"{name}.bin") for name in _TRAIN_BATCHES]
    test = batch("test_batch.bin")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), *test)


def _decode_image(tree: _Tree, path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(tree.read(path))) as image:
            image.load()
            size, mode = image.size, image.mode
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{tree.location}: Pillow cannot read the image '{path}' ({e}). Remove "
                        "or replace the file.") from None
    if size != (32, 32) or mode != "RGB":
        raise DataError(f"{tree.location}: the image '{path}' is not 32x32 RGB; keras-cifar never "
                        f"resizes or converts training images silently. Received: size={size[0]}x"
                        f"{size[1]}, mode={mode}")
    return array


def _read_image_folder(tree: _Tree, root: str):
    splits = []
    for split in ("train", "test"):
        prefix = _join(root, split) + "/"
        by_class: dict[str, list[str]] = {}
        for p in tree.paths:
            if p.startswith(prefix):
                rest = p[len(prefix):].split("/")
                if len(rest) == 2:
                    by_class.setdefault(rest[0], []).append(p)
        unknown = sorted(set(by_class) - set(CLASS_NAMES))
        if unknown:
            raise DataError(f"{tree.location}: '{prefix}{unknown[0]}' is not a CIFAR-10 class "
                            f"folder; class folders must be named {', '.join(CLASS_NAMES)}. "
                            f"Received: {unknown}")
        missing = [c for c in CLASS_NAMES if c not in by_class]
        if missing:
            raise DataError(f"{tree.location}: the '{prefix[:-1]}' split is missing the class "
                            f"folder(s) {', '.join(missing)}; every class needs one.")
        files = [(p, CLASS_NAMES.index(c)) for c in CLASS_NAMES for p in sorted(by_class[c])]
        # Pillow releases the GIL while decoding, so threads decode in parallel.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            images = list(pool.map(lambda p: _decode_image(tree, p), [f[0] for f in files],
                                   chunksize=256))
        splits.append((np.stack(images), np.array([f[1] for f in files])))
    return (*splits[0], *splits[1])


_READERS = {"python": _read_python, "binary": _read_binary, "image-folder": _read_image_folder}


# ----------------------------------------------------------------------------------------------
# Cache


def cache_dir() -> Path:
    """Returns the decode cache: `$KERAS_CIFAR_CACHE_DIR`, else `$XDG_CACHE_HOME/keras-cifar`,
    else `~/.cache/keras-cifar`."""
    configured = os.environ.get(CACHE_DIR_ENV_VAR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras-cifar"


def _source_identity(path: Path) -> str:
    """A key that changes when any file of the source changes (path, size, mtime)."""
    digest = hashlib.sha256(f"v{_CACHE_FORMAT}|{path.resolve()}".encode())
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


def _read_cache(key: str) -> CifarData | None:
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


def _write_cache(key: str, data: CifarData) -> None:
    """Writes a cache entry atomically; a failure only warns, the data is still returned."""
    path = _cache_file(key)
    meta = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)
            if f.name in ("source", "format", "location", "fingerprint", "is_cifar10")}
    meta["checksum"] = fingerprint_arrays(data.train_images, data.train_labels, data.test_images,
                                          data.test_labels)
    try:
        runs.atomic_write(path, lambda tmp: np.savez(
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


# ----------------------------------------------------------------------------------------------
# Local and tfds loaders


def load_local(path: str | os.PathLike, use_cache: bool = True) -> CifarData:
    """Loads CIFAR-10 from a local directory or `.tar.gz`, detecting its layout.

    Args:
        path: a directory (image-folder tree, `cifar-10-batches-py`, `cifar-10-batches-bin`, or
            a folder holding one of them) or a tar archive of any of these.
        use_cache: read and write the decoded-array cache.

    Returns:
        The `CifarData`.

    Raises:
        DataError: the path is missing, in no known layout, or holds bad files.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"The data path {path} does not exist. Pass an existing directory or "
                        f".tar.gz with --data-dir (or {DATA_DIR_ENV_VAR}), or use --data tfds or "
                        f"--data synthetic. Received: data_dir={str(path)!r}")
    key = _source_identity(path) if use_cache else None
    if key:
        cached = _read_cache(key)
        if cached is not None:
            return cached
    if path.is_dir():
        tree = _directory_tree(path)
    elif tarfile.is_tarfile(path) or path.name.endswith((".tar.gz", ".tgz", ".tar")):
        tree = _archive_tree(path)
    else:
        raise DataError(f"{path} is a file but not a tar archive; pass a directory or a .tar.gz "
                        "in one of these layouts: " + "; ".join(LAYOUTS) + ".")
    fmt, root = _detect(tree)
    arrays = _READERS[fmt](tree, root)
    location = str(path) if not root else f"{path} ({root})"
    data = _make_data(*arrays, source="local", format=fmt, location=location)
    if key:
        _write_cache(key, data)
    return data


def network_reachable(address: tuple[str, int] = _DOWNLOAD_HOST, timeout: float = 3.0) -> bool:
    """Returns whether a TCP connection to the CIFAR-10 download host opens within `timeout`."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(reason: str) -> str:
    return (
        f"Could not download CIFAR-10 with tensorflow-datasets: {reason}. Without a network, "
        "point keras-cifar at a local copy with --data-dir PATH (or KERAS_CIFAR_DATA_DIR): an "
        "image-folder tree, cifar-10-batches-py/, cifar-10-batches-bin/, or their .tar.gz "
        "archives (cifar-10-python.tar.gz, cifar-10-binary.tar.gz); or use --data synthetic to "
        "check the code path on made-up images; or download once with tfds on a machine online "
        "and pass its directory with --tfds-dir."
    )


def load_tfds(data_dir: str | os.PathLike | None = None, use_cache: bool = True) -> CifarData:
    """Loads CIFAR-10 with tensorflow-datasets, downloading it if needed.

    Args:
        data_dir: tfds' data directory; None means `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
        use_cache: cache the decoded arrays once tfds has prepared the dataset.

    Raises:
        DataError: the download failed or the network is unreachable; the message names the
            alternatives.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder("cifar10", data_dir=None if data_dir is None else str(data_dir))
    prepared = Path(builder.data_dir).is_dir() and any(Path(builder.data_dir).glob("*.tfrecord*"))
    key = None
    if prepared and use_cache:
        key = hashlib.sha256(f"v{_CACHE_FORMAT}|tfds|{Path(builder.data_dir).resolve()}".encode()
                             ).hexdigest()[:24]
        cached = _read_cache(key)
        if cached is not None:
            return cached
    if not prepared:
        if not network_reachable():
            raise DataError(_offline_message(f"the download host {_DOWNLOAD_HOST[0]} is unreachable "
                                             "(no network or a proxy in the way)"))
        try:
            builder.download_and_prepare()
        except Exception as e:  # tfds raises many types: network, checksum, disk
            first_line = str(e).splitlines()[0] if str(e) else ""
            raise DataError(_offline_message(f"{type(e).__name__}: {first_line}")) from None
    arrays = []
    for split in ("train", "test"):
        # Batches of 10,000 rather than batch_size=-1, which crashes TF 2.21 under tfds' mocks.
        dataset = builder.as_dataset(split=split, as_supervised=True).batch(10_000)
        batches = list(tfds.as_numpy(dataset))
        arrays += [np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])]
    train_x, train_y, test_x, test_y = arrays
    data = _make_data(train_x, train_y, test_x, test_y, source="tfds", format="tfds",
                      location=f"tfds:cifar10 ({builder.data_dir})")
    if key:
        _write_cache(key, data)
    return data


def load_data(source: str = "tfds", data_dir: str | os.PathLike | None = None,
              tfds_dir: str | os.PathLike | None = None, use_cache: bool = True,
              synthetic_size: tuple[int, int] = (2000, 500)) -> CifarData:
    """Loads CIFAR-10 (or synthetic data) from the chosen source.

    Args:
        source: `tfds`, `synthetic` or `local`; a `data_dir` implies `local`.
        data_dir: a local copy (see `load_local`).
        tfds_dir: tfds' data directory.
        use_cache: use the decoded-array cache.
        synthetic_size: (train, test) sizes for synthetic data.

    Raises:
        DataError: the source cannot be loaded.
    """
    if data_dir is not None and source in ("tfds", "local"):
        return load_local(data_dir, use_cache=use_cache)
    if source == "synthetic":
        return synthetic_data(*synthetic_size)
    if source == "local":
        raise DataError(f"--data local needs --data-dir PATH (or {DATA_DIR_ENV_VAR}).")
    if source == "tfds":
        return load_tfds(tfds_dir, use_cache=use_cache)
    raise DataError(f"Unknown data source; expected one of {list(SOURCES)}. Received: source={source!r}")


# ----------------------------------------------------------------------------------------------
# Subsets and pipelines


def stratified_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Returns `n` indices balanced over classes (round-robin), chosen with `seed`, sorted."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = []
    for rank in range(max(len(p) for p in per_class)):
        order.extend(int(p[rank]) for p in per_class if rank < len(p))
    return np.sort(np.array(order[:n]))


def limit_data(data: CifarData, n: int, seed: int = 0) -> CifarData:
    """Returns a seeded, class-stratified subset of `n` training and `n` test images.

    The fingerprint is that of the subset, so a limited run never passes for a full one.
    """
    if n < 1:
        raise DataError(f"--limit must be at least 1. Received: limit={n}")
    train = stratified_indices(data.train_labels, n, seed)
    test = stratified_indices(data.test_labels, n, seed)
    for split, labels in (("training", data.train_labels[train]), ("test", data.test_labels[test])):
        missing = [data.class_names[c] for c in range(len(data.class_names)) if c not in set(labels.tolist())]
        if missing:
            warnings.warn(f"--limit {n}: the {split} subset lacks the class(es) "
                          f"{', '.join(missing)}; accuracy on them cannot be learned or measured. "
                          f"Use --limit {len(data.class_names)} or more.", stacklevel=2)
    return _make_data(
        data.train_images[train], data.train_labels[train], data.test_images[test],
        data.test_labels[test], source=data.source, format=data.format,
        location=f"{data.location} [limit {n}, seed {seed}]", is_cifar10=data.is_cifar10,
    )


def epoch_permutation(n: int, seed: int, epoch):
    """Returns the training order of epoch `epoch`: a function of (seed, epoch) only.

    Works on a Python int or a scalar tensor, so a resumed run sees the same order.
    """
    import tensorflow as tf

    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    )


def train_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                   epochs: int):
    """Returns (dataset, first_epoch, steps_per_epoch): every epoch's batches in one dataset.

    Epoch e's order is `epoch_permutation(n, seed, e)`, so it does not depend on what ran
    before: a resumed run sees the same batches as an uninterrupted one. The dataset covers
    epochs `first_epoch` .. `epochs - 1`, where `first_epoch` is a variable read when Keras
    creates the iterator (set it at the first epoch's start). Pass `steps_per_epoch` to `fit`:
    one iterator then serves the whole run, which avoids the seconds-long stall TensorFlow
    shows when an iterator is recreated at each epoch's start. Batches are gathered from
    in-memory tensors, so there is no shuffle buffer to refill.
    """
    import tensorflow as tf

    n = len(labels)
    with tf.device("/CPU:0"):
        images_t = tf.constant(images)
        labels_t = tf.constant(labels)
        first_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_first_epoch")

    def epoch_batches(epoch):
        return tf.data.Dataset.from_tensor_slices(epoch_permutation(n, seed, epoch)).batch(batch_size)

    def remaining_epochs(_):
        return tf.data.Dataset.range(first_epoch.read_value(), epochs).flat_map(epoch_batches)

    dataset = (
        tf.data.Dataset.from_tensors(0)
        .flat_map(remaining_epochs)
        .map(lambda idx: (tf.gather(images_t, idx), tf.gather(labels_t, idx)),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, first_epoch, -(-n // batch_size)


def eval_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """Returns the test pipeline: in order, batched, prefetched."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(
        tf.data.AUTOTUNE)


@dataclass(frozen=True)
class DataSpec:
    """How a worker loads the data (each worker loads it itself, from the decode cache)."""

    source: str = "tfds"
    data_dir: str | None = None
    tfds_dir: str | None = None
    use_cache: bool = True

    def load(self) -> "CifarData":
        """Loads the data this spec names."""
        return load_data(self.source, data_dir=self.data_dir, tfds_dir=self.tfds_dir,
                         use_cache=self.use_cache)
