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
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_cifar import errors
from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.models.builder import build_model
from keras_cifar.models.fused import fuse_gelu, unfuse_gelu
from keras_cifar.models.jax_kernels import restore_keras_kernels, use_jax_kernels
from keras_cifar.training.callbacks import EpochClock, ResumePoint
from keras_cifar.training.checkpoints import AtomicBackupAndRestore
from keras_cifar.data import CifarData, limit_data
from keras_cifar.data.pipelines import eval_pipeline, train_pipeline
from keras_cifar._env import cpu_model, onednn_setting
from keras_cifar.training.config import RunConfig
from keras_cifar.errors import ConfigError, TrainingError, TrainingInterrupted  # noqa: F401
from keras_cifar.training.evaluation import EVAL_BATCH_SIZE, evaluate_model
from keras_cifar.models.inspection import parameter_dump, summary_text
from keras_cifar.training.losses import training_loss
from keras_cifar.training.metrics import NotebookLoss
from keras_cifar.training.optimizer import RecipeSGD, StepSchedule
from keras_cifar.training.tta import tta_logits
from keras_cifar.models.whitening import initialise_whitening
from keras_cifar.zoo import NetworkSpec


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


def make_strategy(name: str = "default", devices=()):
    """Returns the `tf.distribute` strategy called `name` (one of `config.STRATEGIES`).

    `default` is TensorFlow's default (no distribution); `mirrored` replicates the model on
    `devices` (all visible GPUs when empty, or the CPU) and splits each batch among them.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=list(devices) or None)


def use_xla(spec: NetworkSpec, xla: str = "auto", strategy: str = "default",
            backend: str | None = None) -> bool:
    """Whether to compile the train step (Keras' `jit_compile`) on `backend` (None: the
    running one).

    `auto` on TensorFlow: on a GPU, yes; on a CPU, only for networks without convolutions,
    where XLA was measured faster (for the CNNs, TensorFlow's oneDNN convolutions beat XLA's
    2-3x on CPU); never under a mirrored strategy, which is not measured here. On JAX, always:
    XLA is JAX's compiler, and without it every op runs eagerly. On PyTorch, no: `on` means
    `torch.compile`, measured slower on CPU (docs/speed.md, "On each Keras backend").
    """
    if xla != "auto":
        return xla == "on"
    backend = backend or keras.backend.backend()
    if backend != "tensorflow":
        return backend == "jax"
    if strategy == "mirrored":
        return False
    return bool(tf.config.list_physical_devices("GPU")) or not spec.is_convolutional


def _threads(backend: str) -> int | None:
    """The intra-op threads a run uses: TensorFlow's setting (0: every core), PyTorch's
    count; None on JAX, whose XLA runtime sizes its own pool."""
    if backend == "tensorflow":
        return tf.config.threading.get_intra_op_parallelism_threads()
    if backend == "torch":
        import torch

        return torch.get_num_threads()
    return None


def steps_per_execution(steps_per_epoch: int, most: int = 32) -> int:
    """Returns the largest divisor of `steps_per_epoch` that is at most `most`.

    Running several steps per call saves Python overhead per batch; a divisor keeps each
    execution inside one epoch, since one data iterator serves the whole run.
    """
    return max(d for d in range(1, min(most, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


# TensorFlow's op determinism is process-wide, and its public API can only switch it on.
_op_determinism_on = os.environ.get("TF_DETERMINISTIC_OPS", "") in ("1", "true")


def _op_determinism(deterministic: bool, xla: bool) -> tuple[bool, bool]:
    """Switches op determinism on where a run wants it; returns (op determinism, XLA) as they
    apply to this run.

    Keras refuses XLA while op determinism is on; XLA's CPU kernels for these networks
    (matmuls, adds, ReLU) are deterministic on their own, which a test checks, so a run with
    XLA leaves it off. Once an earlier run in this process has switched it on, it stays on
    (TensorFlow has no public switch back) and XLA is off for later runs here, with a warning:
    `reproduce run --workers N` and `sweep --workers N` give every run a fresh process.
    """
    global _op_determinism_on
    if deterministic and not xla:
        tf.config.experimental.enable_op_determinism()
        _op_determinism_on = True
    elif _op_determinism_on and xla:
        warnings.warn("XLA is off for this run: TensorFlow's op determinism, switched on by an "
                      "earlier run in this process, cannot be switched off again. Train it in a "
                      "process of its own (e.g. `workers=2`) to use XLA.", stacklevel=3)
        xla = False
    return _op_determinism_on, xla


def uses_recipe_optimizer(config: RunConfig) -> bool:
    """Whether the recipe needs `RecipeSGD` (PyTorch-form SGD); the report's plain recipe, and
    any that only augments or smooths, train with Keras' own `SGD`."""
    r = config.recipe
    return bool(r.nesterov or r.weight_decay or r.schedule.kind != "constant" or r.lr_scales
                or r.averaging.kind != "none" or r.whiten_bias_epochs is not None)


def make_optimizer(config: RunConfig, model, steps_per_epoch: int):
    """The optimizer of a run: Keras' `SGD` for plain recipes, else `RecipeSGD` with the
    recipe's schedule, weight decay, lr scales, freezing and averaging mapped onto `model`'s
    variables."""
    if not uses_recipe_optimizer(config):
        return keras.optimizers.SGD(learning_rate=config.lr, momentum=config.momentum)
    recipe, spec = config.recipe, config.network
    total = steps_per_epoch * config.epochs
    s = recipe.schedule
    lr = config.lr if s.kind == "constant" else StepSchedule(config.lr, s.kind, s.start, s.peak,
                                                             s.end, total)
    scales, frozen = {}, {}
    for layer in spec.layers:
        for variable in model.get_layer(layer.name).trainable_weights:
            key = f"{layer.kind}.{variable.name}"
            if key in recipe.lr_scales:
                scales[variable.path] = recipe.lr_scales[key]
            if key == "whiten.bias" and recipe.whiten_bias_epochs is not None:
                frozen[variable.path] = recipe.whiten_bias_epochs * steps_per_epoch
    averaging, extra = None, ()
    a = recipe.averaging
    if a.kind != "none":
        averaging = (a.kind, a.every, a.decay, a.power, total)
        # BatchNorm's moving statistics are averaged too, as airbench's state_dict lerp does;
        # on TensorFlow only: JAX's and PyTorch's trainers apply the optimiser to the trainable
        # and optimiser variables alone (the statistics there keep their own moving average).
        if keras.backend.backend() == "tensorflow":
            extra = [w for w in model.non_trainable_weights
                     if "moving_" in w.name and "float" in str(w.dtype)]
    return RecipeSGD(learning_rate=lr, momentum=config.momentum, nesterov=recipe.nesterov,
                     l2=recipe.weight_decay, lr_scales=scales, frozen_after=frozen,
                     averaging=averaging, averaged_extra=extra)


def _network_as_run(config: RunConfig) -> NetworkSpec:
    """The network with the recipe's input normalisation, where it sets one."""
    import dataclasses

    if config.recipe.preprocess is None:
        return config.network
    return dataclasses.replace(config.network, preprocess=config.recipe.preprocess)


def compiled_model(config: RunConfig, steps_per_epoch: int, precision: str | None = None):
    """Builds and compiles the model exactly as `train_run` trains it.

    Public so that a check can step the code the runs use (`scripts/step_parity.py` does).

    Args:
        config: the run; its network, SGD settings, seed, init, XLA, strategy and determinism
            settings apply.
        steps_per_epoch: the batches per epoch, which sets `steps_per_execution`.
        precision: a Keras mixed-precision policy (`mixed_precision_policy`), or None.

    Returns:
        (model, the `tf.distribute` strategy, the speed settings used: `steps_per_execution`,
        `xla`, `mixed_precision`, `threads`, `onednn`, `op_determinism`, `fused_gelu` (GELU
        compiled as one kernel: mixed precision on TensorFlow without XLA, `models/fused.py`),
        `jax_kernels` (on JAX, how many max-poolings and convolutions run as reshapes and
        matmuls, `models/jax_kernels.py`; None elsewhere)).
    """
    spec, strategy = config.network, config.strategy
    distribution = make_strategy(strategy, config.devices)
    # Several steps per execution fail under MirroredStrategy in Keras 3.15 / TF 2.21
    # ("You must feed a value for placeholder tensor" in multi_step_on_iterator).
    backend = keras.backend.backend()
    speed = {
        # Keras' PyTorch backend runs one step per call (it refuses more).
        "steps_per_execution": (1 if strategy == "mirrored" or backend == "torch"
                                else steps_per_execution(steps_per_epoch)),
        "xla": use_xla(spec, config.xla, strategy, backend),
        "mixed_precision": precision or False,
        # 0: TensorFlow's default, every core; `reproduce --workers N` shares the cores out.
        "threads": _threads(backend),
        "onednn": onednn_setting() if backend == "tensorflow" else None,
    }
    if backend == "tensorflow":
        speed["op_determinism"], speed["xla"] = _op_determinism(config.deterministic,
                                                                speed["xla"])
    else:  # JAX's and PyTorch's CPU kernels: deterministic as run (tests/test_backends.py)
        speed["op_determinism"] = None
    with distribution.scope():
        model = build_model(_network_as_run(config), init=config.init, seed=config.seed,
                            dtype_policy=precision or "float32")
        # Mixed precision only: float32 runs keep the arithmetic their published results have.
        speed["fused_gelu"] = (backend == "tensorflow" and bool(precision) and not speed["xla"]
                               and fuse_gelu(model) > 0)
        speed["jax_kernels"] = use_jax_kernels(model) if backend == "jax" else None
        model.compile(
            optimizer=make_optimizer(config, model, steps_per_epoch),
            loss=training_loss(config.recipe.label_smoothing),
            # NotebookLoss: the original's loss scale, from the passes fit already runs.
            metrics=["accuracy", NotebookLoss()],
            steps_per_execution=speed["steps_per_execution"],
            jit_compile=speed["xla"],
        )
    return model, distribution, speed


def _compile_for_export(model) -> None:
    """Recompiles with Keras' own loss, metrics, GELU and pooling only, so that model.keras
    loads in plain Keras, without keras-cifar's objects. Keras' SGD keeps its state; a recipe's
    `RecipeSGD` becomes a plain `SGD` at the schedule's last learning rate (its state is not
    Keras')."""
    unfuse_gelu(model)
    restore_keras_kernels(model)
    optimizer = model.optimizer
    if isinstance(optimizer, RecipeSGD):
        last = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        optimizer = keras.optimizers.SGD(learning_rate=last, momentum=optimizer.momentum,
                                         nesterov=optimizer.nesterov)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def train_run(config: RunConfig, data: CifarData | None = None, *, out_dir="runs",
              name: str | None = None, resume: bool = False, force: bool = False,
              tensorboard: bool = False, verbose: int | str = "auto",
              callbacks: list | None = None, reuse_finished: bool = False) -> RunResult:
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
                return _finished_run(run_dir, saved)
            record = saved
        else:
            record = {"identity": identity, "started": _now()}
        # model.keras, three checkpoints (weights and momentum each) and the small files
        _fs.check_free_space(run_dir, 4 * 8 * config.network.params + (4 << 20),
                              f"training {config.network.id}")
        return _train_locked(config, data, run_dir, record, precision=precision,
                             tensorboard=tensorboard, verbose=verbose, callbacks=callbacks)


def _finished_run(run_dir: Path, saved: dict) -> RunResult:
    """A finished run as it is, its model loaded; refused if its model.keras is gone."""
    model_path = run_dir / rundir.MODEL
    if not model_path.is_file():
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
            _compile_for_export(model)
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
