"""checkpoints: the per-epoch backup's layout, and runs backed up by Keras' own
BackupAndRestore (before AtomicBackupAndRestore) resuming where they stopped."""

import json

import keras
import pytest

from keras_cifar.training import rundir
from keras_cifar.training.checkpoints import CURRENT, PREVIOUS
from keras_cifar.data import synthetic_data
from keras_cifar.training.config import RunConfig
from keras_cifar.training.train import TrainingInterrupted, train_run
from keras_cifar.zoo import get_network

DATA = synthetic_data(300, 100)


class StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.stop_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop_epoch:
            raise KeyboardInterrupt


def interrupted_run(tmp_path, epochs=4, after=1):
    with pytest.raises(TrainingInterrupted):
        train_run(RunConfig.of(get_network("mlp2"), epochs=epochs), DATA, out_dir=tmp_path, name="r", verbose=0, callbacks=[StopAfterEpoch(after)])
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
