"""train: every network's smoke run, the run directory, resume after SIGKILL, NaN, refusals."""

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cifar.training import rundir
from keras_cifar.cli import cli
from keras_cifar.training.config import RunConfig
from keras_cifar._env import onednn_setting
from keras_cifar.training.train import train_run

from conftest import NETWORK_IDS, ZOO, stop_after_epoch

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))

ARTIFACTS = [rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.SUMMARY, rundir.PARAMETERS, rundir.METRICS,
             rundir.CURVES, rundir.KERNELS, rundir.CONFUSION]
SYNTHETIC = ["--data", "synthetic"]


def only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_every_network_trains_one_epoch_and_writes_every_artifact(runner, tmp_path, network_id):
    result = runner.invoke(cli, ["train", network_id, *SYNTHETIC, "--epochs", "1", "--limit", "300",
                                 "--batch-size", "64", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path)
    assert run_dir.name.startswith(f"{network_id}-lr")
    assert all((run_dir / name).is_file() for name in ARTIFACTS)
    assert not (run_dir / rundir.BACKUP_DIR).exists()
    config = json.loads((run_dir / rundir.CONFIG).read_text())
    assert config["status"] == "finished"
    assert config["identity"]["network"]["id"] == network_id
    assert config["identity"]["data"]["is_cifar10"] is False
    assert {"keras", "tensorflow"} <= set(config["versions"])
    # the network's own recipe: the report's plain SGD stays out of the identity
    recipe = ZOO.recipe(ZOO.network(network_id).recipe)
    assert config["identity"].get("recipe") == (None if recipe.is_plain else recipe.settings())
    with open(run_dir / rundir.HISTORY) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(rows[0])
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    assert len(metrics["per_class_accuracy"]) == 10
    assert np.array(metrics["confusion_matrix"]).sum() == 300
    assert abs(metrics["test_accuracy"] - float(rows[0]["val_accuracy"])) < 1e-6
    assert "Total params" in (run_dir / rundir.SUMMARY).read_text()
    assert "Layer: dense1.kernel" in (run_dir / rundir.PARAMETERS).read_text()
    assert f"Run directory: {run_dir}" in result.output


def test_saved_model_predicts_as_the_trained_one(tmp_path, tiny_data, zoo):
    result = train_run(RunConfig.of(zoo.network("lenet5"), epochs=1), tiny_data, out_dir=tmp_path, verbose=0)
    pixels = tiny_data.test_images[:16]
    loaded = keras.saving.load_model(result.run_dir / rundir.MODEL)
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0),
                               result.model.predict(pixels, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_learns_synthetic_data(tmp_path, zoo):
    from keras_cifar.data import synthetic_data

    result = train_run(RunConfig.of(zoo.network("mlp2"), epochs=3), synthetic_data(2000, 500), out_dir=tmp_path, verbose=0)
    assert result.metrics["test_accuracy"] > 0.5


@pytest.mark.slow
def test_same_seed_same_history_with_onednn_convolutions(tmp_path, tiny_data, zoo):
    histories = []
    for name in ("a", "b"):
        result = train_run(RunConfig.of(zoo.network("lenet5"), epochs=2, lr=0.05, momentum=0.9),
                           tiny_data, out_dir=tmp_path, name=name, verbose=0)
        assert result.config["speed"]["op_determinism"] is True
        histories.append([(r["loss"], r["val_loss"]) for r in rundir.read_history(result.run_dir)])
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_same_seed_same_history_with_xla_each_in_a_fresh_process(tmp_path):
    """XLA's CPU kernels are deterministic for the MLPs without op determinism: two fresh
    processes (where no earlier run switched op determinism on) give the same history."""
    histories = []
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, "-m", "keras_cifar", "train", "mlp2", *SYNTHETIC,
                               "--epochs", "2", "--limit", "256", "--lr", "0.05", "--out",
                               str(tmp_path), "--name", name], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert done.returncode == 0, done.stderr[-2000:]
        speed = rundir.read_config(tmp_path / name)["speed"]
        assert speed["xla"] is True and speed["op_determinism"] is False, speed
        histories.append([(r["loss"], r["val_loss"]) for r in rundir.read_history(tmp_path / name)])
    assert histories[0] == histories[1]


def _train_cli(out, *extra):
    return [sys.executable, "-m", "keras_cifar", "train", "mlp2", *SYNTHETIC, "--epochs", "12",
            "--lr", "0.01", "--out", str(out), "--name", "run", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}
    reference = subprocess.run(_train_cli(tmp_path / "reference"), env=env, capture_output=True,
                               text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]

    victim = subprocess.Popen(_train_cli(tmp_path / "killed"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "killed" / "run" / rundir.HISTORY
    deadline = time.time() + 300
    while time.time() < deadline and victim.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 1 + 3:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert json.loads((tmp_path / "killed" / "run" / rundir.CONFIG).read_text())["status"] == "running"

    refused = subprocess.run(_train_cli(tmp_path / "killed"), env=env, capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = subprocess.run(_train_cli(tmp_path / "killed", "--resume"), env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = rundir.read_history(tmp_path / "killed" / "run")
    assert [int(r["epoch"]) for r in rows] == list(range(12))
    expected = rundir.read_history(tmp_path / "reference" / "run")
    np.testing.assert_allclose([r["val_loss"] for r in rows], [r["val_loss"] for r in expected],
                               rtol=1e-6)
    final = keras.saving.load_model(tmp_path / "killed" / "run" / rundir.MODEL).get_weights()
    wanted = keras.saving.load_model(tmp_path / "reference" / "run" / rundir.MODEL).get_weights()
    for a, b in zip(final, wanted):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_nan_loss_stops_with_exit_1_and_failed_status(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--lr", "1e12", "--momentum", "0.9",
                                 "--epochs", "3", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "NaN" in result.output and "epoch 1" in result.output and "smaller --lr" in result.output
    assert "Traceback" not in result.output
    config = json.loads((only_run_dir(tmp_path) / rundir.CONFIG).read_text())
    assert config["status"] == "failed" and "NaN or infinite" in config["error"]
    assert rundir.run_status(only_run_dir(tmp_path)) is rundir.RunStatus.FAILED


@pytest.mark.slow
def test_refuses_to_overwrite_a_finished_run(runner, tmp_path):
    args = ["train", "mlp2", *SYNTHETIC, "--epochs", "1", "--limit", "100", "--out", str(tmp_path)]
    assert runner.invoke(cli, args).exit_code == 0
    run_dir = only_run_dir(tmp_path)
    before = (run_dir / rundir.MODEL).stat().st_mtime_ns
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 2
    assert "already holds a finished run" in refused.output
    assert (run_dir / rundir.MODEL).stat().st_mtime_ns == before
    again = runner.invoke(cli, [*args, "--resume"])
    assert again.exit_code == 0 and "already finished" in again.output
    forced = runner.invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0
    assert (run_dir / rundir.MODEL).stat().st_mtime_ns != before


@pytest.mark.slow
def test_refuses_a_named_run_with_other_settings(runner, tmp_path):
    base = ["train", "mlp2", *SYNTHETIC, "--epochs", "1", "--limit", "100", "--out", str(tmp_path),
            "--name", "mine"]
    assert runner.invoke(cli, base).exit_code == 0
    other = runner.invoke(cli, [*base, "--lr", "0.02", "--resume"])
    assert other.exit_code == 2
    assert "these settings differ: lr" in other.output


@pytest.mark.slow
def test_limit_changes_the_run_identity(runner, tmp_path):
    for limit in ("100", "120"):
        assert runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--epochs", "1", "--limit", limit,
                                   "--out", str(tmp_path)]).exit_code == 0
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("option, value", [("--lr", "0"), ("--lr", "-1"), ("--momentum", "1"),
                                           ("--momentum", "-0.1"), ("--epochs", "0")])
def test_bad_values_refused_before_loading(runner, tmp_path, option, value):
    result = runner.invoke(cli, ["train", "mlp2", "--data-dir", str(tmp_path / "missing"),
                                 option, value, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert option in result.output
    assert not (tmp_path / "out").exists()


def test_batch_larger_than_data_exits_2(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--limit", "50", "--batch-size", "64",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Received: batch_size=64" in result.output


@pytest.mark.slow
def test_integer_momentum_works(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--momentum", "0", "--epochs", "1",
                                 "--limit", "100", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((only_run_dir(tmp_path) / rundir.CONFIG).read_text())["identity"]["momentum"] == 0


def test_unknown_network_exits_2_with_known_ids(runner):
    result = runner.invoke(cli, ["train", "lenet6"])
    assert result.exit_code == 2
    assert "Did you mean 'lenet5'" in result.output and "cnn3" in result.output


def test_speed_settings_recorded(runner, tmp_path):
    result = runner.invoke(cli, ["train", "cnn1", *SYNTHETIC, "--epochs", "1", "--limit", "128",
                                 "--xla", "off", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    speed = json.loads((only_run_dir(tmp_path) / rundir.CONFIG).read_text())["speed"]
    assert speed == {"steps_per_execution": 2, "xla": False, "mixed_precision": False,
                     "op_determinism": True, "threads": 0, "onednn": onednn_setting(),
                     "fused_gelu": False, "jax_kernels": None}


@pytest.mark.slow
def test_mixed_precision_is_a_different_run_with_float32_logits(runner, tmp_path):
    args = ["train", "cnn1", *SYNTHETIC, "--epochs", "1", "--limit", "128", "--out"]
    plain = runner.invoke(cli, [*args, str(tmp_path / "fp32")])
    mixed = runner.invoke(cli, [*args, str(tmp_path / "mixed"), "--mixed-precision"])
    assert plain.exit_code == 0 and mixed.exit_code == 0, plain.output + mixed.output
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    plain_dir, mixed_dir = only_run_dir(tmp_path / "fp32"), only_run_dir(tmp_path / "mixed")
    assert plain_dir.name != mixed_dir.name
    plain_config = json.loads((plain_dir / rundir.CONFIG).read_text())
    mixed_config = json.loads((mixed_dir / rundir.CONFIG).read_text())
    # float32 identities keep their pre-mixed-precision form (and names)
    assert "precision" not in plain_config["identity"]
    policy = "mixed_float16" if HAS_GPU else "mixed_bfloat16"
    assert mixed_config["identity"]["precision"] == policy
    assert mixed_config["speed"]["mixed_precision"] == policy
    model = keras.saving.load_model(mixed_dir / rundir.MODEL)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    assert model.layers[1].dtype_policy.compute_dtype == policy.split("_")[1]
    history = rundir.read_history(mixed_dir)
    assert np.isfinite(history[-1]["loss"]) and np.isfinite(history[-1]["val_loss"])


# A small airbench-like network under airbench93's whole recipe: every recipe field at work.
TINY_BENCH = {
    "id": "tinybench", "title": "tiny airbench", "preprocess": "standardize", "recipe": "airbench93",
    "layers": [
        {"kind": "whiten", "kernel_size": 2, "images": 100},
        {"kind": "activation", "activation": "gelu"},
        {"kind": "conv", "filters": 24, "padding": "same", "use_bias": False, "init": "dirac"},
        {"kind": "maxpool", "pool_size": 2},
        {"kind": "batchnorm", "momentum": 0.6, "epsilon": 1e-12, "scale": False},
        {"kind": "activation", "activation": "gelu"},
        {"kind": "globalmaxpool"},
        {"kind": "dense", "units": 10, "use_bias": False},
        {"kind": "scale", "factor": 1 / 9},
    ],
    "train": {"epochs": 3, "batch_size": 50, "lr": 0.2},
}


def _tiny_bench_zoo():
    from keras_cifar.zoo import BUILTIN_ZOO_PATH, parse_zoo

    raw = json.loads(BUILTIN_ZOO_PATH.read_text())
    raw["networks"].append(TINY_BENCH)
    return parse_zoo(raw)


def test_a_recipe_run_records_its_recipe_whitening_and_tta(tmp_path):
    from keras_cifar.data import synthetic_data

    zoo = _tiny_bench_zoo()
    config = RunConfig.of(zoo.network("tinybench"), recipe=zoo.recipe("airbench93"))
    assert (config.epochs, config.batch_size, config.lr) == (3, 50, 0.2)
    result = train_run(config, synthetic_data(200, 100), out_dir=tmp_path, verbose=0)
    saved = rundir.read_config(result.run_dir)
    assert saved["identity"]["recipe"] == zoo.recipe("airbench93").settings()
    assert saved["recipe"]["id"] == "airbench93"
    (whitening,) = saved["whitening"]
    assert whitening["layer"] == "whiten1" and whitening["images"] == 100
    assert result.metrics["tta"] == "mirror_translate"
    assert 0 <= result.metrics["tta_test_accuracy"] <= 1
    # model.keras is plain Keras: it loads without keras-cifar's objects, with a plain SGD
    done = subprocess.run([sys.executable, "-c", (
        "import keras, sys; m = keras.saving.load_model(sys.argv[1]); "
        "print(type(m.optimizer).__name__, type(m.loss).__name__)"), str(result.run_dir / rundir.MODEL)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["SGD", "SparseCategoricalCrossentropy"]


def test_resume_mid_schedule_ends_equal_to_an_uninterrupted_run(tmp_path):
    from keras_cifar.data import synthetic_data
    from keras_cifar.errors import TrainingInterrupted

    zoo = _tiny_bench_zoo()
    config = RunConfig.of(zoo.network("tinybench"), recipe=zoo.recipe("airbench93"))
    data = synthetic_data(200, 100)
    whole = train_run(config, data, out_dir=tmp_path / "whole", verbose=0)
    with pytest.raises(TrainingInterrupted):
        train_run(config, data, out_dir=tmp_path / "cut", verbose=0, callbacks=[stop_after_epoch(1)])
    resumed = train_run(config, data, out_dir=tmp_path / "cut", verbose=0, resume=True)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2]
    np.testing.assert_allclose([r["val_loss"] for r in resumed.history],
                               [r["val_loss"] for r in whole.history], rtol=1e-6)
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert resumed.metrics["tta_test_accuracy"] == whole.metrics["tta_test_accuracy"]


def test_the_recipe_is_part_of_the_run_identity(tmp_path):
    from keras_cifar.data import synthetic_data
    from keras_cifar.zoo.recipe import with_changes

    zoo = _tiny_bench_zoo()
    data = synthetic_data(200, 100)
    base = RunConfig.of(zoo.network("tinybench"), recipe=zoo.recipe("airbench93"))
    changed = base.replace(recipe=with_changes(base.recipe, {"label_smoothing": 0.1}))
    assert rundir.run_name(base.identity(data)) != rundir.run_name(changed.identity(data))
    plain = RunConfig.of(ZOO.network("mlp2"))
    assert "recipe" not in plain.identity(data)


def test_train_cli_with_a_recipe_prints_the_tta_accuracy(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--epochs", "1", "--limit", "100",
                                 "--recipe", "report-augmented", "--set", "tta=mirror",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "with test-time augmentation (mirror)" in result.output
    saved = rundir.read_config(only_run_dir(tmp_path))
    assert saved["identity"]["recipe"]["augment"]["flip"] == "alternate"
    assert saved["identity"]["recipe"]["tta"] == "mirror"
    assert saved["identity"]["lr"] == 0.005  # mlp2's own: report-augmented brings no numbers
    bad = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--set", "schedule.peak=2"])
    assert bad.exit_code == 2 and "schedule" in bad.output and "Traceback" not in bad.output


def test_a_recipe_run_that_diverges_is_marked_failed_with_its_epochs_kept(tmp_path):
    from keras_cifar.data import synthetic_data
    from keras_cifar.errors import TrainingError

    zoo = _tiny_bench_zoo()
    config = RunConfig.of(zoo.network("tinybench"), recipe=zoo.recipe("airbench93"), lr=1e38,
                          epochs=2)
    with pytest.raises(TrainingError) as info:
        train_run(config, synthetic_data(200, 100), out_dir=tmp_path, verbose=0)
    run_dir = only_run_dir(tmp_path)
    assert rundir.run_status(run_dir) is rundir.RunStatus.FAILED
    assert info.value.epoch == rundir.read_config(run_dir)["diverged_epoch"]
