"""How a run's model is built and compiled: the speed settings (strategy, XLA, threads, steps
per execution, op determinism, kernel swaps), the optimizer from the recipe, and the recompile
that makes a trained model plain Keras again before it is saved."""

from __future__ import annotations

import os
import warnings

import keras
import tensorflow as tf

from keras_cifar._env import onednn_setting
from keras_cifar.models.builder import build_model
from keras_cifar.models.fused import fuse_gelu, unfuse_gelu
from keras_cifar.models.jax_kernels import restore_keras_kernels, use_jax_kernels
from keras_cifar.training.config import RunConfig
from keras_cifar.training.losses import training_loss
from keras_cifar.training.metrics import NotebookLoss
from keras_cifar.training.optimizer import RecipeSGD, StepSchedule
from keras_cifar.zoo import NetworkSpec


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
    """Builds and compiles the model exactly as `train_run` (`training/train.py`) trains it.

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


def recompile_for_saving(model) -> None:
    """Recompiles with Keras' own loss, metrics and layers' kernels only, so that model.keras
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
