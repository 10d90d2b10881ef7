"""data.spec: one DataSpec for the CLI's data options and the API's `data=` argument."""

from pathlib import Path

import pytest

from keras_cifar.data import DataSpec
from keras_cifar.errors import DataError


def test_names_and_paths_become_specs(tmp_path):
    assert DataSpec.of(None) == DataSpec() == DataSpec(source="tfds")
    assert DataSpec.of("synthetic") == DataSpec(source="synthetic")
    spec = DataSpec.of(tmp_path / "copy.tar.gz")
    assert spec.source == "local" and spec.data_dir == str((tmp_path / "copy.tar.gz").resolve())
    assert DataSpec.of(spec) is spec


def test_the_cli_options_and_the_api_give_the_same_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert DataSpec.from_options(None, Path("copy")) == DataSpec.of("copy")
    assert DataSpec.from_options(None, None) == DataSpec.of(None)
    assert DataSpec.from_options("synthetic", None, use_cache=False) == DataSpec(
        "synthetic", use_cache=False)


@pytest.mark.parametrize("make, message", [
    (lambda: DataSpec(source="s3"), "Unknown data source"),
    (lambda: DataSpec(source="local"), "needs `data_dir=PATH`"),
    (lambda: DataSpec.of(3), "Received: data=3 of type int"),
])
def test_bad_specs_are_refused(make, message):
    with pytest.raises(DataError, match=message):
        make()


def test_a_spec_loads_its_source():
    data = DataSpec("synthetic").load()
    assert not data.is_cifar10 and len(data.train_labels) > 0
