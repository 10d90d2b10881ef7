"""startup: oneDNN is asked for before TensorFlow starts, an explicit setting wins, and a run
records what applied."""

import json
import os
import subprocess
import sys

import pytest

from keras_cifar import _env


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != _env.ONEDNN_ENV_VAR}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


ASK_AND_PRINT = ("import os; from keras_cifar import _env; _env.prefer_onednn(); "
                 "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")


def test_prefer_onednn_asks_for_it_before_tensorflow_starts():
    assert _python(ASK_AND_PRINT) == "1"


def test_an_explicit_setting_wins():
    assert _python(ASK_AND_PRINT, TF_ENABLE_ONEDNN_OPTS="0") == "0"


def test_after_tensorflow_started_it_changes_nothing():
    """TensorFlow read the variable at import; setting it later would only make the record lie."""
    assert _python("import tensorflow; " + ASK_AND_PRINT, TF_CPP_MIN_LOG_LEVEL="3") == "None"


@pytest.mark.parametrize("value, setting", [
    ("1", "on"), ("true", "on"), ("0", "off"), ("False", "off"), (None, "tensorflow default"),
    ("", "tensorflow default")])
def test_onednn_setting_names_what_the_environment_asked(monkeypatch, value, setting):
    if value is None:
        monkeypatch.delenv(_env.ONEDNN_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(_env.ONEDNN_ENV_VAR, value)
    assert _env.onednn_setting() == setting


@pytest.mark.slow
@pytest.mark.parametrize("env, recorded", [({}, "on"), ({"TF_ENABLE_ONEDNN_OPTS": "0"}, "off")])
def test_a_cli_run_records_the_onednn_setting_it_ran_with(tmp_path, env, recorded):
    code = ("import sys; from keras_cifar.cli import cli; sys.argv = ['keras-cifar', 'train', "
            f"'lenet5', '--data', 'synthetic', '--epochs', '1', '--limit', '128', '--out', "
            f"{str(tmp_path)!r}, '--name', 'run']; cli()")
    _python(code, TF_CPP_MIN_LOG_LEVEL="3", KERAS_CIFAR_CACHE_DIR=str(tmp_path / "cache"), **env)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["speed"]["onednn"] == recorded
