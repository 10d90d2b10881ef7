"""The training loss: label smoothing as PyTorch and Keras define it."""

import keras
import numpy as np
import pytest

from keras_cifar.training.losses import SmoothedSparseCrossentropy, training_loss


def test_smoothed_loss_matches_the_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 10)).astype("float32")
    labels = rng.integers(0, 10, 8)
    smoothing = 0.2
    got = float(SmoothedSparseCrossentropy(smoothing)(labels, logits))
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = np.full((8, 10), smoothing / 10)
    target[np.arange(8), labels] += 1 - smoothing
    assert got == pytest.approx(float(-(target * log_p).sum(axis=1).mean()), rel=1e-5)


def test_no_smoothing_is_keras_own_sparse_crossentropy():
    loss = training_loss(0.0)
    assert type(loss) is keras.losses.SparseCategoricalCrossentropy
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 10)).astype("float32")
    labels = rng.integers(0, 10, 5)
    assert float(SmoothedSparseCrossentropy(0.0)(labels, logits)) == pytest.approx(
        float(loss(labels, logits)), rel=1e-6)
    assert isinstance(training_loss(0.1), SmoothedSparseCrossentropy)
