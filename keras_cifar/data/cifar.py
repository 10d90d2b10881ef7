"""CIFAR-10 in memory: `CifarData`, the class names, and the checks every source passes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from keras_cifar.errors import DataError

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
IMAGE_SHAPE = (32, 32, 3)


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


def make_data(train_images, train_labels, test_images, test_labels, *, source, format,
              location, is_cifar10=True, fingerprint=None) -> CifarData:
    """Returns a `CifarData` after checking shapes, label range and that no split is empty.

    Raises:
        DataError: naming the split and what is wrong, at `location`.
    """
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
