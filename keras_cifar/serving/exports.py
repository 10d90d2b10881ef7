"""Export a trained model for the runtimes people deploy on: SavedModel, ONNX, LiteRT.

Every format takes what the SavedModel always took, uint8 images (N, 32, 32, 3), and returns
float32 class probabilities (N, 10): the model's own `Rescaling` does the preprocessing, and a
softmax follows the logits. Every format goes through Keras 3's own `Model.export(format=...)`
on that one wrapper (`serving_model`) where
Keras can export that format on the running backend (`export_route`); otherwise (LiteRT and
SavedModel on PyTorch, LiteRT and ONNX on JAX) the model is handed to a TensorFlow process,
which exports the same weights. ONNX needs the converter packages of the `export` extra
(`pip install -e ".[export]"`). An export is written beside its target and renamed into place
when complete, so a failure never leaves a half-written file or directory.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import keras

from keras_cifar import errors
from keras_cifar import _fs
from keras_cifar.models.inspection import classifier_output

# format -> (what it writes, the file suffix it suggests, the packages its converter needs)
EXPORT_FORMATS = {
    "saved_model": ("a TensorFlow SavedModel directory", "", ()),
    "onnx": ("an ONNX file", ".onnx", ("tf2onnx", "onnx")),
    "litert": ("a LiteRT (TensorFlow Lite) flatbuffer", ".tflite", ()),
}
INPUT_NAME = "images"
# What Keras 3 exports itself on each backend, and the packages it needs for that; every other
# (backend, format) goes through a TensorFlow process.
NATIVE_EXPORTS = {
    "tensorflow": {"saved_model": (), "onnx": ("tf2onnx", "onnx"), "litert": ()},
    "jax": {"saved_model": (), "onnx": ("jax2onnx", "onnx")},
    "torch": {"onnx": ("onnx",)},
}
TENSORFLOW_PROCESS = "a TensorFlow process"


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True


def export_route(format: str, backend: str | None = None) -> str:
    """How `format` is exported on `backend` (None: the running one): `"keras"` (Keras'
    own `Model.export` in this process) or TENSORFLOW_PROCESS, for a format Keras cannot
    export on this backend or whose backend-side converter is not installed (ONNX on JAX
    needs jax2onnx; the TensorFlow route uses tf2onnx)."""
    _check_format(format)
    backend = backend or keras.backend.backend()
    packages = NATIVE_EXPORTS.get(backend, {}).get(format)
    if packages is not None and (backend == "tensorflow" or all(map(_importable, packages))):
        return "keras"
    return TENSORFLOW_PROCESS


def resolve_format(target: str | os.PathLike, format: str | None = None) -> str:
    """The export format for `target`: `format` if given, else the one its suffix names
    (`.onnx`: onnx, `.tflite`: litert, anything else: a saved_model directory).

    Raises:
        ConfigError: `format` contradicts the suffix (`x.onnx` with `format="litert"`), or is
            unknown.
    """
    by_suffix = {suffix: name for name, (_, suffix, _) in EXPORT_FORMATS.items() if suffix}
    implied = by_suffix.get(Path(target).suffix.lower())
    if format is None:
        return implied or "saved_model"
    _check_format(format)
    if implied is not None and implied != format:
        raise errors.ConfigError(
            f"The target's suffix {Path(target).suffix} means {implied}, but `format=\"{format}\"` "
            f"was asked for. Name the target {Path(target).with_suffix(EXPORT_FORMATS[format][1] or '')} "
            f"or drop the format. Received: target={str(target)!r}, format={format!r}")
    return format


def _check_format(format: str) -> None:
    if format not in EXPORT_FORMATS:
        raise errors.RunError(f"Unknown export format; expected one of {list(EXPORT_FORMATS)}. "
                            f"Received: format={format!r}")


def require_converter(format: str, backend: str | None = None) -> None:
    """Raises MissingDependency naming the extra to install when `format`'s converter is
    missing for the route it takes on `backend` (None: the running one)."""
    _check_format(format)
    backend = backend or keras.backend.backend()
    packages = (NATIVE_EXPORTS[backend][format] if export_route(format, backend) == "keras"
                else EXPORT_FORMATS[format][2])
    missing = [package for package in packages if not _importable(package)]
    if missing:
        raise errors.MissingDependency(missing, "export", f'Exporting to `format="{format}"`')


def check_export_target(target: str | os.PathLike, format: str = "saved_model",
                        force: bool = False) -> Path:
    """Checks where an export may go: a SavedModel is a directory (not a file, not a non-empty
    directory unless `force`); ONNX and LiteRT are files (not a directory, not an existing
    file unless `force`); either on a writable filesystem.

    Raises:
        RunError: it cannot be written as asked (a usage error).
    """
    _check_format(format)
    target = Path(target)
    what, suffix, _ = EXPORT_FORMATS[format]
    if format == "saved_model":
        if target.exists() and not target.is_dir():
            raise errors.RunError(f"{target} is an existing file; `format=\"saved_model\"` writes a "
                                f"directory. Choose another path. Received: target={str(target)!r}")
        if target.is_dir() and any(target.iterdir()) and not force:
            raise errors.RunError(f"{target} is not empty; pass `force=True` to replace it, or choose "
                                f"another path. Received: target={str(target)!r}")
        return _fs.check_output_dir(target, "target")
    if target.is_dir():
        raise errors.RunError(f"{target} is a directory; `format=\"{format}\"` writes {what}, e.g. "
                            f"{target / ('model' + suffix)}. Received: target={str(target)!r}")
    if target.exists() and not force:
        raise errors.RunError(f"{target} exists; pass `force=True` to replace it, or choose another path. "
                            f"Received: target={str(target)!r}")
    return _fs.check_output_file(target, "target")


def serving_model(model: keras.Model) -> keras.Model:
    """Wraps a zoo model as uint8 images (N, 32, 32, 3) in, float32 probabilities (N, 10) out.

    The wrapper is called once, so that every exporter sees built, traced shapes.
    """
    images = keras.Input((32, 32, 3), dtype="uint8", name=INPUT_NAME)
    pixels = keras.layers.Lambda(lambda x: keras.ops.cast(x, "float32"), name="to_float32")(images)
    outputs = model(pixels)
    probabilities = (keras.layers.Activation("linear", name="probabilities")(outputs)
                     if classifier_output(model) == "probabilities"
                     else keras.layers.Softmax(name="probabilities")(outputs))
    serving = keras.Model(images, probabilities, name=f"{model.name}_serving")
    serving(keras.ops.zeros((1, 32, 32, 3), dtype="uint8"))
    return serving


def export_model(model: keras.Model, target: str | os.PathLike, format: str | None = None,
                 force: bool = False) -> Path:
    """Exports `model` as uint8 images in, probabilities out, in one of EXPORT_FORMATS.

    - `saved_model`: a directory; `tf.saved_model.load(target).serve(images)`.
    - `onnx`: a file; `onnxruntime.InferenceSession(target).run(None, {"images": images})`.
    - `litert`: a `.tflite` file for the LiteRT / `tf.lite` interpreter.

    Off TensorFlow, a format Keras cannot export on the running backend is exported by a
    TensorFlow process from the same weights (`export_route`).

    Args:
        model: a Keras model over (N, 32, 32, 3) raw pixels returning logits (a zoo model).
        target: the directory (SavedModel) or file (ONNX, LiteRT) to write.
        format: one of EXPORT_FORMATS; None: the one `target`'s suffix names
            (`resolve_format`).
        force: replace an existing target.

    Returns:
        The path written.

    Raises:
        ConfigError: a format that contradicts the target's suffix.
        RunError: an unknown format, or a target that cannot be written as asked.
        MissingDependency: the format's converter is not installed (nothing is written).
        ExportError: the TensorFlow process failed (nothing is written).
    """
    format = resolve_format(target, format)
    require_converter(format)
    target = check_export_target(target, format, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        written = staging / target.name
        if export_route(format) == "keras":
            _export_here(model, written, format)
        else:
            _export_in_tensorflow(model, written, format, staging)
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(written, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export_here(model: keras.Model, written: Path, format: str) -> None:
    """Keras' own `Model.export` of the serving wrapper, in this process."""
    keras_format = "tf_saved_model" if format == "saved_model" else format
    with warnings.catch_warnings():  # tracers' notes on shapes they treat as constants
        warnings.simplefilter("ignore")
        serving_model(model).export(str(written), format=keras_format, verbose=False)


def _export_in_tensorflow(model: keras.Model, written: Path, format: str, staging: Path) -> None:
    """Exports `model` to `written` from a TensorFlow process: its weights go there in an
    uncompiled `.keras` copy (any backend's `.keras` loads on TensorFlow)."""
    source = staging / "weights.keras"
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.save(source)
    done = subprocess.run([sys.executable, "-m", __name__, str(source), str(written), format],
                          capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow",
                               "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0 or not written.exists():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise errors.ExportError(
            f"Exporting to `format=\"{format}\"` needs TensorFlow on the "
            f"{keras.backend.backend()} backend, and the TensorFlow process failed (exit "
            f"{done.returncode}): {lines[-1] if lines else 'no message'}. Nothing was written. "
            f"Export from a TensorFlow process instead: KERAS_BACKEND=tensorflow keras-cifar "
            f"export MODEL TARGET --format {format}.")


def export_saved_model(model: keras.Model, directory: str | os.PathLike, force: bool = False) -> Path:
    """Exports a TensorFlow SavedModel whose `serve` endpoint maps uint8 images to probabilities
    (`export_model(..., format="saved_model")`)."""
    return export_model(model, directory, "saved_model", force)


def _main(argv: list[str]) -> int:
    """`python -m keras_cifar.serving.exports MODEL WRITTEN FORMAT`: the TensorFlow side of
    `_export_in_tensorflow`."""
    from keras_cifar.serving.predict import load_model_file

    source, written, format = argv
    _export_here(load_model_file(source), Path(written), format)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
