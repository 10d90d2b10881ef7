"""checkpoints: the per-epoch backup's layout; a resumed run checks its history against it."""

import json

import pytest

from keras_cifar import errors
from keras_cifar.training import rundir
from keras_cifar.training.checkpoints import CURRENT, PREVIOUS
from keras_cifar.data import synthetic_data
from keras_cifar.training.config import RunConfig
from keras_cifar.training.train import TrainingInterrupted, train_run
from keras_cifar.zoo import get_network

from conftest import stop_after_epoch

DATA = synthetic_data(300, 100)


def interrupted_run(tmp_path, epochs=4, after=1):
    with pytest.raises(TrainingInterrupted):
        train_run(RunConfig.of(get_network("mlp2"), epochs=epochs), DATA, out_dir=tmp_path, name="r", verbose=0, callbacks=[stop_after_epoch(after)])
    return tmp_path / "r"


@pytest.mark.slow
def test_two_checkpoints_are_kept_and_named_by_the_metadata(tmp_path):
    backup = interrupted_run(tmp_path, after=2) / rundir.BACKUP_DIR
    current = json.loads((backup / CURRENT).read_text())
    previous = json.loads((backup / PREVIOUS).read_text())
    assert (current["epoch"], current["weights"]) == (3, "epoch-0003.weights.h5")
    assert (previous["epoch"], previous["weights"]) == (2, "epoch-0002.weights.h5")
    assert sorted(p.name for p in backup.glob("*.h5")) == ["epoch-0002.weights.h5",
                                                          "epoch-0003.weights.h5"]


def _resume(tmp_path):
    return train_run(RunConfig.of(get_network("mlp2"), epochs=4), DATA, out_dir=tmp_path,
                     name="r", verbose=0, resume=True)


@pytest.mark.faults
@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:2] + lines[3:], r"rows of epochs \[1\] are missing"),
    (lambda lines: lines[:2] + ["garbage\n"] + lines[2:], "line 3, is not a history row"),
    (lambda lines: [lines[0], lines[2], lines[1], *lines[3:]], "in order"),
])
def test_a_hand_edited_history_is_refused_on_resume_and_the_run_stays_resumable(
        tmp_path, edit, message):
    run_dir = interrupted_run(tmp_path, after=2)  # 3 epochs trained and checkpointed
    history = run_dir / rundir.HISTORY
    original = history.read_text()
    lines = original.splitlines(keepends=True)
    history.write_text("".join(edit(lines)))
    edited = history.read_text()
    with pytest.raises(errors.RunError, match=message):
        _resume(tmp_path)
    assert history.read_text() == edited  # nothing changed
    assert rundir.run_status(run_dir) is rundir.RunStatus.INTERRUPTED  # not left "running"
    history.write_text(original)
    result = _resume(tmp_path)
    assert [r["epoch"] for r in rundir.read_history(result.run_dir)] == [0, 1, 2, 3]
