"""metrics: NotebookLoss accumulates the notebook-scale loss over a pass in any batching."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_cifar.training.metrics import NotebookLoss
from keras_cifar.training.notebook_loss import notebook_scale_loss

ROOT = Path(__file__).resolve().parents[1]


def per_example_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


@pytest.mark.parametrize("chunk", [1000, 64, 37, 1])
def test_any_evaluation_batching_gives_the_notebooks_number(chunk):
    rng = np.random.default_rng(chunk)
    n = 1000 if chunk == 1 else 10_000
    logits = rng.normal(size=(n, 10)).astype("float32")
    labels = rng.integers(0, 10, n)
    metric = NotebookLoss()
    for start in range(0, n, chunk):
        metric.update_state(labels[start:start + chunk], logits[start:start + chunk])
    expected = notebook_scale_loss(per_example_cross_entropy(logits.astype(np.float64), labels))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_in_fit_validation_it_matches_a_separate_computation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)).astype("float32")
    y = rng.integers(0, 10, 300)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10)])
    model.compile(optimizer="sgd", metrics=[NotebookLoss()],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=50, epochs=1, shuffle=False, verbose=0,
                        validation_data=(x[:130], y[:130]), validation_batch_size=100)
    logits = model.predict(x[:130], verbose=0).astype(np.float64)
    expected = notebook_scale_loss(per_example_cross_entropy(logits, y[:130]))
    assert history.history["val_notebook_loss"][0] == pytest.approx(expected, rel=1e-5)



def _pass_of(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 10)) * 3).astype("float32"), rng.integers(0, 10, n)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="jax is not installed (the jax extra)")
def test_on_jax_a_whole_pass_keeps_the_notebooks_number_without_a_float64_warning():
    """JAX without x64 truncates float64 with a UserWarning at every run: the metric must not
    ask for it, and its float32 sums must still give a 50,000-example pass's number."""
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("error")
        from keras_cifar.training.metrics import NotebookLoss
        from tests.test_metrics import _pass_of
        logits, labels = _pass_of(50_000)
        metric = NotebookLoss()
        for start in range(0, 50_000, 64):
            metric.update_state(labels[start:start + 64], logits[start:start + 64])
        print(metric.sum_dtype, repr(float(metric.result())))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    dtype, value = done.stdout.split()
    logits, labels = _pass_of(50_000)
    expected = notebook_scale_loss(per_example_cross_entropy(logits.astype(np.float64), labels))
    assert dtype == "float32" and float(value) == pytest.approx(expected, rel=2e-7)
