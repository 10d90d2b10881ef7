"""Max-pooling and small convolutions as reshapes and matmuls, for training on JAX.

On a CPU, XLA runs Keras' `MaxPooling2D` as `lax.reduce_window`, whose gradient is a slow
select-and-scatter, and its convolutions with its own kernels, which are slowest where a
convolution has few input channels (an RGB image). Written as a reshape into windows and a max,
a pooling whose windows do not overlap is the same function (the same values, and the same
gradient except where two inputs of one window tie for the maximum, where it is shared); a
convolution written as im2col (its patches side by side, then one matmul) is the same sum in
another order (float32 round-off apart). On a 2-core Xeon, CNN 3's train step went from 154
ms to 97 and LeNet-5's from 35 to 15 (`scripts/bench_jax_kernels.py`,
`figures/bench/jax_kernels.json`, docs/speed.md).

Only the layers' `call` (pooling) and `convolution_op` change, never their configs:
`restore_keras_kernels` puts Keras' own back before a model is saved, so a `model.keras` still
loads in plain Keras. A convolution whose patches would take more than `IM2COL_MAX_BYTES` (a
wide layer at a large batch) keeps Keras' kernel, decided per traced shape.
"""

from __future__ import annotations

import keras

IM2COL_MAX_BYTES = 256 * 2**20


def _windowed_max(layer: keras.layers.MaxPooling2D):
    """`layer`'s pooling as a reshape into its windows and a max over them."""
    rows, cols = layer.pool_size

    def call(inputs):
        height, width, channels = inputs.shape[1:]
        out_h, out_w = height // rows, width // cols
        cropped = inputs[:, :out_h * rows, :out_w * cols, :]  # 'valid' drops the remainder
        windows = keras.ops.reshape(cropped, (-1, out_h, rows, out_w, cols, channels))
        return keras.ops.max(windows, axis=(2, 4))

    call.keras_cifar_kernel = "windowed max"
    return call


def _im2col(layer: keras.layers.Conv2D):
    """`layer`'s convolution as its patches, concatenated on the channel axis, times the kernel
    as a matrix; Keras' own where the patches would be too large."""
    keras_op = type(layer).convolution_op

    def convolution_op(inputs, kernel):
        k_h, k_w, c_in, c_out = kernel.shape
        batch, height, width = inputs.shape[:3]
        same = layer.padding == "same"
        out_h, out_w = (height, width) if same else (height - k_h + 1, width - k_w + 1)
        itemsize = 2 if "16" in str(inputs.dtype) else 4
        if batch is None or batch * out_h * out_w * k_h * k_w * c_in * itemsize > IM2COL_MAX_BYTES:
            return keras_op(layer, inputs, kernel)
        if same:  # Keras' 'same': the odd pixel of padding goes after
            inputs = keras.ops.pad(inputs, ((0, 0), ((k_h - 1) // 2, k_h // 2),
                                            ((k_w - 1) // 2, k_w // 2), (0, 0)))
        patches = keras.ops.concatenate(
            [inputs[:, i:i + out_h, j:j + out_w, :] for i in range(k_h) for j in range(k_w)],
            axis=-1)  # channels in the order (i, j, c): the kernel's, flattened row-major
        flat = keras.ops.matmul(keras.ops.reshape(patches, (-1, k_h * k_w * c_in)),
                                keras.ops.reshape(kernel, (k_h * k_w * c_in, c_out)))
        return keras.ops.reshape(flat, (batch, out_h, out_w, c_out))

    convolution_op.keras_cifar_kernel = "im2col"
    return convolution_op


def _poolable(layer) -> bool:
    return (isinstance(layer, keras.layers.MaxPooling2D)
            and tuple(layer.strides) == tuple(layer.pool_size)
            and layer.padding == "valid" and layer.data_format == "channels_last")


def _im2col_able(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D  # not a subclass with its own convolution
            and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
            and layer.groups == 1 and layer.data_format == "channels_last")


KINDS = ("max_pooling", "convolution")


def use_jax_kernels(model: keras.Model, kinds=KINDS) -> dict[str, int]:
    """Swaps in the windowed max-pooling and the im2col convolution (see the module's
    docstring) wherever they compute the same function.

    Meant for JAX; both are Keras ops, so they run on every backend.

    Args:
        model: a built Keras model; its layers change in place.
        kinds: which to swap in, of `KINDS`.

    Returns:
        How many layers of each kind were swapped, e.g. `{"max_pooling": 2, "convolution": 2}`.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"Unknown kernel kinds {sorted(unknown)}; choose from {list(KINDS)}. "
                         f"Received: kinds={kinds!r}")
    swapped = {"max_pooling": 0, "convolution": 0}
    for layer in model.layers:
        if "max_pooling" in kinds and _poolable(layer) and not _swapped(layer, "call"):
            layer.call = _windowed_max(layer)
            swapped["max_pooling"] += 1
        elif ("convolution" in kinds and _im2col_able(layer)
              and not _swapped(layer, "convolution_op")):
            layer.convolution_op = _im2col(layer)
            swapped["convolution"] += 1
    return swapped


def _swapped(layer, attribute: str) -> bool:
    return hasattr(getattr(layer, attribute, None), "keras_cifar_kernel")


def restore_keras_kernels(model: keras.Model) -> int:
    """Puts Keras' own pooling and convolution back where `use_jax_kernels` swapped them
    (before saving); returns how many layers."""
    restored = 0
    for layer in model.layers:
        for attribute in ("call", "convolution_op"):
            if _swapped(layer, attribute):
                delattr(layer, attribute)
                restored += 1
    return restored
