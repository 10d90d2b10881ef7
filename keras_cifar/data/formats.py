"""Local CIFAR-10 copies: a directory or a tar archive, in any of the known layouts, decoded.

The layouts: an image-folder tree (train/<class>/*, test/<class>/*), the official
`cifar-10-batches-py` and `cifar-10-batches-bin` releases, or any of them as a `.tar.gz`. A source
is first seen as a set of relative paths (`_Tree`), its layout detected, then read by the
matching reader into uint8 arrays.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np

from keras_cifar._fs import file_digest
from keras_cifar.data.cifar import CLASS_NAMES
from keras_cifar.errors import DataError

# The MD5 sums published on the CIFAR page for the two official archives.
OFFICIAL_ARCHIVE_MD5 = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
}
_BINARY_RECORD = 1 + 32 * 32 * 3
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
LAYOUTS = (
    "an image-folder tree (train/<class>/*, test/<class>/*)",
    "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
    "cifar-10-batches-bin/ (data_batch_1..5.bin, test_batch.bin, batches.meta.txt)",
    "any of these as a .tar.gz archive",
)


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
    return file_digest(path, "md5")


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


PROGRESS_EVERY = 2000  # images between two progress reports


def _read_image_folder(tree: _Tree, root: str, progress=None):
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
            images = []
            for image in pool.map(lambda p: _decode_image(tree, p), [f[0] for f in files],
                                  chunksize=256):
                images.append(image)
                if progress and (len(images) % PROGRESS_EVERY == 0 or len(images) == len(files)):
                    progress(split, len(images), len(files))
        splits.append((np.stack(images), np.array([f[1] for f in files])))
    return (*splits[0], *splits[1])


_READERS = {"python": _read_python, "binary": _read_binary, "image-folder": _read_image_folder}


def read_local(path: Path, progress=None) -> tuple[str, str, tuple[np.ndarray, ...]]:
    """Reads a local CIFAR-10 copy, detecting its layout.

    Args:
        path: an existing directory or tar archive.

        progress: for image folders, called as `progress(split, decoded, total)` every
            `PROGRESS_EVERY` images while they decode.

    Returns:
        (format, root, arrays): the layout (`python`, `binary`, `image-folder`), the folder
        inside `path` that holds it ("" for `path` itself), and (train_images, train_labels,
        test_images, test_labels).

    Raises:
        DataError: no known layout, or bad files; the message names the layouts and the file.
    """
    if path.is_dir():
        tree = _directory_tree(path)
    elif tarfile.is_tarfile(path) or path.name.endswith((".tar.gz", ".tgz", ".tar")):
        tree = _archive_tree(path)
    else:
        raise DataError(f"{path} is a file but not a tar archive; pass a directory or a .tar.gz "
                        "in one of these layouts: " + "; ".join(LAYOUTS) + ".")
    fmt, root = _detect(tree)
    if fmt == "image-folder":
        return fmt, root, _read_image_folder(tree, root, progress)
    return fmt, root, _READERS[fmt](tree, root)
