"""errors: one hierarchy; the CLI maps each class to its exit code and lets anything else
through as the bug it is."""

import signal

import pytest

from keras_cifar import errors
from keras_cifar.cli import cli, exit_code


@pytest.mark.parametrize("error, code", [
    (errors.ConfigError("lr"), 2), (errors.ZooError("zoo"), 2), (errors.RunError("dir"), 2),
    (errors.RunInUse("busy"), 1), (errors.DiskError("full"), 1), (errors.DataError("data"), 1),
    (errors.ModelFileError("file"), 1), (errors.ImageError("img"), 1),
    (errors.MissingDependency(["ray"], "ray", "ray"), 2), (errors.TrainingError("nan"), 1),
    (errors.TrainingInterrupted("ctrl-c"), 130), (errors.RunsStopped(signal.SIGTERM), 143),
    (errors.RunsStopped(signal.SIGINT), 130),
])
def test_each_error_has_its_exit_code(error, code):
    assert isinstance(error, errors.KerasCifarError)
    assert exit_code(error) == code


def test_bad_input_is_still_a_value_error_for_library_users():
    for kind in (errors.ConfigError, errors.ZooError, errors.DataError, errors.RunError,
                 errors.ModelFileError, errors.ImageError):
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


def test_library_errors_name_python_arguments_and_the_cli_names_its_flags(tmp_path):
    """A Python caller is told `resume=True`; the same error through the CLI says --resume."""
    from click.testing import CliRunner

    from keras_cifar.data import synthetic_data
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.train import train_run
    from keras_cifar.zoo import get_network

    data = synthetic_data(64, 32)
    config = RunConfig.of(get_network("mlp2"), epochs=1, batch_size=32)
    train_run(config, data, out_dir=tmp_path, name="r", verbose=0)
    with pytest.raises(errors.RunError) as info:
        train_run(config, data, out_dir=tmp_path, name="r", verbose=0)
    assert "`resume=True`" in str(info.value) and "`force=True`" in str(info.value)
    assert "--" not in str(info.value)
    args = ["train", "mlp2", "--data", "synthetic", "--epochs", "1", "--out", str(tmp_path),
            "--name", "cli"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2
    assert "--resume" in again.output and "--force" in again.output and "`" not in again.output


def test_a_missing_dependency_names_its_extra_and_is_an_import_error():
    error = errors.MissingDependency(["ray"], "ray", '`executor="ray"`')
    assert isinstance(error, ImportError)
    assert 'pip install "keras-cifar[ray]"' in str(error) and "Received: missing=['ray']" in str(error)
