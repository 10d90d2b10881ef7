"""Shared fixtures: an isolated cache, the zoo, small synthetic data, a click runner."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from keras_cifar.zoo import load_zoo  # noqa: E402

ZOO = load_zoo()
NETWORK_IDS = list(ZOO.networks)


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
    from keras_cifar.data import synthetic_data
    from keras_cifar.plots import draw_run
    from keras_cifar.train import train_run

    out = tmp_path_factory.mktemp("runs")
    result = train_run(ZOO.network("mlp2"), synthetic_data(600, 200), epochs=2, out_dir=out,
                       verbose=0)
    draw_run(result.run_dir)
    return result
