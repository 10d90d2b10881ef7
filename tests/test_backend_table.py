"""The backend table from run directories: each backend's runs found under its own names
beside TensorFlow's, never mistaken for them; differences from TensorFlow with their standard
errors, seed noise called by name; nothing written without runs off TensorFlow."""

import csv
import json

import pytest

from keras_cifar.reproduce import backend_table, experiments, results

from conftest import ZOO, fake_finished_run


@pytest.fixture
def out(tmp_path):
    for seed, accuracy in enumerate([0.53, 0.54, 0.55]):
        fake_finished_run(tmp_path, "mlp2", seed, [0.5, accuracy])
    for seed, accuracy in enumerate([0.54, 0.55]):
        run = fake_finished_run(tmp_path, "mlp2", seed, [0.5, accuracy], seconds=30.0,
                                backend="jax")
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "versions": {"jax": "0.4.1"}}))
    for seed, accuracy in enumerate([0.60, 0.61]):
        fake_finished_run(tmp_path, "mlp2", seed, [0.5, accuracy], backend="torch")
    fake_finished_run(tmp_path, "cnn3", 0, [0.7, 0.72])  # TensorFlow only: not in the table
    return tmp_path


def test_each_backend_has_its_own_run_directories():
    assert experiments.experiment_run_dir("o", "cnn3").name == "cnn3"
    assert experiments.experiment_run_dir("o", "cnn3", 2).name == "cnn3-s2"
    assert experiments.experiment_run_dir("o", "cnn3", 0, "jax").name == "cnn3-jax"
    assert experiments.experiment_run_dir("o", "cnn3", 1, "torch").name == "cnn3-torch-s1"


def test_runs_of_one_backend_are_never_counted_as_another(out):
    e = ZOO.experiment("mlp2")
    assert [r.run_dir.name for r in results.finished_runs(out, e)] == ["mlp2", "mlp2-s1", "mlp2-s2"]
    assert [r.run_dir.name for r in results.finished_runs(out, e, backend="jax")] == [
        "mlp2-jax", "mlp2-jax-s1"]
    (out / "runs" / "mlp2-jax" / "config.json").write_text(
        (out / "runs" / "mlp2" / "config.json").read_text())  # a TensorFlow run under jax's name
    assert [r.run_dir.name for r in results.finished_runs(out, e, backend="jax")] == ["mlp2-jax-s1"]


def test_differences_from_tensorflow_with_their_standard_errors(out):
    ((experiment, by_backend),) = backend_table.backend_rows(ZOO, out)
    assert experiment.id == "mlp2" and list(by_backend) == ["tensorflow", "jax", "torch"]
    assert by_backend["jax"].mean == pytest.approx(0.545)
    assert by_backend["jax"].minutes == pytest.approx(1.0)  # 2 epochs x 30 s
    difference, se, within = backend_table._against_tensorflow(by_backend, "jax")
    # TensorFlow: sd 0.01 over 3 seeds; jax: sd 0.00707 over 2
    assert difference == pytest.approx(0.005)
    assert se == pytest.approx(((0.01 ** 2) / 3 + (0.0070711 ** 2) / 2) ** 0.5, rel=1e-4)
    assert within is True
    assert backend_table._against_tensorflow(by_backend, "torch")[2] is False
    assert backend_table._against_tensorflow(by_backend, "tensorflow") == (None, None, None)


def test_the_table_and_csv_are_written_only_where_other_backends_ran(out, tmp_path_factory):
    path = backend_table.write_backend_table(ZOO, out)
    text = path.read_text()
    assert "| mlp2 | jax | 0.4.1 | 2 | 54.50% +- 0.71 | +0.50 +- 0.76 (within seed noise) |" in text
    torch_line = next(line for line in text.splitlines() if "| mlp2 | torch |" in line)
    assert "within seed noise" not in torch_line and "`runs/mlp2-torch-s1`" in torch_line
    assert "cnn3" not in text and "| Test CPU | `runs/mlp2-jax`, `runs/mlp2-jax-s1` |" in text
    rows = list(csv.DictReader((out / backend_table.BACKENDS_CSV).open()))
    assert [(r["backend"], r["within_noise"], r["cpu"]) for r in rows] == [
        ("tensorflow", "", "Test CPU"), ("jax", "true", "Test CPU"), ("torch", "false", "Test CPU")]
    only_tensorflow = tmp_path_factory.mktemp("tf")
    fake_finished_run(only_tensorflow, "mlp2", 0, [0.5, 0.53])
    assert backend_table.write_backend_table(ZOO, only_tensorflow) is None
    assert not (only_tensorflow / backend_table.BACKENDS_MD).exists()


def test_the_published_backend_table_regenerates_from_its_runs(tmp_path):
    import shutil
    from pathlib import Path

    figures = Path(__file__).resolve().parents[1] / "figures"
    if not (figures / backend_table.BACKENDS_MD).exists():
        pytest.skip("no backend table published yet")
    shutil.copytree(figures / "runs", tmp_path / "runs")
    backend_table.write_backend_table(ZOO, tmp_path)
    for name in (backend_table.BACKENDS_MD, backend_table.BACKENDS_CSV):
        assert (tmp_path / name).read_text() == (figures / name).read_text(), name
