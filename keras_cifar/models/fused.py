"""GELU as one fused kernel on TensorFlow, for mixed-precision training on a CPU.

TensorFlow runs Keras' exact GELU, `x / 2 * (1 + erf(x / sqrt(2)))`, and its gradient as
separate element-wise kernels, each a pass over memory. In bfloat16 on a CPU whose convolutions
run on AMX, those passes became the step's largest cost after the convolutions: compiling each
GELU with XLA, which fuses the formula and its gradient into one loop apiece, takes
airbench93's bfloat16 train step (batch 1024) from 1,436 ms to 1,122 on a 2-core Xeon
(`scripts/bench_step.py`, `figures/bench/step_cost.json`; docs/recipes.md). XLA is not used
for the whole model because its CPU convolutions are 2x slower than oneDNN's.

Only the layers' functions change, never their configs: `unfuse_gelu` puts Keras' own GELU
back before a model is saved, so a `model.keras` still loads in plain Keras.
"""

from __future__ import annotations

import functools

import keras


@functools.cache
def _xla_gelu():
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def gelu(x):
        return tf.nn.gelu(x, approximate=False)

    return gelu


def fused_gelu(x, approximate: bool = False):
    """Keras' exact GELU, compiled as one XLA kernel (forward and gradient); TensorFlow only."""
    if approximate:
        return keras.activations.gelu(x, approximate=True)
    return _xla_gelu()(x)


def fuse_gelu(model: keras.Model) -> int:
    """Swaps Keras' GELU for `fused_gelu` in every layer of `model` that applies it (an
    `Activation`, or a layer's `activation`); returns how many. TensorFlow backend only: JAX
    compiles the whole step with XLA already, and PyTorch runs eagerly."""
    if keras.backend.backend() != "tensorflow":
        raise ValueError("fuse_gelu needs the TensorFlow backend, where the fused kernel is "
                         f"XLA's. Received: backend={keras.backend.backend()!r}")
    swapped = 0
    for layer in model.layers:
        if getattr(layer, "activation", None) is keras.activations.gelu:
            layer.activation = fused_gelu
            swapped += 1
    return swapped


def unfuse_gelu(model: keras.Model) -> int:
    """Puts Keras' own GELU back where `fuse_gelu` swapped it (before saving); returns how
    many."""
    swapped = 0
    for layer in model.layers:
        if getattr(layer, "activation", None) is fused_gelu:
            layer.activation = keras.activations.gelu
            swapped += 1
    return swapped
