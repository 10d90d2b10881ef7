"""Use a trained model: load a `.keras` file, predict image files, export a SavedModel."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_cifar.data import CLASS_NAMES


class ModelFileError(ValueError):
    """A model or image file that cannot be used, naming the file."""

    cli_exit_code = 1  # a failure


def load_model_file(path: str | os.PathLike):
    """Loads a `.keras` model saved by keras-cifar (or any Keras model over 32x32x3 input).

    Raises:
        ModelFileError: the file is missing, corrupt, or not a Keras model file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"The model file {path} does not exist. Pass a model.keras from a run "
                             f"directory. Received: model={str(path)!r}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras model file (a .keras zip archive, as "
                             f"`keras-cifar train` writes). Received: model={str(path)!r}")
    import keras_cifar.metrics  # noqa: F401  (registers NotebookLoss, for files that name it)

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


@dataclass(frozen=True)
class LoadedImage:
    """An image file as a 32x32 RGB uint8 array, with what was done to make it so."""

    path: Path
    pixels: np.ndarray
    notes: tuple[str, ...]


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Reads any image Pillow can open and converts it to 32x32 RGB, noting each conversion.

    Raises:
        ModelFileError: the file is missing or not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    notes = []
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "RGB":
                notes.append(f"converted from {image.mode} to RGB")
                image = image.convert("RGB")
            if image.size != (32, 32):
                notes.append(f"resized from {image.size[0]}x{image.size[1]} to 32x32")
                image = image.resize((32, 32), Image.Resampling.BICUBIC, reducing_gap=2.0)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ModelFileError(f"The image {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ModelFileError(f"Cannot read the image {path}: {e}.") from None
    return LoadedImage(path, pixels, tuple(notes))


def predict_images(model, paths, top: int = 3, class_names=CLASS_NAMES) -> list[dict]:
    """Returns the top classes and probabilities for each image file.

    Returns:
        One dict per image: `image`, `notes`, `top` (a list of {class, probability}).
    """
    images = [read_image(p) for p in paths]
    logits = model.predict(np.stack([i.pixels for i in images]), verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    results = []
    for image, probs in zip(images, probabilities):
        best = np.argsort(probs)[::-1][:top]
        results.append({
            "image": str(image.path),
            "notes": list(image.notes),
            "top": [{"class": class_names[i], "probability": round(float(probs[i]), 6)} for i in best],
        })
    return results


def export_saved_model(model, directory: str | os.PathLike) -> Path:
    """Exports a TensorFlow SavedModel whose `serve` endpoint maps uint8 images to probabilities.

    The endpoint takes uint8 (N, 32, 32, 3) and returns float32 (N, 10) class probabilities
    (softmax of the logits); load it with `tf.saved_model.load(directory).serve(images)`.
    """
    directory = Path(directory)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        return tf.nn.softmax(model(tf.cast(images, tf.float32), training=False), axis=-1)

    archive.add_endpoint("serve", serve,
                         input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.uint8, name="images")])
    archive.write_out(str(directory), verbose=False)
    return directory
