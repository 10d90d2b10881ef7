"""Evaluate a trained model on test images: loss on both scales, accuracy, per class, confusion."""

from __future__ import annotations

import numpy as np

from keras_cifar.data.pipelines import eval_pipeline
from keras_cifar.models.inspection import classifier_output
from keras_cifar.training.notebook_loss import notebook_scale_loss

# Evaluation batch: any size gives the same test metrics; large batches make them cheaper.
EVAL_BATCH_SIZE = 1000


def evaluate_model(model, images: np.ndarray, labels: np.ndarray,
                   batch_size: int | None = None) -> dict:
    """Returns test loss, accuracy, per-class accuracy and confusion matrix.

    One pass of predictions; the losses are computed from the logits (or, for a model ending
    in softmax, its probabilities; `classifier_output`) in float64: `test_loss`
    is the mean cross-entropy, `test_loss_notebook` the same losses on the original notebooks'
    scale (see `keras_cifar.training.notebook_loss`).
    """
    batch_size = batch_size or EVAL_BATCH_SIZE
    kind = classifier_output(model)
    logits = model.predict(eval_pipeline(images, labels, batch_size), verbose=0).astype(np.float64)
    if kind == "probabilities":  # a model that ends in softmax: its outputs are the p's
        log_probs = np.log(np.clip(logits, np.finfo(np.float64).tiny, None))
    else:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    predictions = logits.argmax(axis=1)
    labels = np.asarray(labels)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    losses = -log_probs[np.arange(len(labels)), labels]
    return {
        "test_loss": float(losses.mean()),
        "test_loss_notebook": notebook_scale_loss(losses),
        "test_accuracy": float((predictions == labels).mean()),
        "per_class_accuracy": [round(float(a), 6) for a in per_class],
        "confusion_matrix": confusion.tolist(),
    }
