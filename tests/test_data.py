"""data: the sources (tfds under mock data, offline and failing downloads, synthetic), subsets,
and the `data` commands."""

import re

import numpy as np
import pytest

from keras_cifar.data import sources as data_module
from keras_cifar.cli import cli
from keras_cifar.data import (DataError, limit_data, load_data, load_tfds, stratified_indices,
                              synthetic_data)
from conftest import tar_of, write_folder


# ---- tfds, synthetic, subsets ----------------------------------------------------------------


def test_tfds_under_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data_module, "network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=12):
        d = load_tfds(tmp_path / "tfds")
    assert d.source == "tfds" and d.train_images.shape == (12, 32, 32, 3)
    assert d.train_images.dtype == np.uint8 and d.train_labels.max() <= 9


def test_tfds_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "network_reachable", lambda *a, **k: False)
    with pytest.raises(DataError) as info:
        load_data("tfds", tfds_dir=tmp_path / "tfds")
    message = str(info.value)
    assert "unreachable" in message and "`data_dir=PATH`" in message
    assert '`source="synthetic"`' in message and "--" not in message  # Python arguments
    from keras_cifar.cli import for_cli

    assert "--data-dir PATH" in for_cli(message) and "--data synthetic" in for_cli(message)


def test_tfds_download_failure_becomes_data_error(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data_module, "network_reachable", lambda *a, **k: True)

    def broken(self, *args, **kwargs):
        raise OSError("checksum mismatch for cifar-10-binary.tar.gz")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", broken)
    with pytest.raises(DataError, match="OSError: checksum mismatch"):
        load_tfds(tmp_path / "tfds")


def test_synthetic_is_deterministic_balanced_and_not_cifar():
    a, b = synthetic_data(100, 50), synthetic_data(100, 50)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    assert a.fingerprint == b.fingerprint and not a.is_cifar10
    assert np.bincount(a.train_labels).tolist() == [10] * 10


def test_stratified_limit():
    d = synthetic_data(1000, 200)
    small = limit_data(d, 30, seed=3)
    assert np.bincount(small.train_labels).tolist() == [3] * 10
    assert len(small.test_labels) == 30
    assert small.fingerprint != d.fingerprint
    np.testing.assert_array_equal(stratified_indices(d.train_labels, 30, 3),
                                  stratified_indices(d.train_labels, 30, 3))


# ---- CLI ----------------------------------------------------------------------------------


def test_data_info_on_folder_and_archive(runner, tmp_path):
    root = write_folder(tmp_path / "cifar")
    archive = tar_of(root, tmp_path / "cifar.tar.gz", "cifar")
    for path in (root, archive):
        result = runner.invoke(cli, ["data", "info", "--data-dir", str(path)])
        assert result.exit_code == 0, result.output
        assert "image-folder" in result.output
        assert re.search(r"airplane\s+15\s+2\n", result.output)
        assert re.search(r"total\s+150\s+20\n", result.output)


def test_data_info_bad_path_exits_without_traceback(runner, tmp_path):
    result = runner.invoke(cli, ["data", "info", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_data_prepare_synthetic(runner):
    result = runner.invoke(cli, ["data", "prepare", "--data", "synthetic"])
    assert result.exit_code == 0 and "Ready: synthetic" in result.output


def test_the_cli_says_what_is_loading_and_how_far_the_decode_is(runner, tmp_path):
    from keras_cifar.cli import cli

    from conftest import PER_CLASS_TEST, PER_CLASS_TRAIN, write_folder

    root = tmp_path / "copy"
    write_folder(root)
    result = runner.invoke(cli, ["data", "prepare", "--data-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert f"Loading CIFAR-10 data: {root.resolve()} ..." in result.stderr
    train, test = PER_CLASS_TRAIN * 5 * 10, PER_CLASS_TEST * 10
    assert f"decoding train images: {train:,} / {train:,}" in result.stderr
    assert f"decoding test images: {test:,} / {test:,}" in result.stderr
    again = runner.invoke(cli, ["data", "prepare", "--data-dir", str(root)])
    assert "Loading" in again.stderr and "decoding" not in again.stderr  # from the cache
