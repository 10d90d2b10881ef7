"""Turn a `NetworkSpec` into a `keras.Sequential`.

The model takes raw pixels (uint8 or float, 0..255): the preprocessing is its first layer, so an
exported `.keras` file needs nothing else to predict. Only Keras' own layers and initializers
are used, so a saved model loads in a Python that has Keras and not keras-cifar.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_cifar.zoo import INITS, INPUT_SHAPE, LayerSpec, NetworkSpec, get_network
from keras_cifar.zoo.spec import CIFAR_MEAN, CIFAR_STD

# Each weighted layer draws its kernel and bias from seeds derived from the model's seed, so
# two layers of the same shape never get the same values.
_SEEDS_PER_LAYER = 2


def preprocess_layer(preprocess: str, dtype_policy: str = "float32") -> keras.layers.Layer:
    """Returns the `Rescaling` layer for a zoo `preprocess` value (`unit`, `symmetric` or
    `standardize`)."""
    if preprocess == "standardize":  # (x / 255 - mean) / std per channel, in one affine map
        scale = [1.0 / (255.0 * s) for s in CIFAR_STD]
        offset = [-m / s for m, s in zip(CIFAR_MEAN, CIFAR_STD)]
        return keras.layers.Rescaling(scale, offset=offset, name="rescale", dtype=dtype_policy)
    if preprocess == "unit":
        return keras.layers.Rescaling(1.0 / 255, name="rescale", dtype=dtype_policy)
    if preprocess == "symmetric":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale",
                                      dtype=dtype_policy)
    raise ValueError("Unknown preprocess; expected 'unit', 'symmetric' or 'standardize'. "
                     f"Received: preprocess={preprocess!r}")


def _initializers(layer: LayerSpec, init: str, seed: int | None):
    """Returns (kernel, bias) initializers for a weighted layer."""
    kernel_seed = bias_seed = None
    if seed is not None:
        kernel_seed, bias_seed = seed, seed + 1
    if init == "keras":
        return keras.initializers.GlorotUniform(seed=kernel_seed), keras.initializers.Zeros()
    # PyTorch's default (kaiming_uniform with a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    # for the kernel; VarianceScaling's uniform limit is sqrt(3 * scale / fan_in), so 1/3.
    bound = 1.0 / math.sqrt(layer.fan_in)
    kernel = keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=kernel_seed
    )
    bias = keras.initializers.RandomUniform(-bound, bound, seed=bias_seed)
    return kernel, bias


def _keras_layer(layer: LayerSpec, init: str, seed: int | None,
                 dtype: str) -> keras.layers.Layer:
    o = layer.options
    activation = None if o.get("activation", "linear") == "linear" else o["activation"]
    if layer.kind in ("conv", "dense", "whiten"):
        kernel, bias = _initializers(layer, init, seed)
        if layer.kind == "whiten":
            # airbench's whitening bias starts at zero; its kernel is set from the data.
            return keras.layers.Conv2D(
                layer.output_shape[-1], o["kernel_size"], padding="valid",
                kernel_initializer=kernel, bias_initializer="zeros", name=layer.name,
                dtype=dtype,
            )
        if layer.kind == "conv":
            return keras.layers.Conv2D(
                o["filters"], o["kernel_size"], strides=o["strides"], padding=o["padding"],
                activation=activation, use_bias=o["use_bias"], kernel_initializer=kernel,
                bias_initializer=bias, name=layer.name, dtype=dtype,
            )
        return keras.layers.Dense(
            o["units"], activation=activation, use_bias=o["use_bias"], kernel_initializer=kernel,
            bias_initializer=bias, name=layer.name, dtype=dtype,
        )
    if layer.kind == "activation":
        return keras.layers.Activation(o["activation"], name=layer.name, dtype=dtype)
    if layer.kind == "globalmaxpool":
        return keras.layers.GlobalMaxPooling2D(name=layer.name, dtype=dtype)
    if layer.kind == "scale":
        return keras.layers.Rescaling(o["factor"], name=layer.name, dtype=dtype)
    if layer.kind == "maxpool":
        return keras.layers.MaxPooling2D(o["pool_size"], strides=o["strides"], name=layer.name,
                                         dtype=dtype)
    if layer.kind == "flatten":
        return keras.layers.Flatten(name=layer.name, dtype=dtype)
    if layer.kind == "dropout":
        return keras.layers.Dropout(o["rate"], seed=seed, name=layer.name, dtype=dtype)
    if layer.kind == "batchnorm":
        return keras.layers.BatchNormalization(momentum=o["momentum"], epsilon=o["epsilon"],
                                               scale=o["scale"], name=layer.name, dtype=dtype)
    raise ValueError(f"Unknown layer kind in network spec. Received: kind={layer.kind!r}")


def build_model(spec: NetworkSpec | str, init: str | None = None, seed: int | None = None,
                dtype_policy: str = "float32") -> keras.Sequential:
    """Builds the Keras model of a zoo network.

    Args:
        spec: the network: a zoo id such as `"cnn3"`, or a `NetworkSpec` from `keras_cifar.zoo`.
        init: `torch` for PyTorch's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            for kernels and biases, or `keras` for Keras' defaults (Glorot-uniform, zero
            bias). None means the network's own default (`torch` in the zoo).
        seed: seeds every initializer, so the same seed gives the same weights. None draws
            from Keras' global generator (`keras.utils.set_random_seed`).
        dtype_policy: every layer's Keras dtype policy, e.g. `float32` or `mixed_float16`
            (`--mixed-precision`); Keras' global policy is never read. Under a mixed policy the
            logits leave in float32.

    Returns:
        A built `keras.Sequential` named after the network, taking (N, 32, 32, 3) raw pixels
        and returning (N, 10) logits.

    Raises:
        ValueError: `init` is not `torch` or `keras`.
        ZooError: an unknown zoo id (the message suggests the nearest).
    """
    if isinstance(spec, str):
        spec = get_network(spec)
    init = spec.init if init is None else init
    if init not in INITS:
        raise ValueError(
            f"Unknown weight initialisation for network '{spec.id}'; expected one of "
            f"{list(INITS)}. Received: init={init!r}"
        )
    layers = [keras.Input(INPUT_SHAPE, name="pixels"),
              preprocess_layer(spec.preprocess, dtype_policy)]
    for index, layer in enumerate(spec.layers):
        layer_seed = None if seed is None else seed * 1000 + index * _SEEDS_PER_LAYER
        layers.append(_keras_layer(layer, init, layer_seed, dtype_policy))
    policy = keras.DTypePolicy(dtype_policy)
    if policy.compute_dtype != policy.variable_dtype:
        # Under a 16-bit compute policy, logits in float32 keep the softmax and the loss
        # accurate (Keras' mixed-precision guide); no weights, so the dumps do not change.
        layers.append(keras.layers.Activation("linear", dtype="float32", name="logits_float32"))
    model = keras.Sequential(layers, name=spec.id.replace("-", "_"))
    _set_fixed_weights(model, spec)
    return model


def dirac_kernel(kernel: np.ndarray) -> np.ndarray:
    """`kernel` (k, k, in, out) with its first `in` filters made the identity (a 1 at the
    centre tap of its own channel): the layer starts by passing its input through, as
    `torch.nn.init.dirac_` on airbench's first filters. The other filters keep their values."""
    k, _, channels, filters = kernel.shape
    kernel = np.array(kernel, copy=True)
    kernel[..., :channels] = 0.0
    centre = k // 2
    kernel[centre, centre, np.arange(channels), np.arange(channels)] = 1.0
    return kernel


def _set_fixed_weights(model: keras.Sequential, spec: NetworkSpec) -> None:
    """Dirac initialisation, and frozen whitening kernels. Done on the built model, so that the
    saved model's config names only Keras' own initialisers and loads without keras-cifar."""
    for layer in spec.layers:
        keras_layer = model.get_layer(layer.name)
        if layer.kind == "conv" and layer.options.get("init") == "dirac":
            keras_layer.kernel.assign(dirac_kernel(keras.ops.convert_to_numpy(keras_layer.kernel)))
        if layer.kind == "whiten":
            keras_layer.kernel.trainable = False
