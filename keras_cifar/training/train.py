"""Train a zoo network with SGD(momentum) and write its run directory.

The run directory holds everything needed to rerun, resume, inspect and redraw a run (see
`keras_cifar.training.rundir`); figures are drawn from it by `keras_cifar.plots.figures.draw_run`.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_cifar import errors
from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.training.callbacks import EpochClock, ResumePoint
from keras_cifar.training.checkpoints import AtomicBackupAndRestore
from keras_cifar.data import CifarData, limit_data
from keras_cifar.data.pipelines import eval_pipeline, train_pipeline
from keras_cifar._env import cpu_model
from keras_cifar.training.compile import compiled_model, mixed_precision_policy, recompile_for_saving
from keras_cifar.training.config import RunConfig
from keras_cifar.errors import ConfigError, TrainingError, TrainingInterrupted  # noqa: F401
from keras_cifar.training.evaluation import EVAL_BATCH_SIZE, evaluate_model
from keras_cifar.models.inspection import parameter_dump, summary_text
from keras_cifar.training.tta import tta_logits
from keras_cifar.models.whitening import initialise_whitening


@dataclass(frozen=True)
class RunResult:
    """What a finished run left behind."""

    run_dir: Path
    config: dict
    metrics: dict
    already_finished: bool = False
    model: object = None  # the trained keras.Model (loaded from model.keras when already finished)

    @property
    def history(self) -> list[dict]:
        """The run's history.csv: one dict per epoch (`epoch` from 0, losses, accuracies)."""
        return rundir.read_history(self.run_dir)



def _versions() -> dict:
    from keras_cifar import __version__
    from keras_cifar.backends import backend_version

    backend = keras.backend.backend()
    return {"keras-cifar": __version__, "keras": keras.__version__, "tensorflow": tf.__version__,
            "backend": backend, backend: backend_version(backend), "numpy": np.__version__,
            "python": platform.python_version()}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _callbacks(run_dir: Path, first_epoch, clock: EpochClock, tensorboard: bool) -> list:
    """The Keras callbacks of a run, in the order their hooks must run.

    At an epoch's end the CSV row is written before the backup, so a kill between the two
    leaves a row that the resume drops and rewrites, never a missing one. The backup outlives
    `fit`; `train_run` deletes it once the final files are written.
    """
    callbacks = [
        ResumePoint(run_dir, first_epoch),
        keras.callbacks.TerminateOnNaN(raise_error=True),
        clock,
        keras.callbacks.CSVLogger(str(run_dir / rundir.HISTORY), append=True),
        AtomicBackupAndRestore(run_dir / rundir.BACKUP_DIR),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / rundir.TENSORBOARD_DIR)))
    return callbacks



def train_run(config: RunConfig, data: CifarData | None = None, *, out_dir="runs",
              name: str | None = None, resume: bool = False, force: bool = False,
              tensorboard: bool = False, verbose: int | str = "auto",
              callbacks: list | None = None, reuse_finished: bool = False,
              require_model: bool = True) -> RunResult:
    """Trains a network as configured and writes its run directory.

    Args:
        config: the run (`RunConfig`: network, SGD settings, seed, data, speed settings).
        data: the data, if already loaded; None loads `config.data`. The test split is the
            validation set, as in the report.
        out_dir: where run directories go.
        name: the run directory's name; default: readable settings plus the identity's hash.
        resume: continue an unfinished run from its last finished epoch (or finish one that
            was interrupted while finishing); a finished run is returned as is.
        force: empty an existing run directory of that name and train from scratch.
        tensorboard: also write TensorBoard logs.
        verbose: Keras' verbosity; `auto` is a progress bar on a terminal and one line per
            epoch otherwise.
        callbacks: extra Keras callbacks, called after keras-cifar's own.
        reuse_finished: return a finished run of the same settings as it is (its model loaded)
            instead of refusing it; `resume` does the same and also continues unfinished ones.
        require_model: refuse a finished run whose model.keras is gone; False returns it with
            `model` None (its metrics and history are the result: runs that `reproduce
            publish` copied, which leaves models out, continue a reproduction this way).

    Returns:
        A `RunResult` with the run directory, its config, its metrics and the trained model.

    Raises:
        ConfigError: the batch is larger than the data.
        RunError: the run directory cannot be used as asked (RunInUse: another process has it;
            DiskError: not enough space).
        TrainingError: the loss became NaN; the directory is marked failed.
        TrainingInterrupted: Ctrl-C; the directory can be resumed.
    """
    data = config.data.load() if data is None else data
    if config.limit is not None:
        data = limit_data(data, config.limit, config.seed)
    if config.batch_size > len(data.train_labels):
        raise ConfigError(f"The batch size is larger than the {len(data.train_labels)} training "
                          f"images; choose a smaller `batch_size`. Received: "
                          f"batch_size={config.batch_size}")
    backend = keras.backend.backend()
    if config.strategy == "mirrored" and backend != "tensorflow":
        raise ConfigError(f"`strategy=\"mirrored\"` is TensorFlow's tf.distribute; this process "
                          f"runs Keras on {backend}. Use the TensorFlow backend for it. Received: "
                          f"strategy='mirrored', backend={backend!r}")
    precision = mixed_precision_policy(config.mixed_precision)
    identity = config.identity(data, precision, backend)
    _fs.check_output_dir(out_dir)
    run_dir = _fs.child_path(out_dir, name or rundir.run_name(identity))
    with _fs.lock_run_dir(run_dir):
        rundir.prepare_run_dir(run_dir, identity, resume=resume, force=force,
                               reuse_finished=reuse_finished)
        if (run_dir / rundir.CONFIG).exists():
            saved = rundir.read_config(run_dir)
            if saved.get("status") == rundir.STATUS_FINISHED:
                return _finished_run(run_dir, saved, require_model)
            record = saved
        else:
            record = {"identity": identity, "started": _now()}
        # model.keras, three checkpoints (weights and momentum each) and the small files
        _fs.check_free_space(run_dir, 4 * 8 * config.network.params + (4 << 20),
                              f"training {config.network.id}")
        return _train_locked(config, data, run_dir, record, precision=precision,
                             tensorboard=tensorboard, verbose=verbose, callbacks=callbacks)


def _finished_run(run_dir: Path, saved: dict, require_model: bool = True) -> RunResult:
    """A finished run as it is, its model loaded; if its model.keras is gone, refused, or
    without a model when not `require_model`."""
    model_path = run_dir / rundir.MODEL
    if not model_path.is_file():
        if not require_model:
            return RunResult(run_dir, saved, rundir.read_metrics(run_dir), already_finished=True)
        raise errors.RunError(
            f"{run_dir} is marked finished but its {rundir.MODEL} is missing, so there is no "
            "trained model to return. Train it again from scratch with `force=True`.")
    shutil.rmtree(run_dir / rundir.BACKUP_DIR, ignore_errors=True)  # if cut short
    model = keras.saving.load_model(model_path)
    return RunResult(run_dir, saved, rundir.read_metrics(run_dir), already_finished=True,
                     model=model)


def _train_locked(config: RunConfig, data, run_dir: Path, record: dict, *, precision, tensorboard,
                  verbose, callbacks) -> RunResult:
    """Trains and finishes a run whose directory this process has locked and checked.

    `config` is the run's configuration, `record` what its config.json holds (written here).
    """
    keras.utils.set_random_seed(config.seed)
    epochs, strategy = config.epochs, config.strategy
    train_ds, first_epoch, steps_per_epoch = train_pipeline(
        data.train_images, data.train_labels, config.batch_size, config.seed, epochs,
        augment=config.recipe.augment)
    model, distribution, speed = compiled_model(config, steps_per_epoch, precision)
    if config.recipe.whiten_init:
        # Before fit, so the optimizer's averages start from it; a resumed run then loads
        # its checkpoint over it.
        record["whitening"] = initialise_whitening(model, config.network, data.train_images)
    if not config.recipe.is_plain:
        record["recipe"] = {"id": config.recipe.id, **config.recipe.settings()}
    record.update({
        "status": rundir.STATUS_RUNNING,
        "speed": speed,
        "strategy": {"name": strategy, "replicas": distribution.num_replicas_in_sync,
                     "devices": list(distribution.extended.worker_devices) if strategy == "mirrored"
                     else []},
        "data": data.describe(),
        "versions": _versions(),
        "command": " ".join(sys.argv),
        "host": platform.node(),
        "cpu": cpu_model(),
        "pid": os.getpid(),
    })
    record.pop("finished", None)

    def mark(status: rundir.RunStatus) -> None:
        record["status"] = status
        try:
            _fs.atomic_write_json(run_dir / rundir.CONFIG, record)
        except OSError:
            pass  # the disk may be full; the backup still holds the last epoch

    test_ds = eval_pipeline(data.test_images, data.test_labels, EVAL_BATCH_SIZE)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    clock = EpochClock()
    callbacks = _callbacks(run_dir, first_epoch, clock, tensorboard) + list(callbacks or [])
    try:
        _fs.atomic_write_json(run_dir / rundir.CONFIG, record)
        _fs.atomic_write_text(run_dir / rundir.SUMMARY, summary_text(model))
        model.fit(train_ds, validation_data=test_ds, epochs=epochs, callbacks=callbacks,
                  steps_per_epoch=steps_per_epoch, verbose=verbose, shuffle=False)
        with distribution.scope():
            recompile_for_saving(model)
        metrics = _finish(model, data, run_dir, tta=config.recipe.tta)
    except KeyboardInterrupt:
        mark(rundir.STATUS_INTERRUPTED)
        raise TrainingInterrupted(
            f"Training interrupted; {run_dir} keeps every finished epoch. Continue it with "
            "the same call and `resume=True`."
        ) from None
    except RuntimeError as e:
        if "NaN or Inf loss" not in str(e):
            raise
        message = (f"The loss became NaN or infinite in epoch {clock.epoch + 1} (lr={config.lr:g}, "
                   f"momentum={config.momentum:g}); training stopped. Try a smaller `lr`.")
        record["finished"] = _now()
        record["error"] = message
        record["diverged_epoch"] = clock.epoch + 1
        mark(rundir.RunStatus.FAILED)
        raise TrainingError(f"{message} The history so far is in {run_dir}.",
                            epoch=clock.epoch + 1) from None
    except (OSError, errors.DiskError) as e:
        if not (isinstance(e, errors.DiskError) or _fs.is_disk_full(e)):
            raise
        mark(rundir.STATUS_INTERRUPTED)
        where = getattr(e, "filename", None) or run_dir
        raise errors.DiskError(
            f"Writing {where} failed: {getattr(e, 'strerror', None) or e}. {run_dir} keeps its "
            "last complete epoch; free some space, then continue with the same call and "
            "`resume=True`.") from None
    except errors.RunError:
        mark(rundir.STATUS_INTERRUPTED)  # resumable once the problem (e.g. history.csv) is fixed
        raise
    record["status"] = rundir.STATUS_FINISHED
    record["finished"] = _now()
    _fs.atomic_write_json(run_dir / rundir.CONFIG, record)
    shutil.rmtree(run_dir / rundir.BACKUP_DIR, ignore_errors=True)
    return RunResult(run_dir, record, metrics, model=model)


def _finish(model, data: CifarData, run_dir: Path, tta: str = "none") -> dict:
    """Writes model.keras, parameters.txt and metrics.json; returns the metrics (with the
    test-time-augmented accuracy where the recipe asks for it).

    Runs while the last epoch's backup still exists, so an interrupt or a full disk here is
    resumed by finishing again, without training.
    """
    _fs.atomic_save_model(model, run_dir / rundir.MODEL)
    _fs.atomic_write_text(run_dir / rundir.PARAMETERS, parameter_dump(model))
    metrics = evaluate_model(model, data.test_images, data.test_labels)
    history = rundir.read_history(run_dir)
    metrics["best_test_accuracy"] = max(row.get("val_accuracy", 0.0) for row in history)
    metrics["seconds"] = round(sum(row.get("seconds", 0.0) for row in history), 3)
    metrics["class_names"] = list(data.class_names)
    metrics["backend"] = keras.backend.backend()
    if tta != "none":
        metrics.update(tta_metrics(model, data.test_images, data.test_labels, tta))
    _fs.atomic_write_json(run_dir / rundir.METRICS, metrics)
    return metrics


def tta_metrics(model, images: np.ndarray, labels: np.ndarray, level: str) -> dict:
    """The test accuracy and mean cross-entropy of `level`'s averaged logits."""
    logits = tta_logits(model.predict_on_batch, images, level, EVAL_BATCH_SIZE)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = np.asarray(labels)
    return {"tta": level,
            "tta_test_accuracy": float((logits.argmax(axis=1) == labels).mean()),
            "tta_test_loss": float(-log_probs[np.arange(len(labels)), labels].mean())}
