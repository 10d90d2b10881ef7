"""Per-epoch training state, written so that no interruption or full disk can lose it.

`AtomicBackupAndRestore` is Keras' `BackupAndRestore` with three changes:

- each checkpoint is a new file (`epoch-NNNN.weights.h5`, weights and optimizer state) written
  in full, synced, and only then named by the metadata file, which is itself replaced
  atomically; a torn write (a kill, a full disk) never replaces a good checkpoint;
- the previous checkpoint is kept; if the latest cannot be loaded, the previous one is;
- the backup is kept when `fit` returns (`delete_checkpoint=False`): the run deletes it once
  its final files are written, so an interrupt while finishing loses nothing.

Before each checkpoint the free space is checked, so a nearly full disk ends in a clean error
naming the path instead of a crash inside HDF5.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import keras

from keras_cifar import errors
from keras_cifar import _fs

CURRENT = "training_metadata.json"
PREVIOUS = "training_metadata.prev.json"
SPARE_BYTES = 1 << 20  # room for the metadata and the history row besides the weights


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_metadata(backup_dir: str | os.PathLike, name: str = CURRENT) -> dict | None:
    """A checkpoint's metadata (`CURRENT` or `PREVIOUS`): epoch, batch and weights file name;
    None when it is missing or unreadable."""
    try:
        metadata = json.loads((Path(backup_dir) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) and "weights" in metadata else None


def latest_checkpoint(backup_dir: str | os.PathLike) -> tuple[int, Path] | None:
    """(epochs trained, weights file) of the newest complete checkpoint in `backup_dir`, or
    None when there is none."""
    for name in (CURRENT, PREVIOUS):
        metadata = read_metadata(backup_dir, name)
        if metadata is not None and (Path(backup_dir) / metadata["weights"]).is_file():
            return int(metadata["epoch"]), Path(backup_dir) / metadata["weights"]
    return None


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` (per epoch, double checkpoint) with atomic checkpoints.

    Args:
        backup_dir: the folder of the checkpoints.
    """

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), save_freq="epoch", double_checkpoint=True,
                         delete_checkpoint=False)
        self.folder = Path(backup_dir)

    def _checkpoints(self) -> list[tuple[dict, Path]]:
        """(metadata, weights file) to try, newest first."""
        found = []
        for name in (CURRENT, PREVIOUS):
            metadata = read_metadata(self.folder, name)
            if metadata is not None:
                found.append((metadata, self.folder / metadata["weights"]))
        return found

    def on_train_begin(self, logs=None):
        tried = []
        for metadata, weights in self._checkpoints():
            try:
                if self.model.optimizer is not None and not self.model.optimizer.built:
                    self.model.optimizer.build(self.model.trainable_variables)
                self.model.load_weights(weights)
            except Exception as e:  # h5py and Keras raise many types for a damaged file
                tried.append(f"{weights.name}: {type(e).__name__}: {str(e)[:120]}")
                warnings.warn(f"The checkpoint {weights} cannot be loaded ({tried[-1]}); trying "
                              "the previous one.", stacklevel=2)
                continue
            self.model._initial_epoch = int(metadata["epoch"])  # as BackupAndRestore does
            return
        if tried:
            raise errors.RunError(f"No checkpoint in {self.folder} can be loaded ({'; '.join(tried)}). "
                                "Train the run again from scratch with `force=True`.")

    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        current = read_metadata(self.folder, CURRENT)
        last_size = ((self.folder / current["weights"]).stat().st_size
                     if current and (self.folder / current["weights"]).exists() else
                     8 * self.model.count_params())  # float32 weights plus momentum
        _fs.check_free_space(self.folder, last_size + SPARE_BYTES,
                              f"the checkpoint of epoch {self._current_epoch}")
        name = f"epoch-{self._current_epoch:04d}.weights.h5"
        tmp = self.folder / f".{name}.tmp.weights.h5"
        try:
            self.model.save_weights(str(tmp), overwrite=True)
            _fsync(tmp)
            os.replace(tmp, self.folder / name)
        finally:
            if tmp.exists():
                tmp.unlink()
        if current is not None:
            _fs.atomic_write_json(self.folder / PREVIOUS, current)
        _fs.atomic_write_json(self.folder / CURRENT, {
            "epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name})
        keep = {name, current["weights"] if current else None}
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name not in keep:
                old.unlink()
