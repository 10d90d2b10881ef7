"""RecipeSGD against PyTorch's SGD update written out in NumPy, airbench's lookahead rule, and
the per-step schedule against the recipe's pure-Python one."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_cifar.training.optimizer import RecipeSGD, StepSchedule
from keras_cifar.zoo.recipe import Schedule


def _grads(steps, shape, seed=0):
    return np.random.default_rng(seed).normal(size=(steps, *shape)).astype("float32")


def _run(optimizer, w0, grads, extra=None):
    w = keras.Variable(w0, name="w")
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [w])
    return w.numpy()


def _torch_sgd(w0, grads, lr, momentum, nesterov, l2, scale=1.0, frozen_after=None):
    """torch.optim.SGD's documented update (lr * scale, weight_decay = l2 / scale)."""
    w, m = w0.astype(np.float64), np.zeros_like(w0, dtype=np.float64)
    for step, g in enumerate(grads):
        if frozen_after is not None and step >= frozen_after:
            continue
        g = g + (l2 / scale) * w
        m = momentum * m + g
        w = w - lr(step) * scale * (g + momentum * m if nesterov else m)
    return w


def test_without_extras_it_is_keras_sgd_for_a_constant_lr():
    w0, grads = np.ones((3, 4), "float32"), _grads(6, (3, 4))
    ours = _run(RecipeSGD(0.1, momentum=0.9), w0, grads)
    keras_sgd = _run(keras.optimizers.SGD(0.1, momentum=0.9), w0, grads)
    np.testing.assert_allclose(ours, keras_sgd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_nesterov_weight_decay_and_lr_scale_follow_pytorch(nesterov):
    w0, grads = np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4), _grads(7, (3, 4), 1)
    optimizer = RecipeSGD(0.05, momentum=0.85, nesterov=nesterov, l2=0.01, lr_scales={"w": 4.0})
    expected = _torch_sgd(w0, grads, lambda s: 0.05, 0.85, nesterov, 0.01, scale=4.0)
    np.testing.assert_allclose(_run(optimizer, w0, grads), expected, rtol=1e-5, atol=1e-6)


def test_under_a_schedule_the_current_lr_multiplies_the_whole_buffer():
    w0, grads = np.ones(5, "float32"), _grads(9, (5,), 2)
    schedule = StepSchedule(0.2, "triangle", 0.2, 0.3, 0.1, total_steps=9)
    s = Schedule("triangle", 0.2, 0.3, 0.1)
    expected = _torch_sgd(w0, grads, lambda step: 0.2 * s.multiplier(step, 9), 0.9, True, 0.0)
    ours = _run(RecipeSGD(schedule, momentum=0.9, nesterov=True), w0, grads)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_a_frozen_variable_stops_after_its_steps_momentum_and_all():
    w0, grads = np.ones(4, "float32"), _grads(8, (4,), 3)
    optimizer = RecipeSGD(0.1, momentum=0.9, l2=0.1, frozen_after={"w": 3})
    expected = _torch_sgd(w0, grads, lambda s: 0.1, 0.9, False, 0.1, frozen_after=3)
    np.testing.assert_allclose(_run(optimizer, w0, grads), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps", [list(range(0, 3)), list(range(-1, 9))])
def test_step_schedule_matches_the_recipe_schedule(steps):
    for kind, start, peak, end in (("triangle", 0.2, 0.23, 0.07), ("cosine", 0.0, 0.1, 0.01),
                                   ("constant", 1.0, 0.0, 1.0)):
        schedule = StepSchedule(2.0, kind, start, peak, end, total_steps=8)
        reference = Schedule(kind, start, peak, end)
        for step in steps:
            assert float(schedule(step)) == pytest.approx(2.0 * reference.multiplier(step, 8),
                                                          rel=1e-6)


def _airbench_lookahead(w0, grads, lr, every, decay, power):
    """airbench's loop: plain SGD steps; every `every` steps ema.lerp_(w, 1 - decay *
    (step / total) ** power) and w = ema; at the last step w = ema."""
    total = len(grads)
    w = w0.astype(np.float64)
    m = np.zeros_like(w)
    ema = w.copy()
    for index, g in enumerate(grads):
        m = 0.9 * m + g
        w = w - lr * m
        step = index + 1
        if step % every == 0:
            alpha = decay * (step / total) ** power
            ema = ema + (1 - alpha) * (w - ema)
            w = ema.copy()
        if step >= total:
            w = ema.copy()
    return w, ema


@pytest.mark.parametrize("kind", ["lookahead", "ema"])
def test_weight_averaging_follows_airbench_lookahead_rule(kind):
    w0, grads = np.zeros(6, "float32"), _grads(12, (6,), 4)
    optimizer = RecipeSGD(0.1, momentum=0.9, averaging=(kind, 5, 0.95 ** 5, 3.0, 12))
    ours = _run(optimizer, w0, grads)
    if kind == "lookahead":
        expected, _ = _airbench_lookahead(w0, grads, 0.1, 5, 0.95 ** 5, 3.0)
    else:  # the average is kept aside; only the last step puts it in the weights
        w, m, ema = w0.astype(np.float64), np.zeros(6), w0.astype(np.float64)
        for index, g in enumerate(grads):
            m = 0.9 * m + g
            w = w - 0.1 * m
            if (index + 1) % 5 == 0:
                ema = ema + (1 - 0.95 ** 5 * ((index + 1) / 12) ** 3) * (w - ema)
        expected = ema
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_extra_variables_are_averaged_too():
    w = keras.Variable(np.zeros(3, "float32"), name="w")
    stat = keras.Variable(np.zeros(3, "float32"), name="moving_mean", trainable=False)
    optimizer = RecipeSGD(0.1, momentum=0.0, averaging=("lookahead", 2, 0.5, 0.0, 4),
                          averaged_extra=[stat])
    optimizer.build([w])
    stat.assign(np.ones(3, "float32"))  # a BatchNorm update after the average was taken
    optimizer.apply([keras.ops.zeros(3)], [w])
    optimizer.apply([keras.ops.zeros(3)], [w])  # step 2: average = 0.5 * 0 + 0.5 * 1
    np.testing.assert_allclose(stat.numpy(), 0.5)
    # its own variables only: iterations, learning rate, momentum, two averages
    assert [v.path.split("/")[-1] for v in optimizer.variables] == [
        "iteration", "learning_rate", "w_momentum", "w_average", "moving_mean_average"]


LOOKAHEAD_FIT = """
import json
import keras
import numpy as np
from keras_cifar.training.optimizer import RecipeSGD

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = x @ np.arange(4, dtype="float32")[:, None]
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
model.compile(optimizer=RecipeSGD(0.05, momentum=0.9, averaging=("lookahead", 5, 0.5, 3.0, 16)),
              loss="mse")
model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
weights = [w.tolist() for w in model.get_weights()]
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_lookahead_fits_on_every_backend_as_on_tensorflow(backend):
    """The averages start as copies of the weights: on JAX, sharing their buffers made the
    train step donate one buffer twice (airbench93 failed at its first step)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    done = subprocess.run([sys.executable, "-c", LOOKAHEAD_FIT + "print(json.dumps(weights))"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    here = {}
    exec(LOOKAHEAD_FIT, here)  # this process runs TensorFlow
    for a, b in zip(theirs, here["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
