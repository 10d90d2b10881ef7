"""Train a zoo network with SGD(momentum) and write its run directory.

The run directory holds everything needed to rerun, resume, inspect and redraw a run (see
`keras_cifar.runs`); figures are drawn from it by `keras_cifar.plots.draw_run`.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_cifar import runs
from keras_cifar.builder import build_model
from keras_cifar.callbacks import EpochClock, ResumePoint
from keras_cifar.checkpoints import AtomicBackupAndRestore
from keras_cifar.data import CifarData, eval_pipeline, limit_data, train_pipeline
from keras_cifar.errors import ConfigError, TrainingError, TrainingInterrupted  # noqa: F401
from keras_cifar.evaluation import EVAL_BATCH_SIZE, evaluate_model
from keras_cifar.inspection import parameter_dump, summary_text
from keras_cifar.metrics import NotebookLoss
from keras_cifar.zoo import INITS, NetworkSpec


@dataclass(frozen=True)
class RunResult:
    """What a finished run left behind."""

    run_dir: Path
    config: dict
    metrics: dict
    already_finished: bool = False
    model: object = None  # the trained keras.Model (None when the run was already finished)


MAX_SEED = 2**32 - 1  # keras.utils.set_random_seed's range


def check_hyperparameters(lr, momentum, epochs, batch_size, init="torch", seed=0) -> None:
    """Raises ValueError, Keras style, for values SGD cannot train with."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"The seed must be an integer in [0, 2**32 - 1]. Received: seed={seed!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"The learning rate must be a number > 0. Received: lr={lr!r}")
    if (isinstance(momentum, bool) or not isinstance(momentum, (int, float))
            or not 0 <= momentum < 1):
        raise ConfigError(f"The momentum must be in [0, 1). Received: momentum={momentum!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"The number of epochs must be an integer >= 1. Received: epochs={epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"The batch size must be an integer >= 1. Received: batch_size={batch_size!r}")
    if init not in INITS:
        raise ConfigError(f"The initialisation must be one of {list(INITS)}. Received: init={init!r}")


def run_identity(spec: NetworkSpec, data: CifarData, *, lr, momentum, epochs, batch_size, seed,
                 init, limit, precision: str | None = None) -> dict:
    """Returns the settings that define a run: two runs with equal identities are the same run.

    `precision` is the mixed-precision policy, if any; float32 runs leave it out, so their
    identities (and run names) are those of runs made before mixed precision existed.
    """
    identity = {
        "network": spec.to_dict(),
        "lr": float(lr),
        "momentum": float(momentum),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "init": init,
        "limit": limit,
        "data": {"fingerprint": data.fingerprint, "is_cifar10": data.is_cifar10,
                 "train": int(len(data.train_labels)), "test": int(len(data.test_labels))},
    }
    if precision is not None:
        identity["precision"] = precision
    return identity


def mixed_precision_policy(enabled: bool) -> str | None:
    """The Keras mixed-precision policy `--mixed-precision` means on this machine, or None.

    `mixed_float16` on a GPU (tensor cores); `mixed_bfloat16` on a CPU, where float16 has no
    fast kernels but bfloat16 has (oneDNN, on CPUs with AVX512-BF16 or AMX; elsewhere it may
    be slower than float32). Either changes the arithmetic, hence the results:
    it is off by default and part of a run's identity.
    """
    if not enabled:
        return None
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def _versions() -> dict:
    from keras_cifar import __version__

    return {"keras-cifar": __version__, "keras": keras.__version__, "tensorflow": tf.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


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
        keras.callbacks.CSVLogger(str(run_dir / runs.HISTORY), append=True),
        AtomicBackupAndRestore(run_dir / runs.BACKUP_DIR),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / runs.TENSORBOARD_DIR)))
    return callbacks


STRATEGIES = ("default", "mirrored")


def make_strategy(name: str = "default", devices: list[str] | None = None):
    """Returns the `tf.distribute` strategy called `name`.

    `default` is TensorFlow's default (no distribution); `mirrored` replicates the model on
    `devices` (all visible GPUs when None, or the CPU) and splits each batch among them.

    Raises:
        ValueError: an unknown strategy, or devices without `mirrored`.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy; expected one of {list(STRATEGIES)}. "
                         f"Received: strategy={name!r}")
    if name == "default":
        if devices:
            raise ConfigError("--devices needs --strategy mirrored. Received: "
                             f"devices={devices!r}")
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=devices or None)


XLA_CHOICES = ("auto", "on", "off")


def use_xla(spec: NetworkSpec, xla: str = "auto", strategy: str = "default") -> bool:
    """Whether to compile the train step with XLA (`jit_compile`).

    `auto`: on a GPU, yes; on a CPU, only for networks without convolutions, where XLA was
    measured faster (for the CNNs, TensorFlow's oneDNN convolutions beat XLA's 2-3x on CPU).
    Never under a mirrored strategy, which is not measured here.
    """
    if xla not in XLA_CHOICES:
        raise ConfigError(f"xla must be one of {list(XLA_CHOICES)}. Received: xla={xla!r}")
    if xla != "auto":
        return xla == "on"
    if strategy == "mirrored":
        return False
    return bool(tf.config.list_physical_devices("GPU")) or not spec.is_convolutional


def steps_per_execution(steps_per_epoch: int, most: int = 32) -> int:
    """Returns the largest divisor of `steps_per_epoch` that is at most `most`.

    Running several steps per call saves Python overhead per batch; a divisor keeps each
    execution inside one epoch, since one data iterator serves the whole run.
    """
    return max(d for d in range(1, min(most, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


def _compiled_model(spec: NetworkSpec, *, init, seed, lr, momentum, steps_per_epoch, strategy,
                    devices, xla, precision, deterministic):
    """Builds and compiles the model; returns (model, strategy, the speed settings used)."""
    distribution = make_strategy(strategy, devices)
    # Several steps per execution fail under MirroredStrategy in Keras 3.15 / TF 2.21
    # ("You must feed a value for placeholder tensor" in multi_step_on_iterator).
    speed = {
        "steps_per_execution": 1 if strategy == "mirrored" else steps_per_execution(steps_per_epoch),
        "xla": use_xla(spec, xla, strategy),
        "mixed_precision": precision or False,
        # 0: TensorFlow's default, every core; `reproduce --workers N` shares the cores out.
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }
    # Keras refuses XLA while TensorFlow's op determinism is on; XLA's CPU kernels for these
    # networks (matmuls, adds, ReLU) are deterministic on their own, which a test checks.
    speed["op_determinism"] = deterministic and not speed["xla"]
    if speed["op_determinism"]:
        tf.config.experimental.enable_op_determinism()
    else:
        # Only the private module can switch it off again (e.g. an MLP after a CNN in one
        # `reproduce` process); the public API has enable_op_determinism alone.
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    previous_policy = keras.mixed_precision.global_policy()
    if precision:
        keras.mixed_precision.set_global_policy(precision)
    try:
        with distribution.scope():
            model = build_model(spec, init=init, seed=seed)
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=momentum),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                # NotebookLoss: the original's loss scale, from the passes fit already runs.
                metrics=["accuracy", NotebookLoss()],
                steps_per_execution=speed["steps_per_execution"],
                jit_compile=speed["xla"],
            )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return model, distribution, speed


def _compile_for_export(model) -> None:
    """Recompiles with Keras' own loss and metrics only, keeping the optimizer (and its state),
    so that model.keras loads in plain Keras, without keras-cifar's `NotebookLoss` metric."""
    model.compile(optimizer=model.optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def train_run(spec: NetworkSpec, data: CifarData, *, lr=None, momentum=None, epochs=None,
              batch_size=None, seed: int = 0, init: str | None = None, limit: int | None = None,
              out_dir="runs", name: str | None = None, resume: bool = False,
              force: bool = False, tensorboard: bool = False, verbose: int | str = "auto",
              deterministic: bool = True, strategy: str = "default",
              devices: list[str] | None = None, callbacks: list | None = None,
              xla: str = "auto", mixed_precision: bool = False) -> RunResult:
    """Trains a network and writes its run directory.

    Args:
        spec: the network.
        data: the data; the test split is the validation set, as in the report.
        lr, momentum, epochs, batch_size: SGD settings; None takes the network's defaults.
        seed: seeds weights, data order and everything Keras draws.
        init: `torch` or `keras` weight initialisation; None takes the network's default.
        limit: train and test on a class-stratified subset of this many images per split.
        out_dir: where run directories go.
        name: the run directory's name; default: readable settings plus a config hash.
        resume: continue an unfinished run from its last finished epoch; a finished run is
            returned as is.
        force: delete an existing run directory of that name and train from scratch.
        tensorboard: also write TensorBoard logs.
        verbose: Keras' verbosity; `auto` is a progress bar on a terminal and one line per
            epoch otherwise.
        deterministic: enable TensorFlow's op determinism, so a rerun gives the same history.
        strategy: `default` (one device) or `mirrored` (`tf.distribute.MirroredStrategy`: each
            batch split over the devices; `batch_size` stays the global batch).
        devices: the devices of a mirrored strategy, e.g. ["/gpu:0", "/gpu:1"]; None: all GPUs
            (or the CPU when there is none).
        callbacks: extra Keras callbacks, called after keras-cifar's own.
        xla: `auto` (XLA where it was measured to win: MLPs on a CPU, every network on a GPU),
            `on` or `off`. Same network, same maths; only the compiled program differs.
        mixed_precision: compute in 16 bits with float32 weights: `mixed_float16` on a GPU,
            `mixed_bfloat16` on a CPU (see `mixed_precision_policy`). Changes the results.

    Returns:
        A `RunResult` with the run directory, its config and its metrics.

    Raises:
        ValueError: a hyperparameter is invalid, or the batch is larger than the data.
        RunError: the run directory cannot be used as asked.
        TrainingError: the loss became NaN; the directory is marked failed.
        TrainingInterrupted: Ctrl-C; the directory can be resumed.
    """
    lr = spec.train.lr if lr is None else lr
    momentum = spec.train.momentum if momentum is None else momentum
    epochs = spec.train.epochs if epochs is None else epochs
    batch_size = spec.train.batch_size if batch_size is None else batch_size
    init = spec.init if init is None else init
    check_hyperparameters(lr, momentum, epochs, batch_size, init, seed)
    if limit is not None:
        data = limit_data(data, limit, seed)
    if batch_size > len(data.train_labels):
        raise ConfigError(f"The batch size is larger than the {len(data.train_labels)} training "
                         f"images; choose a smaller --batch-size. Received: batch_size={batch_size}")

    precision = mixed_precision_policy(mixed_precision)
    identity = run_identity(spec, data, lr=lr, momentum=momentum, epochs=epochs,
                            batch_size=batch_size, seed=seed, init=init, limit=limit,
                            precision=precision)
    runs.check_output_dir(out_dir)
    run_dir = runs.child_path(out_dir, name or runs.run_name(identity))
    with runs.lock_run_dir(run_dir):
        runs.prepare_run_dir(run_dir, identity, resume=resume, force=force)
        if (run_dir / runs.CONFIG).exists():
            saved = runs.read_config(run_dir)
            if saved.get("status") == runs.STATUS_FINISHED:
                shutil.rmtree(run_dir / runs.BACKUP_DIR, ignore_errors=True)  # if cut short
                return RunResult(run_dir, saved, runs.read_metrics(run_dir),
                                 already_finished=True)
            config = saved
        else:
            config = {"identity": identity, "started": _now()}
        # model.keras, three checkpoints (weights and momentum each) and the small files
        runs.check_free_space(run_dir, 4 * 8 * spec.params + (4 << 20), f"training {spec.id}")
        return _train_locked(spec, data, run_dir, config, lr=lr, momentum=momentum,
                             epochs=epochs, batch_size=batch_size, seed=seed, init=init,
                             precision=precision, tensorboard=tensorboard, verbose=verbose,
                             deterministic=deterministic, strategy=strategy, devices=devices,
                             callbacks=callbacks, xla=xla)


def _train_locked(spec, data, run_dir: Path, config: dict, *, lr, momentum, epochs, batch_size,
                  seed, init, precision, tensorboard, verbose, deterministic, strategy, devices,
                  callbacks, xla) -> RunResult:
    """Trains and finishes a run whose directory this process has locked and checked."""
    keras.utils.set_random_seed(seed)
    train_ds, first_epoch, steps_per_epoch = train_pipeline(
        data.train_images, data.train_labels, batch_size, seed, epochs)
    model, distribution, speed = _compiled_model(
        spec, init=init, seed=seed, lr=lr, momentum=momentum, steps_per_epoch=steps_per_epoch,
        strategy=strategy, devices=devices, xla=xla, precision=precision,
        deterministic=deterministic)
    config.update({
        "status": runs.STATUS_RUNNING,
        "speed": speed,
        "strategy": {"name": strategy, "replicas": distribution.num_replicas_in_sync,
                     "devices": list(distribution.extended.worker_devices) if strategy == "mirrored"
                     else []},
        "data": data.describe(),
        "versions": _versions(),
        "command": " ".join(sys.argv),
        "host": platform.node(),
        "pid": os.getpid(),
    })
    config.pop("finished", None)

    def mark(status: str) -> None:
        config["status"] = status
        try:
            runs.atomic_write_json(run_dir / runs.CONFIG, config)
        except OSError:
            pass  # the disk may be full; the backup still holds the last epoch

    test_ds = eval_pipeline(data.test_images, data.test_labels, EVAL_BATCH_SIZE)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    clock = EpochClock()
    callbacks = _callbacks(run_dir, first_epoch, clock, tensorboard) + list(callbacks or [])
    try:
        runs.atomic_write_json(run_dir / runs.CONFIG, config)
        runs.atomic_write_text(run_dir / runs.SUMMARY, summary_text(model))
        model.fit(train_ds, validation_data=test_ds, epochs=epochs, callbacks=callbacks,
                  steps_per_epoch=steps_per_epoch, verbose=verbose, shuffle=False)
        with distribution.scope():
            _compile_for_export(model)
        metrics = _finish(model, data, run_dir)
    except KeyboardInterrupt:
        mark(runs.STATUS_INTERRUPTED)
        raise TrainingInterrupted(
            f"Training interrupted; {run_dir} keeps every finished epoch. Continue it with "
            "the same command and --resume."
        ) from None
    except RuntimeError as e:
        if "NaN or Inf loss" not in str(e):
            raise
        message = (f"The loss became NaN or infinite in epoch {clock.epoch + 1} (lr={lr:g}, "
                   f"momentum={momentum:g}); training stopped. Try a smaller --lr.")
        config["finished"] = _now()
        mark(f"failed: {message}")
        raise TrainingError(f"{message} The history so far is in {run_dir}.") from None
    except (OSError, runs.DiskError) as e:
        if not (isinstance(e, runs.DiskError) or runs.is_disk_full(e)):
            raise
        mark(runs.STATUS_INTERRUPTED)
        where = getattr(e, "filename", None) or run_dir
        raise runs.DiskError(
            f"Writing {where} failed: {getattr(e, 'strerror', None) or e}. {run_dir} keeps its "
            "last complete epoch; free some space, then continue with the same command and "
            "--resume.") from None
    config["status"] = runs.STATUS_FINISHED
    config["finished"] = _now()
    runs.atomic_write_json(run_dir / runs.CONFIG, config)
    shutil.rmtree(run_dir / runs.BACKUP_DIR, ignore_errors=True)
    return RunResult(run_dir, config, metrics, model=model)


def _finish(model, data: CifarData, run_dir: Path) -> dict:
    """Writes model.keras, parameters.txt and metrics.json; returns the metrics.

    Runs while the last epoch's backup still exists, so an interrupt or a full disk here is
    resumed by finishing again, without training.
    """
    runs.atomic_save_model(model, run_dir / runs.MODEL)
    runs.atomic_write_text(run_dir / runs.PARAMETERS, parameter_dump(model))
    metrics = evaluate_model(model, data.test_images, data.test_labels)
    history = runs.read_history(run_dir)
    metrics["best_test_accuracy"] = max(row.get("val_accuracy", 0.0) for row in history)
    metrics["seconds"] = round(sum(row.get("seconds", 0.0) for row in history), 3)
    metrics["class_names"] = list(data.class_names)
    runs.atomic_write_json(run_dir / runs.METRICS, metrics)
    return metrics
