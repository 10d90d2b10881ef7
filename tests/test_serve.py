"""evaluate and predict on a trained model; bad model and image files."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_cifar.training import rundir
from keras_cifar.cli import cli
from keras_cifar.data import CLASS_NAMES
from keras_cifar.serving.predict import ModelFileError, load_model_file, read_image


@pytest.fixture
def model_path(trained_run):
    return str(trained_run.run_dir / rundir.MODEL)


def test_evaluate_prints_loss_accuracy_and_classes(runner, model_path, tmp_path, trained_run):
    confusion = tmp_path / "c.png"
    result = runner.invoke(cli, ["evaluate", model_path, "--data", "synthetic", "--json",
                                 "--confusion", str(confusion)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    from keras_cifar.data import synthetic_data
    from keras_cifar.training.evaluation import evaluate_model

    data = synthetic_data()  # what --data synthetic loads
    expected = evaluate_model(trained_run.model, data.test_images, data.test_labels)
    assert metrics["test_accuracy"] == pytest.approx(expected["test_accuracy"])
    assert metrics["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-5)
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert sum(map(sum, metrics["confusion_matrix"])) == len(data.test_labels)
    assert confusion.stat().st_size > 1000
    table = runner.invoke(cli, ["evaluate", model_path, "--data", "synthetic"]).output
    assert "test accuracy" in table and "airplane" in table


def test_predict_png_written_by_the_test(runner, model_path, tmp_path):
    from keras_cifar.data import synthetic_data

    d = synthetic_data(20, 10)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(d.test_images[i]).save(paths[-1])
    result = runner.invoke(cli, ["predict", model_path, *map(str, paths), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert len(out) == 3 and all(len(r["top"]) == 3 for r in out)
    probs = [t["probability"] for t in out[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert out[0]["notes"] == []
    # the same pixels through the model: the same classes, in the same order
    logits = load_model_file(model_path).predict(d.test_images[:3], verbose=0)
    for row, image_logits in zip(out, logits):
        best = np.argsort(image_logits)[::-1][:3]
        assert [t["class"] for t in row["top"]] == [CLASS_NAMES[i] for i in best]


def test_predict_converts_other_sizes_and_modes_with_a_note(runner, model_path, tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGBA", (64, 48), (10, 200, 30, 255)).save(path)
    result = runner.invoke(cli, ["predict", model_path, str(path)])
    assert result.exit_code == 0, result.output
    assert "converted from RGBA to RGB" in result.output and "resized from 64x48" in result.output
    assert read_image(path).pixels.shape == (32, 32, 3)


@pytest.mark.parametrize("content, name, message", [
    (b"not a zip", "m.keras", "not a Keras model file"),
    (None, "missing.keras", "does not exist"),
    (b"PK\x03\x04broken", "z.keras", "is damaged (truncated or corrupted"),  # a torn zip
])
def test_bad_model_files_exit_1_without_traceback(runner, tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    for args in (["evaluate", str(path), "--data", "synthetic"], ["kernels", str(path), "-o", "k.png"],
                 ["inspect", str(path)]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output


def test_corrupt_zip_model(tmp_path, trained_run):
    import zipfile

    path = tmp_path / "cut.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(ModelFileError, match="Cannot load the Keras model"):
        load_model_file(path)


def test_unreadable_image_exits_1(runner, model_path, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"garbage")
    result = runner.invoke(cli, ["predict", model_path, str(path)])
    assert result.exit_code == 1 and "Cannot read the image" in result.output


# ---- in-memory images: one batch rule (serving.predict.as_pixel_batch) -----------------

def _rgb(n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_every_in_memory_form_becomes_the_same_uint8_batch():
    from PIL import Image

    from keras_cifar.serving.predict import as_pixel_batch

    batch = _rgb()
    grey = batch[..., 0]
    assert np.array_equal(as_pixel_batch(batch), batch)
    assert np.array_equal(as_pixel_batch(batch[0]), batch[:1])
    assert np.array_equal(as_pixel_batch(list(batch)), batch)
    assert np.array_equal(as_pixel_batch(Image.fromarray(batch[0])), batch[:1])
    assert np.array_equal(as_pixel_batch(grey), np.repeat(grey[..., None], 3, axis=-1))
    assert np.array_equal(as_pixel_batch(grey[0])[0, ..., 1], grey[0])
    floats = batch.astype(np.float32) / 255  # the rule image files follow: [0, 1] x 255
    assert np.array_equal(as_pixel_batch(floats), batch)
    assert as_pixel_batch(Image.fromarray(batch[0]).resize((64, 48))).shape == (1, 32, 32, 3)


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 28, 28, 3), np.uint8), "shape"),
    (np.full((32, 32, 3), 200.0, np.float32), r"floats in \[0, 1\]"),
    (np.full((32, 32, 3), -1, np.int16), "Received: dtype=int16"),
    ([], "empty"),
])
def test_other_shapes_and_ranges_are_refused_with_what_was_received(images, message):
    from keras_cifar.errors import ImageError
    from keras_cifar.serving.predict import as_pixel_batch

    with pytest.raises(ImageError, match=message):
        as_pixel_batch(images)


def test_kc_predict_takes_paths_and_scales_floats_like_the_cli(trained_run, tmp_path):
    import keras_cifar as kc
    from PIL import Image

    batch = _rgb(3)
    model = str(trained_run.run_dir / "model.keras")
    reference = kc.predict(model, batch)
    np.testing.assert_allclose(kc.predict(model, batch.astype(np.float64) / 255), reference,
                               atol=1e-6)
    Image.fromarray(batch[0]).save(tmp_path / "img0.png")
    (single,) = kc.predict(model, str(tmp_path / "img0.png"))  # one file, not 8 characters
    assert single["image"] == str(tmp_path / "img0.png") and "top" in single
    listed = kc.predict(model, [tmp_path / "img0.png"])
    assert listed[0]["top"] == single["top"]
    assert single["top"][0]["probability"] == pytest.approx(float(reference[0].max()), abs=1e-5)


# ---- models that are not zoo models -------------------------------------------------------

def _hand_built(outputs: int, activation: str | None):
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(),
                              keras.layers.Dense(outputs, activation=activation)])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_model_ending_in_softmax_is_evaluated_and_predicted_on_its_probabilities(tiny_data):
    import keras_cifar as kc

    model = _hand_built(10, "softmax")
    images, labels = tiny_data.test_images, tiny_data.test_labels
    keras_loss, keras_accuracy = model.evaluate(images, labels, verbose=0, batch_size=500)
    metrics = kc.evaluate(model, tiny_data)
    assert metrics["test_loss"] == pytest.approx(keras_loss, rel=1e-4)
    assert metrics["test_accuracy"] == pytest.approx(keras_accuracy)
    np.testing.assert_allclose(kc.predict(model, images[:5]), model.predict(images[:5], verbose=0),
                               atol=1e-6)


@pytest.mark.parametrize("outputs", [3, 100])
def test_a_model_without_ten_outputs_is_refused_by_evaluate_predict_and_export(
        tiny_data, tmp_path, outputs):
    import keras_cifar as kc
    from keras_cifar.errors import ModelFileError

    model = _hand_built(outputs, None)
    for call in (lambda: kc.evaluate(model, tiny_data), lambda: kc.predict(model, _rgb(1)),
                 lambda: kc.export_model(model, tmp_path / "m.tflite")):
        with pytest.raises(ModelFileError, match=rf"outputs \(None, {outputs}\).*10 classes"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_the_cli_refuses_a_three_output_model_without_a_traceback(runner, tmp_path):
    from keras_cifar.cli import cli

    path = tmp_path / "three.keras"
    _hand_built(3, None).save(path)
    result = runner.invoke(cli, ["evaluate", str(path), "--data", "synthetic"])
    assert result.exit_code == 1 and "outputs (None, 3)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.faults
def test_an_interrupted_run_directory_is_evaluated_from_its_last_checkpoint(runner, tmp_path):
    """Its checkpoint after 2 of 4 epochs is the model a 2-epoch run of the same seed ends
    with (each epoch's order depends only on seed and epoch)."""
    import keras

    import keras_cifar as kc
    from keras_cifar.data import synthetic_data
    from keras_cifar.errors import TrainingInterrupted
    from keras_cifar.serving.predict import load_trained_model

    class StopAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    data = synthetic_data(300, 100)
    with pytest.raises(TrainingInterrupted):
        kc.train_network("lenet5", data, epochs=4, out_dir=tmp_path, name="cut", verbose=0,
                         callbacks=[StopAfterSecondEpoch()])
    two = kc.train_network("lenet5", data, epochs=2, out_dir=tmp_path, name="two", verbose=0)
    model, source = load_trained_model(tmp_path / "cut")
    assert "the checkpoint after epoch 2 of 4 (the run is interrupted" in source
    np.testing.assert_allclose(model.predict(data.test_images, verbose=0),
                               two.model.predict(data.test_images, verbose=0), atol=1e-5)
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "cut"), "--data", "synthetic"])
    assert result.exit_code == 0 and "Note: using" in result.output and "test accuracy" in result.output
    finished = runner.invoke(cli, ["inspect", str(tmp_path / "two")])
    assert finished.exit_code == 0 and "Unknown network" not in finished.output


def test_a_folder_that_is_not_a_run_directory_is_named(tmp_path):
    from keras_cifar.serving.predict import load_trained_model

    with pytest.raises(ModelFileError, match="not a run directory"):
        load_trained_model(tmp_path)
