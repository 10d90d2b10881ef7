"""--strategy mirrored on two logical CPU devices (split in a fresh process, before TF starts)."""

import json
import math
import subprocess
import sys

import pytest


SPLIT_CPU = (
    "import tensorflow as tf\n"
    "cpu = tf.config.list_physical_devices('CPU')[0]\n"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
)


def run_python(code, tmp_path):
    done = subprocess.run([sys.executable, "-c", SPLIT_CPU + code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_mirrored_run_reports_two_replicas_and_trains(tmp_path):
    run_python(
        "import sys\n"
        "from keras_cifar.cli import main\n"
        "sys.argv = ['keras-cifar', 'train', 'mlp2', '--data', 'synthetic', '--epochs', '1',\n"
        "            '--limit', '256', '--strategy', 'mirrored', '--devices', '/cpu:0,/cpu:1',\n"
        f"            '--out', r'{tmp_path / 'out'}']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n", tmp_path)
    (run_dir,) = (tmp_path / "out").iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "finished"
    assert config["strategy"]["name"] == "mirrored" and config["strategy"]["replicas"] == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test_loss"])


@pytest.mark.slow
def test_one_mirrored_step_equals_one_plain_step(tmp_path):
    out = run_python(
        "import json, keras, numpy as np\n"
        "from keras_cifar.models.builder import build_model\n"
        "from keras_cifar.data import synthetic_data\n"
        "from keras_cifar.training.compile import make_strategy\n"
        "from keras_cifar.zoo import load_zoo\n"
        "d = synthetic_data(64, 10)\n"
        "def one_step(strategy):\n"
        "    with strategy.scope():\n"
        "        model = build_model(load_zoo().network('lenet5'), seed=0)\n"
        "        model.compile(keras.optimizers.SGD(0.1, momentum=0.9),\n"
        "                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
        "    batch = tf.data.Dataset.from_tensor_slices((d.train_images, d.train_labels)).batch(64)\n"
        "    before = model.get_weights()\n"
        "    model.fit(batch, epochs=1, verbose=0)\n"
        "    return before, model.get_weights(), strategy.num_replicas_in_sync\n"
        "b0, plain, n0 = one_step(make_strategy('default'))\n"
        "b1, mirrored, n1 = one_step(make_strategy('mirrored', ['/cpu:0', '/cpu:1']))\n"
        "print(json.dumps({'replicas': [n0, n1],\n"
        "  'same_start': all(np.array_equal(x, y) for x, y in zip(b0, b1)),\n"
        "  'moved': max(float(np.abs(x - y).max()) for x, y in zip(b0, plain)),\n"
        "  'diff': max(float(np.abs(x - y).max()) for x, y in zip(plain, mirrored))}))\n",
        tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["replicas"] == [1, 2] and result["same_start"]
    assert result["moved"] > 1e-3
    assert result["diff"] < 1e-5


def test_devices_without_mirrored_is_refused():
    from keras_cifar.training.config import RunConfig
    from keras_cifar.zoo import get_network

    with pytest.raises(ValueError, match='`devices` needs `strategy="mirrored"`'):
        RunConfig.of(get_network("mlp2"), devices=("/cpu:0",))
