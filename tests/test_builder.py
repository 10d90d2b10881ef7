"""The builder: shapes, parameter counts, PyTorch's initialisation, seeds, portable saving."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_cifar.models.builder import build_model
from keras_cifar.zoo import parse_zoo

from conftest import EXPECTED_PARAMS, NETWORK_IDS, REPORT_NETWORK_IDS

# PyTorch's weight shapes for the report's networks, as (out, in[, kh, kw]).
CONV_WIDTHS = {"lenet5": (16, 32), "cnn1": (32, 64), "cnn2": (64, 128), "cnn3": (64, 128)}
DENSE_WIDTHS = {
    "mlp-baseline": (3072, 512, 512, 256, 10), "mlp1": (3072, 512, 512, 512, 10),
    "mlp2": (3072, 256, 256, 256, 10), "lenet5": (1152, 512, 256, 10),
    "cnn1": (2304, 512, 256, 10), "cnn2": (4608, 512, 256, 10), "cnn3": (4608, 512, 512, 10),
}


def expected_shapes(network_id):
    shapes = []
    channels = 3
    for filters in CONV_WIDTHS.get(network_id, ()):
        shapes += [(3, 3, channels, filters), (filters,)]
        channels = filters
    widths = DENSE_WIDTHS[network_id]
    for fan_in, units in zip(widths, widths[1:]):
        shapes += [(fan_in, units), (units,)]
    return shapes


@pytest.fixture(scope="module")
def models(zoo):
    return {n: build_model(zoo.network(n), seed=7) for n in NETWORK_IDS}


@pytest.mark.parametrize("network_id", REPORT_NETWORK_IDS)
def test_builds_with_report_shapes(models, network_id):
    model = models[network_id]
    assert isinstance(model, keras.Sequential)
    assert model.output_shape == (None, 10)
    assert model.count_params() == EXPECTED_PARAMS[network_id]
    assert [tuple(w.shape) for w in model.weights] == expected_shapes(network_id)


@pytest.mark.parametrize("network_id", REPORT_NETWORK_IDS)
def test_layer_names_map_to_report(models, network_id):
    names = [l.name for l in models[network_id].layers]
    assert names[0] == "rescale"
    n_dense = len(DENSE_WIDTHS[network_id]) - 1
    assert [n for n in names if n.startswith("dense")] == [f"dense{i}" for i in range(1, n_dense + 1)]
    if network_id in CONV_WIDTHS:
        assert [n for n in names if n.startswith("conv")] == ["conv1", "conv2"]


@pytest.mark.parametrize("network_id", REPORT_NETWORK_IDS)
def test_torch_init_bounds(models, network_id):
    model = models[network_id]
    for layer in model.layers:
        if not layer.weights:
            continue
        kernel, bias = (np.asarray(w.numpy()) for w in layer.weights)
        fan_in = int(np.prod(kernel.shape[:-1]))
        bound = 1 / math.sqrt(fan_in)
        for values in (kernel, bias):
            assert np.abs(values).max() <= bound * (1 + 1e-6)
            if values.size >= 100:  # P(max < 0.9 bound) = 0.9**100, negligible
                assert np.abs(values).max() > 0.9 * bound
            if values.size >= 1000:  # the sample std is then within ~2% of bound / sqrt(3)
                assert abs(values.std() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)


def test_keras_init_is_glorot_with_zero_bias(zoo):
    model = build_model(zoo.network("mlp2"), init="keras", seed=1)
    kernel, bias = model.get_layer("dense1").get_weights()
    assert not bias.any()
    assert np.abs(kernel).max() <= math.sqrt(6 / (3072 + 256)) * (1 + 1e-6)


def test_unknown_init_is_refused(zoo):
    with pytest.raises(ValueError, match="Received: init='xavier'"):
        build_model(zoo.network("mlp2"), init="xavier")


def test_same_seed_same_weights_other_seed_other_weights(zoo):
    spec = zoo.network("lenet5")
    a, b, c = (build_model(spec, seed=s).get_weights() for s in (3, 3, 4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_layers_of_one_shape_get_different_weights(zoo):
    weights = build_model(zoo.network("mlp1"), seed=0)
    assert not np.array_equal(weights.get_layer("dense2").get_weights()[0],
                              weights.get_layer("dense3").get_weights()[0])


def test_takes_raw_uint8_pixels(zoo):
    model = build_model(zoo.network("mlp2"), seed=0)
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(model.predict(pixels, verbose=0),
                               model.predict(pixels.astype(np.float32), verbose=0), rtol=1e-5)


def test_symmetric_preprocess_scales_to_minus_one_one():
    spec = parse_zoo({"networks": [{"id": "s", "preprocess": "symmetric", "layers": [
        {"kind": "flatten"}, {"kind": "dense", "units": 10}], "train": {"lr": 1, "momentum": 0,
        "epochs": 1}}]}).network("s")
    rescale = build_model(spec).get_layer("rescale")
    out = keras.ops.convert_to_numpy(rescale(np.array([[0.0, 255.0]])))
    np.testing.assert_allclose(out, [[-1.0, 1.0]], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("network_id", ["mlp2", "cnn3"])
def test_saved_model_loads_without_keras_cifar(zoo, tmp_path, network_id):
    model = build_model(zoo.network(network_id), seed=0)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)
    np.save(tmp_path / "expected.npy", model.predict(pixels, verbose=0))
    model.save(tmp_path / "m.keras")
    script = (
        "import sys, numpy as np, keras\n"
        f"m = keras.saving.load_model(r'{tmp_path / 'm.keras'}')\n"
        f"out = m.predict(np.load(r'{tmp_path / 'pixels.npy'}'), verbose=0)\n"
        f"np.testing.assert_allclose(out, np.load(r'{tmp_path / 'expected.npy'}'), rtol=1e-5, atol=1e-6)\n"
        "assert 'keras_cifar' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("network_id", ["mlp2", "cnn1"])
def test_dtype_policy_is_explicit_and_the_global_policy_is_never_read(zoo, network_id):
    spec = zoo.network(network_id)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        default = build_model(spec, seed=0)  # the global mixed policy must not leak in
    finally:
        keras.config.set_dtype_policy(previous)
    assert {layer.compute_dtype for layer in default.layers} == {"float32"}
    assert default.layers[-1].name != "logits_float32"

    mixed = build_model(spec, seed=0, dtype_policy="mixed_float16")
    assert mixed.layers[-2].compute_dtype == "float16"
    assert mixed.layers[-1].name == "logits_float32" and mixed.layers[-1].compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in mixed.weights)  # variables stay float32
    logits = mixed(np.zeros((2, 32, 32, 3), "uint8"))
    assert logits.dtype == "float32" and logits.shape == (2, 10)


def test_standardize_maps_the_cifar_mean_to_zero_and_one_sd_to_one():
    from keras_cifar.zoo.spec import CIFAR_MEAN, CIFAR_STD

    model = build_model("airbench93", seed=0)
    rescale = model.get_layer("rescale")
    mean = np.array(CIFAR_MEAN, np.float32) * 255
    std = np.array(CIFAR_STD, np.float32) * 255
    np.testing.assert_allclose(np.asarray(rescale(mean[None, None, None, :])), 0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(rescale((mean + std)[None, None, None, :])), 1, rtol=1e-5)


def test_dirac_filters_pass_their_input_channel_through():
    from keras_cifar.models.builder import dirac_kernel

    kernel = dirac_kernel(np.ones((3, 3, 4, 6), np.float32))
    assert kernel[1, 1, 2, 2] == 1 and kernel[..., :4].sum() == 4  # one tap per identity filter
    np.testing.assert_array_equal(kernel[..., 4:], 1)  # the others keep their values
    model = build_model("airbench93", seed=0)
    conv = model.get_layer("conv2").kernel.numpy()  # 64 -> 64: all identity
    np.testing.assert_array_equal(conv, dirac_kernel(conv))
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 64)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model.get_layer("conv2")(x)), x, atol=1e-6)


def test_a_saved_airbench_model_loads_in_plain_keras_with_its_weights(tmp_path):
    model = build_model("airbench93", seed=3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
