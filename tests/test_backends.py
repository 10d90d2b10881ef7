"""Keras backends: choosing one (names checked, missing packages named with their extra),
runs recording theirs, resume refused across backends, and the load matrix: a model trained on
each backend loads on each, with the same logits."""

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_cifar import backends
from keras_cifar.errors import ConfigError, MissingDependency

INSTALLED = [b for b in backends.BACKENDS if importlib.util.find_spec(b) is not None]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_an_unknown_backend_is_refused_listing_the_three():
    with pytest.raises(ConfigError, match=r"\['tensorflow', 'jax', 'torch'\]. Received: backend='jaks'"):
        backends.check_backend("jaks")


def test_the_environment_names_the_backend(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backends.requested_backend() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backends.requested_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    with pytest.raises(ConfigError, match="KERAS_BACKEND"):
        backends.requested_backend()


def test_a_missing_backend_names_its_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(MissingDependency) as info:
        backends.select_backend("jax")
    assert info.value.extra == "jax" and 'pip install -e ".[jax]"' in str(info.value)


def test_keras_already_running_on_another_backend_is_refused():
    import keras

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"{other} is not installed")
    with pytest.raises(ConfigError, match="already running on"):
        backends.select_backend(other)


def test_the_cli_refuses_an_unknown_backend_before_starting_keras():
    code = ("import sys; from keras_cifar.cli import main; sys.argv = ['keras-cifar', 'train', "
            "'mlp2', '--backend', 'jaks', '--data', 'synthetic'];\n"
            "try:\n    main()\nexcept SystemExit as e:\n"
            "    print(e.code, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                          timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stderr[-1500:]
    assert "'tensorflow', 'jax', 'torch'" in done.stderr


def _train(backend, out, *extra):
    return subprocess.run([sys.executable, "-m", "keras_cifar", "train", "mlp2", "--backend",
                           backend, "--data", "synthetic", "--epochs", "1", "--limit", "300",
                           "--out", str(out), "--name", "run", *extra],
                          capture_output=True, text=True, env=ENV, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif("jax" not in INSTALLED, reason="jax is not installed (the jax extra)")
def test_a_jax_run_records_its_backend_and_resume_on_another_is_refused(tmp_path):
    done = _train("jax", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["identity"]["backend"] == "jax"
    assert config["versions"]["backend"] == "jax" and config["versions"]["jax"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["backend"] == "jax"
    refused = _train("tensorflow", tmp_path, "--resume")
    assert refused.returncode == 2
    assert "trained on the jax backend and this process runs tensorflow" in refused.stderr
    assert "--backend jax" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_same_seed_gives_the_same_history_in_two_fresh_processes(tmp_path, backend):
    """Convolutions, pooling and dense layers (LeNet-5) with momentum: bit-equal histories."""
    if backend not in INSTALLED:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    histories = []
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, "-m", "keras_cifar", "train", "lenet5",
                               "--backend", backend, "--data", "synthetic", "--epochs", "2",
                               "--limit", "512", "--lr", "0.05", "--momentum", "0.9", "--out",
                               str(tmp_path), "--name", name], capture_output=True, text=True,
                              env=ENV, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        rows = list(csv.DictReader((tmp_path / name / "history.csv").open()))
        histories.append([(r["loss"], r["val_loss"], r["accuracy"]) for r in rows])
    assert len(histories[0]) == 2 and histories[0] == histories[1]
    speed = json.loads((tmp_path / "a" / "config.json").read_text())["speed"]
    # models/jax_kernels.py: LeNet-5's two poolings and two convolutions, on JAX only
    assert speed["jax_kernels"] == ({"max_pooling": 2, "convolution": 2} if backend == "jax"
                                    else None)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_command_over_a_model_runs_on_the_backend(tmp_path, backend):
    from PIL import Image

    if backend not in INSTALLED:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    done = _train(backend, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "run"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    commands = {"evaluate": [str(run), "--data", "synthetic", "--limit", "300"],
                "predict": [str(run), str(tmp_path / "grey.png")],
                "inspect": [str(run)], "kernels": [str(run), "-o", str(tmp_path / "k.png")],
                "plot": [str(run)]}
    for command, arguments in commands.items():
        done = subprocess.run([sys.executable, "-m", "keras_cifar", command, *arguments],
                              capture_output=True, text=True, timeout=300,
                              env={**ENV, "KERAS_BACKEND": backend})
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, command
    assert (tmp_path / "k.png").stat().st_size > 1000 and (run / "curves.png").exists()


@pytest.mark.slow
@pytest.mark.skipif("jax" not in INSTALLED, reason="jax is not installed (the jax extra)")
def test_a_reproduction_keeps_each_backends_runs_apart_in_one_folder(tmp_path):
    def reproduce(*extra):
        return subprocess.run([sys.executable, "-m", "keras_cifar", "reproduce", "run", "mlp2",
                               "--seeds", "0-1", "--data", "synthetic", "--limit", "256",
                               "--out", str(tmp_path), *extra], capture_output=True, text=True,
                              env=ENV, timeout=600)

    for extra in ((), ("--backend", "jax")):
        done = reproduce(*extra)
        assert done.returncode == 0, done.stderr[-2000:]
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["mlp2", "mlp2-jax", "mlp2-jax-s1", "mlp2-s1"]
    assert "backend" not in json.loads((runs / "mlp2" / "config.json").read_text())["identity"]
    assert json.loads((runs / "mlp2-jax" / "config.json").read_text())["identity"]["backend"] == "jax"
    table = (tmp_path / "BACKENDS.md").read_text()
    assert re.search(r"\| mlp2 \| tensorflow \| [0-9.]+ \| 2 \|", table), table
    assert re.search(r"\| mlp2 \| jax \| [0-9.]+ \| 2 \|", table), table
    again = reproduce("--backend", "jax")  # finished: nothing trains again
    assert again.returncode == 0 and "Epoch 1/" not in again.stdout + again.stderr


@pytest.mark.slow
def test_mirrored_strategy_is_tensorflow_only(tmp_path):
    if "jax" not in INSTALLED:
        pytest.skip("jax is not installed (the jax extra)")
    done = _train("jax", tmp_path, "--strategy", "mirrored")
    assert done.returncode == 2 and "TensorFlow's tf.distribute" in done.stderr
    assert "Traceback" not in done.stderr


_LOGITS = textwrap.dedent("""
    import sys, numpy as np, keras
    from keras_cifar.data import synthetic_data
    model = keras.saving.load_model(sys.argv[1])
    images = synthetic_data(10, 256, seed=3).test_images
    np.save(sys.argv[2], np.asarray(model.predict(images, verbose=0), dtype=np.float64))
    print(keras.backend.backend())
""")


@pytest.mark.slow
@pytest.mark.skipif(len(INSTALLED) < 2, reason="fewer than two Keras backends are installed")
def test_load_matrix_a_model_from_each_backend_predicts_alike_on_each(tmp_path):
    models = {}
    for backend in INSTALLED:
        done = _train(backend, tmp_path / backend)
        assert done.returncode == 0, done.stderr[-2000:]
        models[backend] = tmp_path / backend / "run" / "model.keras"
    for trained, path in models.items():
        logits = {}
        for loader in INSTALLED:
            out = tmp_path / f"{trained}-on-{loader}.npy"
            done = subprocess.run([sys.executable, "-c", _LOGITS, str(path), str(out)],
                                  capture_output=True, text=True, timeout=300,
                                  env={**ENV, "KERAS_BACKEND": loader})
            assert done.returncode == 0 and done.stdout.split()[-1] == loader, done.stderr[-2000:]
            logits[loader] = np.load(out)
        reference = logits[trained]
        for loader, values in logits.items():
            assert np.abs(values - reference).max() < 1e-4, (trained, loader)
            np.testing.assert_array_equal(values.argmax(axis=1), reference.argmax(axis=1))
