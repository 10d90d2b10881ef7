"""api: every CLI command as one Python call on the same code path; names lazily exported."""

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

import keras_cifar as kc
from keras_cifar.training import rundir
from keras_cifar.cli import cli
from keras_cifar.errors import ConfigError
from conftest import EXPECTED_PARAMS, TEST_ZOO


def test_every_public_name_resolves():
    for name in kc.__all__:
        assert getattr(kc, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'fit'"):
        kc.fit


@pytest.mark.parametrize("network_id", ["mlp-baseline", "cnn3"])
def test_build_model_by_zoo_id(network_id):
    model = kc.build_model(network_id)
    assert model.count_params() == EXPECTED_PARAMS[network_id]
    assert model.name == network_id.replace("-", "_")


def test_build_model_of_an_unknown_id_suggests_the_nearest():
    with pytest.raises(kc.ZooError, match="Did you mean 'cnn3'"):
        kc.build_model("cnn4")


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data):
    return kc.train_network("mlp2", tiny_data, epochs=2, out_dir=tmp_path_factory.mktemp("runs"),
                            verbose=0)


def test_train_network_returns_model_history_metrics_and_run_dir(run, tiny_data):
    assert [row["epoch"] for row in run.history] == [0, 1]
    assert run.metrics["test_accuracy"] == pytest.approx(run.history[-1]["val_accuracy"], abs=1e-6)
    assert (run.run_dir / rundir.MODEL).is_file() and run.run_dir.name.startswith("mlp2-lr0.005-m0.9-e2-")
    assert run.config["identity"]["lr"] == 0.005  # the network's (the notebook's) setting


def test_a_bad_setting_is_refused_before_any_work(tmp_path, tiny_data):
    with pytest.raises(ValueError, match="momentum"):
        kc.train_network("mlp2", tiny_data, momentum=1.5, out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_run_figures_are_matplotlib_figures_of_the_saved_files(run):
    figures = kc.run_figures(run)
    assert set(figures) == {rundir.CURVES, rundir.KERNELS, rundir.CONFUSION}
    assert all(isinstance(f, Figure) for f in figures.values())
    curves = figures[rundir.CURVES]
    loss_axis = curves.axes[0]
    plotted = loss_axis.get_lines()[1].get_ydata()  # test loss against epoch
    np.testing.assert_allclose(plotted, [row["val_loss"] for row in run.history])
    assert "mlp2" in curves.texts[0].get_text()  # the run's title
    import matplotlib.pyplot  # noqa: F401  (only to check nothing was registered with pyplot)
    assert matplotlib.pyplot.get_fignums() == []


def test_evaluate_is_what_the_cli_prints(run, runner, tiny_data):
    from keras_cifar.data import synthetic_data

    printed = runner.invoke(cli, ["evaluate", str(run.run_dir / rundir.MODEL), "--data", "synthetic",
                                  "--json"])
    assert printed.exit_code == 0, printed.output
    same_data = kc.evaluate(run.run_dir / rundir.MODEL, synthetic_data())  # --data synthetic's set
    assert json.loads(printed.stdout) == json.loads(json.dumps(same_data))
    ours = kc.evaluate(run.model, tiny_data)
    assert ours["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"], abs=1e-6)
    assert ours["class_names"] == list(tiny_data.class_names)


def test_predict_arrays_and_files(run, tiny_data, tmp_path):
    from PIL import Image

    probabilities = kc.predict(run.model, tiny_data.test_images[:5])
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    logits = run.model.predict(tiny_data.test_images[:5], verbose=0)
    assert probabilities.argmax(1).tolist() == logits.argmax(1).tolist()
    path = tmp_path / "one.png"
    Image.fromarray(tiny_data.test_images[0]).save(path)
    (row,) = kc.predict(run.run_dir / rundir.MODEL, [path])
    assert row["top"][0]["class"] == tiny_data.class_names[int(probabilities[0].argmax())]


def test_export_model_from_a_path(run, tmp_path):
    written = kc.export_model(run.run_dir / rundir.MODEL, tmp_path / "m.tflite", "litert")
    assert written == tmp_path / "m.tflite" and written.stat().st_size > 100_000


def test_read_results_is_the_published_table():
    import csv

    from keras_cifar.reproduce.results import RESULTS_COLUMNS

    rows = kc.read_results("figures")
    with open("figures/results.csv", newline="") as f:
        published = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [r["id"] for r in published]
    assert all(list(r)[:len(RESULTS_COLUMNS)] == list(RESULTS_COLUMNS) for r in rows)
    assert all(r["verdict"] for r in rows)


@pytest.mark.slow
def test_reproduce_experiments_runs_and_returns_the_table(tmp_path):
    zoo_file = tmp_path / "zoo.json"
    zoo_file.write_text(json.dumps(TEST_ZOO))
    rows = kc.reproduce_experiments(["tiny-b"], data="synthetic", seeds=[0, 1], limit=200,
                                    out_dir=tmp_path / "out", zoo_path=zoo_file)
    (row,) = rows
    assert row["id"] == "tiny-b" and row["seeds"] == 2
    assert (tmp_path / "out" / "runs" / "tiny-b-s1" / rundir.MODEL).is_file()


def test_train_network_takes_a_source_name_as_data(tmp_path):
    run = kc.train_network("mlp2", "synthetic", epochs=1, limit=100, out_dir=tmp_path, verbose=0)
    assert run.config["identity"]["data"]["is_cifar10"] is False
    assert run.metrics["test_accuracy"] >= 0


@pytest.mark.parametrize("out_dir", ["missing", "figures"])
def test_read_results_of_a_folder_without_a_reproduction_raises(tmp_path, monkeypatch, out_dir):
    monkeypatch.chdir(tmp_path)  # outside the project root, `figures` does not exist either
    with pytest.raises(kc.KerasCifarError, match="holds no reproduction.*Received: out_dir="):
        kc.read_results(out_dir)


@pytest.mark.parametrize("limit", [0, -3, 2.5])
def test_evaluate_refuses_a_limit_train_refuses(tiny_data, limit):
    with pytest.raises(ConfigError, match="`limit` must be an integer >= 1"):
        kc.evaluate("no-model-needed.keras", tiny_data, limit=limit)


def test_training_the_same_settings_again_returns_the_finished_run_with_its_model(tmp_path,
                                                                                  tiny_data):
    first = kc.train_network("mlp2", tiny_data, epochs=1, out_dir=tmp_path, verbose=0)
    again = kc.train_network("mlp2", tiny_data, epochs=1, out_dir=tmp_path, verbose=0)
    assert again.already_finished and again.run_dir == first.run_dir
    images = tiny_data.test_images[:8]
    np.testing.assert_allclose(again.model.predict(images, verbose=0),
                               first.model.predict(images, verbose=0), atol=1e-6)
    assert kc.evaluate(again.model, tiny_data)["test_accuracy"] == pytest.approx(
        first.metrics["test_accuracy"])


@pytest.mark.faults
def test_a_finished_run_whose_model_was_deleted_is_refused_not_called_finished(tmp_path,
                                                                               tiny_data):
    run = kc.train_network("mlp2", tiny_data, epochs=1, out_dir=tmp_path, verbose=0)
    (run.run_dir / rundir.MODEL).unlink()
    for settings in ({}, {"resume": True}):
        with pytest.raises(kc.KerasCifarError, match="model.keras is missing.*`force=True`"):
            kc.train_network("mlp2", tiny_data, epochs=1, out_dir=tmp_path, verbose=0, **settings)
    rebuilt = kc.train_network("mlp2", tiny_data, epochs=1, out_dir=tmp_path, verbose=0,
                               force=True)
    assert not rebuilt.already_finished and (rebuilt.run_dir / rundir.MODEL).is_file()


def test_a_python_run_writes_the_same_figures_as_the_cli(tmp_path, tiny_data):
    run = kc.train_network("mlp2", tiny_data, epochs=1, out_dir=tmp_path, verbose=0)
    for name in (rundir.CURVES, rundir.KERNELS, rundir.CONFUSION):
        assert (run.run_dir / name).stat().st_size > 1000, name
