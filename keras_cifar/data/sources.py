"""CIFAR-10 from every source users have: tfds, a local copy, or synthetic stand-in data.

Every source yields a `CifarData` (see `keras_cifar.data.cifar`): uint8 images (N, 32, 32, 3),
int labels in CIFAR-10's order, the class names, and where they came from. Local copies are read
by `keras_cifar.data.formats` and their decoded arrays kept by `keras_cifar.data.cache`, so
decoding happens once; `keras_cifar.data.pipelines` turns arrays into tf.data pipelines.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import numpy as np

from keras_cifar.data import cache
from keras_cifar.data.cifar import IMAGE_SHAPE, CifarData, make_data
from keras_cifar.errors import DataError
from keras_cifar.data.formats import read_local

DATA_DIR_ENV_VAR = "KERAS_CIFAR_DATA_DIR"
SOURCES = ("tfds", "synthetic", "local")
_DOWNLOAD_HOST = ("www.cs.toronto.edu", 443)


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
    return make_data(*train, *test, source="synthetic", format="synthetic",
                      location=f"synthetic(train={train_size}, test={test_size}, seed={seed})",
                      is_cifar10=False)


def load_local(path: str | os.PathLike, use_cache: bool = True, progress=None) -> CifarData:
    """Loads CIFAR-10 from a local directory or `.tar.gz`, detecting its layout.

    Args:
        path: a directory (image-folder tree, `cifar-10-batches-py`, `cifar-10-batches-bin`, or
            a folder holding one of them) or a tar archive of any of these.
        use_cache: read and write the decoded-array cache.
        progress: called while an image folder decodes (see `formats.read_local`).

    Returns:
        The `CifarData`.

    Raises:
        DataError: the path is missing, in no known layout, or holds bad files.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"The data path {path} does not exist. Pass an existing directory or "
                        f".tar.gz as `data_dir=PATH` (or {DATA_DIR_ENV_VAR}), or use `source=\"tfds\"` or "
                        f"`source=\"synthetic\"`. Received: data_dir={str(path)!r}")
    key = cache.source_identity(path) if use_cache else None
    if key:
        cached = cache.read_cache(key)
        if cached is not None:
            return cached
    fmt, root, arrays = read_local(path, progress)
    location = str(path) if not root else f"{path} ({root})"
    data = make_data(*arrays, source="local", format=fmt, location=location)
    if key:
        cache.write_cache(key, data)
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
        "point keras-cifar at a local copy with `data_dir=PATH` (or KERAS_CIFAR_DATA_DIR): an "
        "image-folder tree, cifar-10-batches-py/, cifar-10-batches-bin/, or their .tar.gz "
        "archives (cifar-10-python.tar.gz, cifar-10-binary.tar.gz); or use `source=\"synthetic\"` to "
        "check the code path on made-up images; or download once with tfds on a machine online "
        "and pass its directory as `tfds_dir=PATH`."
    )


def load_tfds(tfds_dir: str | os.PathLike | None = None, use_cache: bool = True) -> CifarData:
    """Loads CIFAR-10 with tensorflow-datasets, downloading it if needed.

    Args:
        tfds_dir: tfds' data directory; None means `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
        use_cache: cache the decoded arrays once tfds has prepared the dataset.

    Raises:
        DataError: the download failed or the network is unreachable; the message names the
            alternatives.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder("cifar10", data_dir=None if tfds_dir is None else str(tfds_dir))
    prepared = Path(builder.data_dir).is_dir() and any(Path(builder.data_dir).glob("*.tfrecord*"))
    key = None
    if prepared and use_cache:
        key = cache.tfds_key(Path(builder.data_dir))
        cached = cache.read_cache(key)
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
    data = make_data(train_x, train_y, test_x, test_y, source="tfds", format="tfds",
                      location=f"tfds:cifar10 ({builder.data_dir})")
    if key:
        cache.write_cache(key, data)
    return data


def load_data(source: str = "tfds", data_dir: str | os.PathLike | None = None,
              tfds_dir: str | os.PathLike | None = None, use_cache: bool = True,
              synthetic_size: tuple[int, int] = (2000, 500), progress=None) -> CifarData:
    """Loads CIFAR-10 (or synthetic data) from the chosen source.

    Args:
        source: `tfds`, `synthetic` or `local`; a `data_dir` implies `local`.
        data_dir: a local copy (see `load_local`).
        tfds_dir: tfds' data directory.
        use_cache: use the decoded-array cache.
        synthetic_size: (train, test) sizes for synthetic data.
        progress: called while a local image folder decodes (see `formats.read_local`).

    Raises:
        DataError: the source cannot be loaded.
    """
    if data_dir is not None and source in ("tfds", "local"):
        return load_local(data_dir, use_cache=use_cache, progress=progress)
    if source == "synthetic":
        return synthetic_data(*synthetic_size)
    if source == "local":
        raise DataError(f"`source=\"local\"` needs `data_dir=PATH` (or {DATA_DIR_ENV_VAR}).")
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
        raise DataError(f"`limit` must be at least 1. Received: limit={n}")
    train = stratified_indices(data.train_labels, n, seed)
    test = stratified_indices(data.test_labels, n, seed)
    for split, labels in (("training", data.train_labels[train]), ("test", data.test_labels[test])):
        missing = [data.class_names[c] for c in range(len(data.class_names)) if c not in set(labels.tolist())]
        if missing:
            warnings.warn(f"limit={n}: the {split} subset lacks the class(es) "
                          f"{', '.join(missing)}; accuracy on them cannot be learned or measured. "
                          f"Use `limit={len(data.class_names)}` or more.", stacklevel=2)
    return make_data(
        data.train_images[train], data.train_labels[train], data.test_images[test],
        data.test_labels[test], source=data.source, format=data.format,
        location=f"{data.location} [limit {n}, seed {seed}]", is_cifar10=data.is_cifar10,
    )
