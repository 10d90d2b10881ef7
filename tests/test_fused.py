"""fused: GELU as one XLA kernel on TensorFlow, swapped in for mixed precision and back out
before saving, with the same values and gradients as Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cifar.models.fused import fuse_gelu, fused_gelu, unfuse_gelu
from keras_cifar.training.config import RunConfig
from keras_cifar.training.compile import compiled_model
from keras_cifar.zoo import load_zoo


def gelu_model(policy="float32"):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((6, 6, 3)),
        keras.layers.Conv2D(4, 3, activation="gelu", dtype=policy),
        keras.layers.Activation("gelu", dtype=policy),
        keras.layers.Activation("relu", dtype=policy),
        keras.layers.Flatten(dtype=policy),
        keras.layers.Dense(10, dtype="float32"),
    ])


def values_and_gradients(model, x):
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_sum(tf.cast(out, tf.float32) ** 2)
    return out.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def test_the_fused_gelu_is_keras_exact_gelu_in_value_and_gradient():
    x = tf.constant(np.linspace(-6, 6, 1001, dtype="float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        plain, fused = keras.activations.gelu(x), fused_gelu(x)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), atol=1e-6)
    np.testing.assert_allclose(tape.gradient(fused, x).numpy(), tape.gradient(plain, x).numpy(),
                               atol=1e-5)
    approximate = fused_gelu(x, approximate=True)
    np.testing.assert_array_equal(approximate, keras.activations.gelu(x, approximate=True))


@pytest.mark.parametrize("policy,atol", [("float32", 1e-5), ("mixed_bfloat16", 5e-2)])
def test_a_fused_model_trains_like_the_plain_one(policy, atol):
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 3)).astype("float32")
    plain = gelu_model(policy)
    fused = gelu_model(policy)
    fused.set_weights(plain.get_weights())
    assert fuse_gelu(fused) == 2  # the conv's activation and the Activation layer, not ReLU
    assert fused.layers[0].activation is fused_gelu and fused.layers[2].activation is not fused_gelu
    (out_p, grads_p), (out_f, grads_f) = values_and_gradients(plain, x), values_and_gradients(fused, x)
    np.testing.assert_allclose(out_f, out_p, atol=atol, rtol=atol)
    for g_f, g_p in zip(grads_f, grads_p):
        np.testing.assert_allclose(g_f, g_p, atol=atol * max(1.0, np.abs(g_p).max()), rtol=atol)


def test_unfusing_restores_keras_gelu_so_the_saved_model_names_it(tmp_path):
    model = gelu_model()
    fuse_gelu(model)
    assert unfuse_gelu(model) == 2 and unfuse_gelu(model) == 0
    assert model.layers[0].activation is keras.activations.gelu
    model.save(tmp_path / "m.keras")
    assert keras.saving.serialize_keras_object(model.layers[1])["config"]["activation"] == "gelu"
    reloaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert reloaded.layers[1].activation is keras.activations.gelu


@pytest.mark.parametrize("precision,fused", [(None, False), ("mixed_bfloat16", True)])
def test_compiled_model_fuses_gelu_only_in_mixed_precision(precision, fused):
    """float32 runs keep Keras' GELU: their published results are bit-reproducible with it."""
    zoo = load_zoo()
    spec = zoo.network("airbench93")
    config = RunConfig.of(spec, recipe=zoo.recipe(spec.recipe), epochs=1)
    model, _, speed = compiled_model(config, 49, precision)
    activations = [getattr(layer, "activation", None) for layer in model.layers]
    assert speed["fused_gelu"] is fused
    assert activations.count(fused_gelu) == (7 if fused else 0)
    assert activations.count(keras.activations.gelu) == (0 if fused else 7)


@pytest.mark.slow
def test_a_mixed_precision_airbench_run_fuses_repeatably_and_saves_keras_gelu(tmp_path):
    import keras_cifar as kc
    from keras_cifar.training import rundir

    data = kc.load_data("synthetic")
    runs = [kc.train_network("airbench93", data, epochs=2, limit=512, batch_size=128,
                             out_dir=tmp_path / name, verbose=0, mixed_precision=True)
            for name in ("a", "b")]
    run = runs[0]
    assert rundir.read_config(run.run_dir)["speed"]["fused_gelu"] is True
    # the same seed, the same history: the fused kernel keeps runs reproducible
    assert [(r["loss"], r["val_loss"]) for r in runs[0].history] == [
        (r["loss"], r["val_loss"]) for r in runs[1].history]
    assert np.isfinite(run.metrics["test_loss"])
    saved = keras.saving.load_model(run.run_dir / rundir.MODEL, compile=False)
    gelus = [layer for layer in saved.layers if layer.get_config().get("activation") == "gelu"]
    assert len(gelus) == 7 and all(layer.activation is keras.activations.gelu for layer in gelus)
