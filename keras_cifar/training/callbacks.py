"""keras-cifar's own Keras callbacks: epoch timing, and where a (resumed) run starts."""

from __future__ import annotations

import time
from pathlib import Path

import keras

from keras_cifar.training import rundir


class EpochClock(keras.callbacks.Callback):
    """Times each epoch (wall seconds, validation included): adds `seconds` to the epoch's logs
    (so history.csv has it) and keeps them in `seconds`; `epoch` is the epoch running."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self.started, 3))
        if logs is not None:
            logs["seconds"] = self.seconds[-1]


class ResumePoint(keras.callbacks.Callback):
    """At the first epoch this `fit` runs (0, or the one BackupAndRestore restored to): starts
    the data pipeline there and drops history rows of that epoch and later.

    Keras creates the training iterator after the first `on_epoch_begin`, so the pipeline
    reads the epoch set here. History rows can run ahead of the backup when a run is killed
    between writing the CSV row and the backup of an epoch.
    """

    def __init__(self, run_dir: Path, first_epoch):
        super().__init__()
        self.run_dir = run_dir
        self.first_epoch = first_epoch
        self.started = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self.started:
            self.started = True
            rundir.check_history(self.run_dir, epoch)
            self.first_epoch.assign(epoch)
            rundir.truncate_history(self.run_dir, epoch)
