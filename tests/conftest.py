"""Shared fixtures: an isolated cache, the zoo, small synthetic data, a click runner."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from keras_cifar.zoo import load_zoo  # noqa: E402

ZOO = load_zoo()
# A tiny zoo of one MLP and two experiments, for the reproduce and executor tests.
TEST_ZOO = {
    "networks": [{"id": "tiny", "title": "tiny MLP", "layers": [
        {"kind": "flatten"}, {"kind": "dense", "units": 16, "activation": "relu"},
        {"kind": "dense", "units": 10}], "train": {"lr": 0.01, "momentum": 0.9, "epochs": 2}}],
    "experiments": [
        {"id": "tiny-a", "network": "tiny", "lr": 0.01, "momentum": 0.9, "epochs": 2,
         "original": {"test_accuracy": 0.5, "test_loss": 0.02},
         "report_text": {"lr": 0.1, "words": "half"}},
        {"id": "tiny-b", "network": "tiny", "lr": 0.02, "momentum": 0, "epochs": 3},
    ],
}
NETWORK_IDS = list(ZOO.networks)
# The report's tables: parameter counts and the layer widths of each network.
EXPECTED_PARAMS = {
    "mlp-baseline": 1_969_930, "mlp1": 2_103_818, "mlp2": 920_842, "lenet5": 729_322,
    "cnn1": 1_333_450, "cnn2": 2_569_354, "cnn3": 2_703_242,
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own decode cache and no user-set data or zoo paths."""
    monkeypatch.setenv("KERAS_CIFAR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    for var in ("KERAS_CIFAR_DATA_DIR", "KERAS_CIFAR_ZOO", "TFDS_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def zoo():
    return ZOO


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_data():
    """200 train and 100 test synthetic images: enough for a smoke run."""
    from keras_cifar.data import synthetic_data

    return synthetic_data(200, 100)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One finished mlp2 run on synthetic data, shared by the tests of trained-model commands."""
    from keras_cifar.config import RunConfig
    from keras_cifar.data import synthetic_data
    from keras_cifar.plots import draw_run
    from keras_cifar.train import train_run

    out = tmp_path_factory.mktemp("runs")
    result = train_run(RunConfig.of(ZOO.network("mlp2"), epochs=2), synthetic_data(600, 200),
                       out_dir=out, verbose=0)
    draw_run(result.run_dir)
    return result
