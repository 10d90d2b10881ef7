"""metrics: NotebookLoss accumulates the notebook-scale loss over a pass in any batching."""

import keras
import numpy as np
import pytest

from keras_cifar.training.metrics import NotebookLoss
from keras_cifar.training.notebook_loss import notebook_scale_loss


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
