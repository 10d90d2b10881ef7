"""The training loss: cross-entropy from logits on integer labels, with optional label
smoothing (Keras' sparse cross-entropy has none; its categorical one needs one-hot labels)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable("keras_cifar")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Mean cross-entropy of logits against integer labels smoothed as
    `(1 - smoothing) * one_hot + smoothing / classes`, as `torch.nn.CrossEntropyLoss(
    label_smoothing=)` and Keras' `CategoricalCrossentropy(label_smoothing=)` define it."""

    def __init__(self, label_smoothing: float = 0.0, name="smoothed_sparse_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes,
                              dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def training_loss(label_smoothing: float = 0.0) -> keras.losses.Loss:
    """Keras' own sparse cross-entropy where there is no smoothing (the report's runs, and
    every exported model), else `SmoothedSparseCrossentropy`."""
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return SmoothedSparseCrossentropy(label_smoothing)
