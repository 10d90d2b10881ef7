"""exports: SavedModel, ONNX and LiteRT, each loaded in its own runtime, serve uint8 images and
return the `.keras` model's probabilities within 1e-4, whatever Keras backend exports them;
missing converters and bad targets are clear errors that write nothing."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cifar.training import rundir
from keras_cifar.models.builder import build_model
from keras_cifar.cli import cli
from keras_cifar.errors import MissingDependency
from keras_cifar.serving.exports import (EXPORT_FORMATS, TENSORFLOW_PROCESS, export_model,
                                         export_route)
from keras_cifar.serving.predict import load_model_file
from conftest import ZOO

IMAGES = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=["mlp2", "cnn1"])
def model_file(request, tmp_path_factory):
    """A zoo MLP and CNN saved as .keras files (seeded weights: export needs no training)."""
    path = tmp_path_factory.mktemp(request.param) / rundir.MODEL
    build_model(ZOO.network(request.param), seed=3).save(path)
    return path


def run_saved_model(path, images):
    loaded = tf.saved_model.load(str(path))  # kept alive while serving: it owns the variables
    return loaded.serve(tf.constant(images)).numpy()


def run_onnx(path, images):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert given.name == "images" and given.type == "tensor(uint8)"
    return session.run(None, {"images": images})[0]


def run_litert(path, images):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    (given,) = interpreter.get_input_details()
    assert given["dtype"] == np.uint8 and list(given["shape_signature"]) == [-1, 32, 32, 3]
    interpreter.resize_tensor_input(given["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


RUNTIMES = {"saved_model": run_saved_model, "onnx": run_onnx, "litert": run_litert}
TARGETS = {"saved_model": "exported", "onnx": "model.onnx", "litert": "model.tflite"}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@pytest.mark.parametrize("format", list(EXPORT_FORMATS))
def test_each_format_matches_the_keras_softmax_in_its_own_runtime(runner, model_file, tmp_path,
                                                                   format):
    target = tmp_path / TARGETS[format]
    result = runner.invoke(cli, ["export", str(model_file), str(target), "--format", format])
    assert result.exit_code == 0, result.output
    assert f"Wrote {EXPORT_FORMATS[format][0]} {target}" in result.output
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(load_model_file(model_file)(IMAGES.astype("float32")), axis=-1))
    served = RUNTIMES[format](target, IMAGES)
    assert served.shape == (16, 10) and served.dtype == np.float32
    np.testing.assert_allclose(served, expected, atol=1e-4, rtol=0)
    assert np.argmax(served, 1).tolist() == np.argmax(expected, 1).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no staging left


OTHER_BACKENDS = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_format_exports_on_every_backend_with_the_same_probabilities(model_file, tmp_path,
                                                                           backend):
    if backend not in OTHER_BACKENDS:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(load_model_file(model_file)(IMAGES.astype("float32")), axis=-1))
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for format, name in TARGETS.items():
        target = tmp_path / format / name
        target.parent.mkdir()
        done = subprocess.run([sys.executable, "-m", "keras_cifar", "export", str(model_file),
                               str(target), "--format", format],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, (format, done.stdout, done.stderr[-3000:])
        routed = export_route(format, backend) == TENSORFLOW_PROCESS
        assert ("exported by a TensorFlow process" in done.stdout) == routed, done.stdout
        served = RUNTIMES[format](target, IMAGES)
        np.testing.assert_allclose(served, expected, atol=1e-4, rtol=0, err_msg=format)
        assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_a_missing_converter_names_what_to_install_and_writes_nothing(runner, model_file,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if it were not installed
    with pytest.raises(MissingDependency, match=r'pip install -e "\.\[export\]"'):
        export_model(load_model_file(model_file), tmp_path / "m.onnx", "onnx")
    result = runner.invoke(cli, ["export", str(model_file), str(tmp_path / "m.onnx"),
                                 "--format", "onnx"])
    assert result.exit_code == 2 and "tf2onnx" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_file_formats_refuse_a_directory_and_replace_a_file_only_with_force(runner, model_file,
                                                                            tmp_path, format):
    result = runner.invoke(cli, ["export", str(model_file), str(tmp_path), "--format", format])
    assert result.exit_code == 2 and "is a directory" in result.output
    target = tmp_path / TARGETS[format]
    target.write_bytes(b"keep me")
    result = runner.invoke(cli, ["export", str(model_file), str(target), "--format", format])
    assert result.exit_code == 2 and "--force" in result.output
    assert target.read_bytes() == b"keep me"
    result = runner.invoke(cli, ["export", str(model_file), str(target), "--format", format,
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 100_000


def test_the_route_is_keras_own_export_where_the_backend_has_one():
    assert {f: export_route(f, "tensorflow") for f in EXPORT_FORMATS} == dict.fromkeys(
        EXPORT_FORMATS, "keras")
    assert export_route("litert", "jax") == export_route("litert", "torch") == TENSORFLOW_PROCESS
    assert export_route("saved_model", "torch") == TENSORFLOW_PROCESS
    assert export_route("saved_model", "jax") == "keras"
    assert export_route("onnx", "torch") == "keras"  # onnx is in the export extra
    jax2onnx = importlib.util.find_spec("jax2onnx") is not None
    assert export_route("onnx", "jax") == ("keras" if jax2onnx else TENSORFLOW_PROCESS)


def test_an_unknown_format_is_a_usage_error(runner, model_file, tmp_path):
    result = runner.invoke(cli, ["export", str(model_file), str(tmp_path / "m"), "--format", "coreml"])
    assert result.exit_code == 2 and "'coreml' is not one of" in result.output


@pytest.mark.parametrize("name, format", [("m.onnx", "onnx"), ("m.TFLITE", "litert"),
                                          ("exported/cnn3", "saved_model"), ("m.onnx", None)])
def test_the_format_comes_from_the_suffix_unless_given(name, format):
    from keras_cifar.serving.exports import resolve_format

    implied = {"m.onnx": "onnx", "m.TFLITE": "litert", "exported/cnn3": "saved_model"}[name]
    assert resolve_format(name) == implied
    if format is not None:
        assert resolve_format(name, format) == format


def test_a_suffix_that_contradicts_the_format_is_a_usage_error_and_writes_nothing(
        runner, model_file, tmp_path):
    result = runner.invoke(cli, ["export", str(model_file), str(tmp_path / "x.onnx"),
                                 "--format", "litert"])
    assert result.exit_code == 2 and "suffix .onnx means onnx" in result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_without_a_format_a_tflite_target_is_a_litert_file(runner, model_file, tmp_path):
    result = runner.invoke(cli, ["export", str(model_file), str(tmp_path / "z.tflite")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "z.tflite").is_file() and "LiteRT" in result.output
