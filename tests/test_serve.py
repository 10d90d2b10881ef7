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
    metrics = json.loads(result.output)
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
