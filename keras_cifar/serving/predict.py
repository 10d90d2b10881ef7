"""Use a trained model: load a `.keras` file, read image files, predict their classes.

Exports to other runtimes are in `keras_cifar.exports`.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_cifar.data import CLASS_NAMES
from keras_cifar.errors import ImageError, ModelFileError
from keras_cifar.models.inspection import classifier_output


def _starts_like_a_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_model_file(path: str | os.PathLike):
    """Loads a `.keras` model saved by keras-cifar (or any Keras model over 32x32x3 input).

    Raises:
        ModelFileError: the file is missing, corrupt, or not a Keras model file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"The model file {path} does not exist. Pass a model.keras from a run "
                             f"directory. Received: model={str(path)!r}")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path) and _starts_like_a_zip(path):
        raise ModelFileError(f"The Keras model file {path} is damaged (truncated or corrupted: "
                             "its zip archive has no readable directory). Train or copy it again. "
                             f"Received: model={str(path)!r}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras model file (a .keras zip archive, as "
                             f"`keras-cifar train` writes). Received: model={str(path)!r}")
    import keras_cifar.training.metrics  # noqa: F401  (registers NotebookLoss, for files that name it)

    try:
        model = keras.saving.load_model(path)
    except Exception as e:  # Keras raises many types for a damaged archive
        raise ModelFileError(f"Cannot load the Keras model {path}: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}. The file is damaged or "
                             "was written by an incompatible Keras.") from None
    if tuple(model.input_shape[1:]) != (32, 32, 3):
        raise ModelFileError(f"{path} is not a CIFAR-10 model: it takes input shape "
                             f"{model.input_shape}, not (None, 32, 32, 3).")
    return model


def load_trained_model(path: str | os.PathLike):
    """A trained model from a `.keras` file or a run directory, and where it came from.

    A run directory gives its model.keras when it has one; an unfinished run gives its last
    complete checkpoint, the network rebuilt from the run's identity and the checkpoint's
    weights loaded, so an interrupted run can be evaluated before it finishes.

    Returns:
        (model, source): `source` says which file, and for a checkpoint which epoch.

    Raises:
        ModelFileError: the path is neither a model file nor a run directory, or the run has
            no model and no complete checkpoint yet.
    """
    from keras_cifar.training import rundir
    from keras_cifar.training.checkpoints import latest_checkpoint

    path = Path(path)
    if not path.is_dir():
        return load_model_file(path), str(path)
    if not (path / rundir.CONFIG).is_file():
        raise ModelFileError(f"{path} is a folder but not a run directory (it has no "
                             f"{rundir.CONFIG}). Pass a run directory or its model.keras. "
                             f"Received: model={str(path)!r}")
    if (path / rundir.MODEL).is_file():
        return load_model_file(path / rundir.MODEL), str(path / rundir.MODEL)
    saved = rundir.read_run(path)
    checkpoint = latest_checkpoint(path / rundir.BACKUP_DIR)
    if checkpoint is None:
        raise ModelFileError(f"{path} has no {rundir.MODEL} and no complete checkpoint yet: the "
                             f"run ({saved.status}) has not finished an epoch. Received: "
                             f"model={str(path)!r}")
    from keras_cifar.models.builder import build_model
    from keras_cifar.zoo import parse_network

    epoch, weights = checkpoint
    identity = saved.identity
    model = build_model(parse_network(identity["network"], path / rundir.CONFIG),
                        init=identity.get("init"), seed=saved.seed,
                        dtype_policy=identity.get("precision") or "float32")
    model.load_weights(weights)
    epochs = saved.train.epochs if saved.train else "?"
    return model, (f"{path}: the checkpoint after epoch {epoch} of {epochs} (the run is "
                   f"{saved.status}, not finished)")


@dataclass(frozen=True)
class LoadedImage:
    """An image file as a 32x32 RGB uint8 array, with what was done to make it so."""

    path: Path
    pixels: np.ndarray
    notes: tuple[str, ...]


MAX_IMAGE_PIXELS = 4096 * 4096  # larger files are refused before decoding (memory, bombs)
URL_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]+:/")  # http://, s3://, also as a mangled Path


def _to_8_bits(image, path: Path, notes: list):
    """Returns an 8-bit image for Pillow's high-bit-depth modes, scaled, never clipped.

    16-bit grey (`I;16*`, or `I` holding 0..65535) is divided by 257; float (`F`) in [0, 1]
    is multiplied by 255. Anything else in those modes has no known range and is refused.
    (Pillow itself reads 16-bit RGB(A) files as 8-bit RGB(A), keeping the high bytes.)
    """
    from PIL import Image

    if not (image.mode.startswith("I") or image.mode == "F"):
        return image
    values = np.asarray(image)
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16") or (image.mode == "I" and 0 <= low and high <= 65535):
        notes.append(f"scaled from 16-bit ({image.mode}) to 8-bit")
        scaled = np.round(values.astype(np.float64) / 257.0)
    elif image.mode == "F" and 0 <= low and high <= 1:
        notes.append("scaled from float [0, 1] to 8-bit")
        scaled = np.round(values.astype(np.float64) * 255.0)
    else:
        raise ImageError(
            f"Cannot read the image {path}: its pixels are {image.mode} values from {low:g} to "
            f"{high:g}, with no known range to scale to 8 bits. Save it as an 8-bit or 16-bit "
            f"image (or float in [0, 1]). Received: mode={image.mode!r}")
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def _rgb_32x32(image, path: Path, notes: list) -> np.ndarray:
    """A PIL image as (32, 32, 3) uint8: 8 bits (`_to_8_bits`), RGB, resized (bicubic),
    noting each conversion."""
    from PIL import Image

    image = _to_8_bits(image, path, notes)
    if image.mode != "RGB":
        notes.append(f"converted from {image.mode} to RGB")
        image = image.convert("RGB")
    if image.size != (32, 32):
        notes.append(f"resized from {image.size[0]}x{image.size[1]} to 32x32")
        image = image.resize((32, 32), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return np.asarray(image, dtype=np.uint8)


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Reads any image Pillow can open and converts it to 32x32 RGB, noting each conversion.

    Higher bit depths are scaled to 8 bits (see `_to_8_bits`); images over
    `MAX_IMAGE_PIXELS` are refused before they are decoded.

    Raises:
        ImageError: the file is missing, a URL, too large, or not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    if URL_SCHEME.match(str(path)):
        raise ImageError(f"{path} is a URL; keras-cifar does not fetch images. Download it "
                         f"and pass the file. Received: image={str(path)!r}")
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file; pass the image files in it "
                         f"(e.g. {path / '*.png'}). Received: image={str(path)!r}")
    notes = []
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(
                    f"The image {path} is {width}x{height} pixels, over the limit of "
                    f"{MAX_IMAGE_PIXELS:,} pixels (4096x4096); CIFAR-10 models see 32x32. "
                    f"Resize it first. Received: size={width}x{height}")
            image.load()
            pixels = _rgb_32x32(image, path, notes)
    except FileNotFoundError:
        raise ImageError(f"The image {path} does not exist.") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"The image {path} is too large to decode safely: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"Cannot read the image {path}: {e}.") from None
    return LoadedImage(path, pixels, tuple(notes))


def _pixels_of(image, index: int) -> np.ndarray:
    """One in-memory image (array or PIL image) as (32, 32, 3) uint8, by the rules of
    `as_pixel_batch`."""
    if hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image
        return _rgb_32x32(image, Path(f"image {index}"), [])
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)  # greyscale
    if pixels.shape != (32, 32, 3):
        raise ImageError(
            f"Image {index} has shape {pixels.shape}; keras-cifar models take 32x32 RGB images, "
            "(32, 32, 3) or greyscale (32, 32). Resize it first, or pass the file or a PIL "
            f"image, which are resized. Received: shape={pixels.shape}")
    return _to_uint8(pixels, index)


def _to_uint8(pixels: np.ndarray, index) -> np.ndarray:
    """uint8 as is; integers in [0, 255] cast; floats in [0, 1] scaled by 255 (the rule
    image files follow); anything else refused."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.size == 0:
        return pixels.astype(np.uint8)
    low, high = float(pixels.min()), float(pixels.max())
    if np.issubdtype(pixels.dtype, np.integer) and 0 <= low and high <= 255:
        return pixels.astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating) and 0 <= low and high <= 1:
        return np.round(pixels.astype(np.float64) * 255.0).astype(np.uint8)
    raise ImageError(
        f"Image {index} holds {pixels.dtype} values from {low:g} to {high:g}; keras-cifar takes "
        "uint8 pixels (0-255), or floats in [0, 1] (scaled by 255). Received: "
        f"dtype={pixels.dtype}, range=[{low:g}, {high:g}]")


def as_pixel_batch(images) -> np.ndarray:
    """In-memory images as one uint8 batch (N, 32, 32, 3), as the zoo's models take them.

    Accepts an array (N, 32, 32, 3), (32, 32, 3), greyscale (N, 32, 32) or (32, 32), a PIL
    image (any mode and size: converted to RGB and resized, as image files are), or a list of
    these. uint8 is taken as is, other integers in [0, 255] are cast, floats in [0, 1] are
    scaled by 255, as for image files.

    Raises:
        ImageError: an empty list, an image of another shape, or pixels outside those ranges;
            the message names the image and what was received.
    """
    if isinstance(images, np.ndarray):
        shape = images.shape
        if shape in ((32, 32, 3), (32, 32)):
            return _pixels_of(images, 0)[None]
        if images.ndim == 4 and shape[1:] == (32, 32, 3):
            return _to_uint8(images, "batch")
        if images.ndim == 3 and shape[1:] == (32, 32):
            return _to_uint8(np.repeat(images[..., None], 3, axis=-1), "batch")
        raise ImageError(f"The images have shape {shape}; keras-cifar models take (N, 32, 32, 3), "
                         "(32, 32, 3), or greyscale (N, 32, 32) / (32, 32), channels last. "
                         f"Received: shape={shape}")
    single = [images] if hasattr(images, "convert") else list(images)
    if not single:
        raise ImageError("No images to predict: the list is empty. Received: images=[]")
    return np.stack([_pixels_of(image, i) for i, image in enumerate(single)])


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """Returns class probabilities (N, 10): the softmax of the model's logits for uint8 images
    (N, 32, 32, 3)."""
    outputs = model.predict(images, verbose=0)
    if classifier_output(model) == "probabilities":
        return np.asarray(outputs)
    return keras.ops.convert_to_numpy(keras.ops.softmax(outputs, axis=-1))


def predict_images(model, paths, top: int = 3, class_names=CLASS_NAMES) -> list[dict]:
    """Returns the top classes and probabilities for each image file.

    A file that cannot be read gets an `error` instead of `top`; the others are still
    predicted.

    Returns:
        One dict per image: `image`, `notes`, and `top` (a list of {class, probability}) or
        `error` (the message).
    """
    images, results = [], []
    for p in paths:
        try:
            images.append(read_image(p))
            results.append(None)
        except ImageError as e:
            results.append({"image": str(p), "notes": [], "error": str(e)})
    if images:
        probabilities = iter(predict_probabilities(model, np.stack([i.pixels for i in images])))
    read = iter(images)
    for index, result in enumerate(results):
        if result is not None:
            continue
        image, probs = next(read), next(probabilities)
        best = np.argsort(probs)[::-1][:top]
        results[index] = {
            "image": str(image.path),
            "notes": list(image.notes),
            "top": [{"class": class_names[i], "probability": round(float(probs[i]), 6)} for i in best],
        }
    return results
