"""runs: names, identity differences, atomic writes, history truncation for a resume."""

import json
import os

import pytest

from keras_cifar import errors
from keras_cifar import _fs
from keras_cifar.training import rundir


def identity(**overrides):
    base = {"network": {"id": "cnn3"}, "lr": 0.1, "momentum": 0.9, "epochs": 20, "seed": 0,
            "batch_size": 64, "init": "torch", "limit": None, "data": {"fingerprint": "abc"}}
    return {**base, **overrides}


def test_run_name_is_readable_and_hash_covers_everything():
    name = rundir.run_name(identity())
    assert name.startswith("cnn3-lr0.1-m0.9-e20-s0-")
    assert rundir.run_name(identity(data={"fingerprint": "other"})) != name
    assert rundir.run_name(identity(limit=100)) != name
    assert rundir.run_name(identity()) == name


def test_one_naming_scheme_for_train_sweep_and_reproduce():
    label = rundir.settings_label("cnn3", 0.1, 0.9, 20)
    assert label == "cnn3-lr0.1-m0.9-e20"
    assert rundir.run_name(identity()).startswith(label + "-s0-")  # train: label, seed, hash
    assert rundir.run_dir_name(label, 0) == label  # a sweep's point, seed 0
    assert rundir.run_dir_name("lenet5-lr0.01", 2) == "lenet5-lr0.01-s2"  # an experiment, seed 2


def test_identity_differences_name_nested_keys():
    assert rundir.identity_differences(identity(), identity(lr=0.2, data={"fingerprint": "x"})) == [
        "data.fingerprint", "lr"]


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path):
    target = tmp_path / "config.json"
    _fs.atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        _fs.atomic_write_json(target, {"a": object()})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert os.listdir(tmp_path) == ["config.json"]


def test_truncate_history_keeps_epochs_before_the_restore(tmp_path):
    (tmp_path / rundir.HISTORY).write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    rundir.truncate_history(tmp_path, 2)
    assert [r["epoch"] for r in rundir.read_history(tmp_path)] == [0.0, 1.0]


def test_missing_files_give_run_errors(tmp_path):
    with pytest.raises(errors.RunError, match="no config.json"):
        rundir.read_config(tmp_path)
    with pytest.raises(errors.RunError, match="no history.csv"):
        rundir.read_history(tmp_path)
    assert rundir.run_status(tmp_path) is rundir.RunStatus.NOT_STARTED


@pytest.mark.parametrize("stored, status", [
    ("finished", rundir.RunStatus.FINISHED), ("interrupted", rundir.RunStatus.INTERRUPTED),
    ("failed", rundir.RunStatus.FAILED),
])
def test_run_status_reads_every_stored_state(tmp_path, stored, status):
    _fs.atomic_write_json(tmp_path / rundir.CONFIG, {"status": stored})
    assert rundir.run_status(tmp_path) is status
    assert json.loads((tmp_path / rundir.CONFIG).read_text())["status"] == stored


def test_an_unknown_run_status_is_an_error_naming_it(tmp_path):
    _fs.atomic_write_json(tmp_path / rundir.CONFIG, {"status": "paused"})
    with pytest.raises(errors.RunError, match="unknown run status.*status='paused'"):
        rundir.run_status(tmp_path)


def test_the_run_identity_and_its_hash_stay_stable():
    """Runs trained before a change must resume and count after it: the identity's fields and
    hash for known settings are pinned (cnn3 as run, on the default synthetic data)."""
    from keras_cifar.training.config import RunConfig
    from keras_cifar.data import synthetic_data
    from keras_cifar.zoo import get_network

    config = RunConfig.of(get_network("cnn3"), lr=0.01, momentum=0.9, epochs=20, batch_size=64,
                          seed=0, init="torch", limit=None)
    identity = config.identity(synthetic_data())
    assert sorted(identity) == ["batch_size", "data", "epochs", "init", "limit", "lr",
                                "momentum", "network", "seed"]
    assert rundir.run_name(identity) == "cnn3-lr0.01-m0.9-e20-s0-a07624e2"


def test_read_run_gives_a_saved_runs_fields_from_one_read(tmp_path):
    from keras_cifar.zoo import TrainSettings

    identity = {"network": {"id": "cnn3"}, "lr": 0.01, "momentum": 0.9, "epochs": 20,
                "batch_size": 64, "seed": 2, "limit": 500}
    _fs.atomic_write_json(tmp_path / rundir.CONFIG, {
        "identity": identity, "status": "finished", "started": "2026-12-01T10:00:00+00:00",
        "data": {"is_cifar10": False}})
    saved = rundir.read_run(tmp_path)
    assert (saved.network_id, saved.seed, saved.limit, saved.is_cifar10) == ("cnn3", 2, 500, False)
    assert saved.train == TrainSettings(0.01, 0.9, 20, 64)
    assert saved.status is rundir.RunStatus.FINISHED and saved.started.startswith("2026-12-01")
    _fs.atomic_write_json(tmp_path / rundir.CONFIG, {"identity": {"lr": 0.1}, "status": "odd"})
    assert rundir.read_run(tmp_path).train is None  # an incomplete identity has no settings
    with pytest.raises(errors.RunError, match="unknown run status"):
        rundir.read_run(tmp_path).status


@pytest.mark.parametrize("value, label", [(0.01, "0.01"), (0.9, "0.9"), (1e-05, "1e-05"),
                                          (0.9999999, "0.9999999"), (0.0010000001, "0.0010000001"),
                                          (0.0, "0")])
def test_run_names_show_each_setting_exactly(value, label):
    assert rundir.number_label(value) == label
    assert rundir.settings_label("mlp2", 0.005, value, 10) == f"mlp2-lr0.005-m{label}-e10"
