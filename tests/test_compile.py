"""training/compile.py: the speed settings a run's model is compiled with, and the model
compiled as `train_run` trains it."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_cifar.training.compile import compiled_model, steps_per_execution, use_xla
from keras_cifar.training.config import RunConfig

from conftest import NETWORK_IDS, ZOO

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.parametrize("steps, expected", [(782, 23), (157, 1), (64, 32), (5, 5), (96, 32)])
def test_steps_per_execution_divides_the_epoch(steps, expected):
    assert steps_per_execution(steps) == expected


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_xla_auto_for_mlps_on_cpu_and_everything_on_gpu(zoo, network_id):
    spec = zoo.network(network_id)
    assert use_xla(spec, "auto") is (HAS_GPU or not spec.is_convolutional)
    assert use_xla(spec, "off") is False and use_xla(spec, "on") is True
    assert use_xla(spec, "auto", strategy="mirrored") is False
    assert use_xla(spec, "auto", backend="jax") is True  # unjitted JAX runs op by op
    assert use_xla(spec, "auto", backend="torch") is False


@pytest.mark.slow
def test_op_determinism_once_on_stays_on_and_turns_xla_off_with_a_warning():
    # In a process of its own: switching op determinism on is process-wide and one-way.
    code = ("import warnings\n"
            "from keras_cifar.training import compile as compiling\n"
            "first = compiling._op_determinism(False, True)\n"
            "second = compiling._op_determinism(True, False)\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    third = compiling._op_determinism(False, True)\n"
            "print(first, second, third, any('XLA is off for this run' in str(w.message)\n"
            "                                for w in caught))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(False,", "True)", "(True,", "False)", "(True,", "False)",
                                   "True"]


def test_a_recipe_preprocess_replaces_the_networks(tmp_path):
    from keras_cifar.zoo.recipe import with_changes

    network = ZOO.network("mlp2")  # symmetric: x / 127.5 - 1
    config = RunConfig.of(network, recipe=with_changes(ZOO.recipe("report"),
                                                       {"preprocess": "unit"}))
    model, _, _ = compiled_model(config, steps_per_epoch=1)
    pixels = np.full((1, 32, 32, 3), 255, np.uint8)
    np.testing.assert_allclose(np.asarray(model.get_layer("rescale")(pixels)), 1.0)
    plain, _, _ = compiled_model(RunConfig.of(network), steps_per_epoch=1)
    np.testing.assert_allclose(np.asarray(plain.get_layer("rescale")(pixels)), 1.0)
    zero = np.zeros((1, 32, 32, 3), np.uint8)
    assert float(np.asarray(model.get_layer("rescale")(zero)).max()) == 0.0
    assert float(np.asarray(plain.get_layer("rescale")(zero)).max()) == -1.0
