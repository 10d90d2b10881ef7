"""errors: one hierarchy; the CLI maps each class to its exit code and lets anything else
through as the bug it is."""

import signal

import pytest

from keras_cifar import errors
from keras_cifar.cli import cli, exit_code


@pytest.mark.parametrize("error, code", [
    (errors.ConfigError("lr"), 2), (errors.ZooError("zoo"), 2), (errors.RunError("dir"), 2),
    (errors.RunInUse("busy"), 1), (errors.DiskError("full"), 1), (errors.DataError("data"), 1),
    (errors.ModelFileError("file"), 1), (errors.TrainingError("nan"), 1),
    (errors.TrainingInterrupted("ctrl-c"), 130), (errors.RunsStopped(signal.SIGTERM), 143),
    (errors.RunsStopped(signal.SIGINT), 130),
])
def test_each_error_has_its_exit_code(error, code):
    assert isinstance(error, errors.KerasCifarError)
    assert exit_code(error) == code


def test_bad_input_is_still_a_value_error_for_library_users():
    for kind in (errors.ConfigError, errors.ZooError, errors.DataError, errors.RunError,
                 errors.ModelFileError):
        assert issubclass(kind, ValueError)


def test_an_unexpected_value_error_inside_training_is_a_bug_not_a_usage_error(runner, monkeypatch):
    from keras_cifar.training import train

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(train, "train_run", broken)
    result = runner.invoke(cli, ["train", "mlp2", "--data", "synthetic"])
    assert result.exit_code != 2 and "Usage:" not in result.output
    assert isinstance(result.exception, ValueError) and str(result.exception) == "an internal bug"


def test_a_bad_setting_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", "--data", "synthetic", "--batch-size", "100000",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and "batch_size=100000" in result.output
