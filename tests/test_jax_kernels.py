"""models/jax_kernels.py: the windowed max-pooling and the im2col convolution compute what
Keras' MaxPooling2D and Conv2D compute, and are swapped in and out without touching a config."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cifar.models import jax_kernels
from keras_cifar.models.builder import build_model
from keras_cifar.models.jax_kernels import restore_keras_kernels, use_jax_kernels
from keras_cifar.zoo import load_zoo

ZOO = load_zoo()
CONVOLUTIONAL = [n.id for n in ZOO.networks.values()
                 if any(layer.kind in ("conv", "maxpool") for layer in n.layers)]


def _count(model, kind):
    return sum(isinstance(layer, kind) for layer in model.layers)


def _values_and_gradient(layer_or_model, x, seed=2):
    """The output and the gradient of a random weighting of it, by input and by weights."""
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer_or_model(x)
        loss = tf.reduce_sum(y * tf.constant(np.random.default_rng(seed).normal(size=y.shape),
                                             tf.float32))
    weights = layer_or_model.trainable_weights
    return y.numpy(), tape.gradient(loss, x).numpy(), [g.numpy() for g in
                                                         tape.gradient(loss, weights)]


def test_the_zoo_has_convolutional_networks():
    assert {"lenet5", "cnn3", "airbench93", "airbench94"} <= set(CONVOLUTIONAL)


@pytest.mark.parametrize("network_id", CONVOLUTIONAL)
def test_a_zoo_network_gives_the_same_logits_with_its_kernels_swapped(network_id):
    model = build_model(network_id, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    before = keras.ops.convert_to_numpy(model(images, training=False))
    configs = [layer.get_config() for layer in model.layers]
    swapped = use_jax_kernels(model)
    assert swapped == {"max_pooling": _count(model, keras.layers.MaxPooling2D),
                       "convolution": _count(model, keras.layers.Conv2D)}
    after = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert [layer.get_config() for layer in model.layers] == configs
    assert use_jax_kernels(model) == {"max_pooling": 0, "convolution": 0}  # already swapped


@pytest.mark.parametrize("size", [13, 30])  # 13: 'valid' drops the last row and column
def test_pooling_values_and_gradients_match_keras(size):
    x = tf.constant(np.random.default_rng(1).normal(size=(3, size, size, 5)), tf.float32)
    keras_pool = keras.layers.MaxPooling2D(2)
    swapped = keras.Sequential([keras.Input((size, size, 5)), keras.layers.MaxPooling2D(2)])
    assert use_jax_kernels(swapped)["max_pooling"] == 1
    (y0, g0, _), (y1, g1, _) = _values_and_gradient(keras_pool, x), _values_and_gradient(swapped, x)
    assert y0.shape == (3, size // 2, size // 2, 5)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel,padding,channels", [
    (3, "valid", 3), (3, "same", 16), (2, "valid", 3), (2, "same", 8), (5, "valid", 4)])
def test_convolution_values_and_gradients_match_keras(kernel, padding, channels):
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 11, 11, channels)), tf.float32)
    layers = [keras.layers.Conv2D(6, kernel, padding=padding, activation="relu") for _ in "ab"]
    for layer in layers:
        layer.build(x.shape)
    layers[1].set_weights(layers[0].get_weights())
    model = keras.Sequential([keras.Input(x.shape[1:]), layers[1]])
    assert use_jax_kernels(model)["convolution"] == 1
    (y0, g0, w0), (y1, g1, w1) = _values_and_gradient(layers[0], x), _values_and_gradient(model, x)
    assert y1.shape == y0.shape == ((2, 11, 11, 6) if padding == "same" else
                                    (2, 12 - kernel, 12 - kernel, 6))
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-5)
    for a, b in zip(w1, w0):  # kernel and bias gradients
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_a_convolution_whose_patches_are_too_large_keeps_keras_kernel(monkeypatch):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 2)).astype("float32")
    twins = [keras.layers.Conv2D(4, 3) for _ in "ab"]
    for layer in twins:
        layer.build(x.shape)
    twins[1].set_weights(twins[0].get_weights())
    model = keras.Sequential([keras.Input((8, 8, 2)), twins[1]])
    use_jax_kernels(model)
    matmuls = []
    real = keras.ops.matmul
    monkeypatch.setattr(keras.ops, "matmul", lambda *a: matmuls.append(1) or real(*a))
    model(x)
    assert matmuls  # 2 x 6 x 6 patches of 3 x 3 x 2 floats: im2col
    matmuls.clear()
    monkeypatch.setattr(jax_kernels, "IM2COL_MAX_BYTES", 2 * 6 * 6 * 18 * 4 - 1)
    np.testing.assert_array_equal(model(x), twins[0](x))  # Keras' own kernel, bit for bit
    assert not matmuls


@pytest.mark.parametrize("layer", [keras.layers.MaxPooling2D(3, strides=2),
                                   keras.layers.MaxPooling2D(2, padding="same"),
                                   keras.layers.Conv2D(4, 3, strides=2),
                                   keras.layers.Conv2D(4, 3, dilation_rate=2),
                                   keras.layers.Conv2D(4, 3, groups=2)],
                         ids=["overlapping-pool", "same-pool", "strided-conv", "dilated-conv",
                              "grouped-conv"])
def test_layers_that_are_not_plain_windows_keep_keras_own(layer):
    model = keras.Sequential([keras.Input((9, 9, 2)), layer])
    assert use_jax_kernels(model) == {"max_pooling": 0, "convolution": 0}
    assert "call" not in vars(layer) and "convolution_op" not in vars(layer)


def test_restoring_puts_keras_kernels_back_and_the_saved_model_is_plain_keras(tmp_path):
    model = build_model("cnn3", seed=0)
    assert sum(use_jax_kernels(model).values()) == 4
    assert restore_keras_kernels(model) == 4
    assert all("call" not in vars(layer) and "convolution_op" not in vars(layer)
               for layer in model.layers)
    assert restore_keras_kernels(model) == 0
    use_jax_kernels(model)
    restore_keras_kernels(model)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in loaded.layers] == \
        [type(layer).__name__ for layer in model.layers]


def test_each_kind_can_be_swapped_alone_and_an_unknown_kind_is_refused():
    model = build_model("lenet5", seed=0)
    assert use_jax_kernels(model, kinds=("convolution",)) == {"max_pooling": 0, "convolution": 2}
    assert use_jax_kernels(model, kinds=("max_pooling",)) == {"max_pooling": 2, "convolution": 0}
    with pytest.raises(ValueError, match=r"choose from \['max_pooling', 'convolution'\]. "
                                         r"Received: kinds=\('pool',\)"):
        use_jax_kernels(model, kinds=("pool",))
