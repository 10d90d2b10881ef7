"""Keras metrics of keras-cifar: the loss on the original notebooks' scale."""

from __future__ import annotations

import keras
from keras import ops

from keras_cifar.training.notebook_loss import NOTEBOOK_BATCH_SIZE


@keras.saving.register_keras_serializable(package="keras_cifar")
class NotebookLoss(keras.metrics.Metric):
    """Keras metric: a pass's cross-entropy (from logits) on the notebook's scale.

    The examples of a pass must arrive in the notebook's order, in batches of any size: the
    metric numbers them as they come and groups them into the notebook's batches itself. It
    keeps three numbers: the examples seen, the sum of their losses, and the loss sum of the
    trailing group that is not (yet) a full notebook batch.

    They are float64 where the backend has it. JAX has not unless `jax_enable_x64` is set, and
    would truncate float64 to float32 with a warning at every run: there they are float32, which
    keeps the counts exact and a 50,000-example pass's value within 2e-7 (the sum grows a batch
    at a time).
    """

    def __init__(self, batch_size: int = NOTEBOOK_BATCH_SIZE, name: str = "notebook_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.batch_size = int(batch_size)
        self.sum_dtype = _widest_float()
        self.seen = self._zero("seen")
        self.total = self._zero("total")
        self.tail = self._zero("tail")

    def _zero(self, name):
        return self.add_variable(shape=(), initializer="zeros", dtype=self.sum_dtype, name=name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        losses = ops.cast(ops.sparse_categorical_crossentropy(
            ops.cast(y_true, "int32"), ops.cast(y_pred, "float32"), from_logits=True),
            self.sum_dtype)
        size = float(self.batch_size)
        count = ops.shape(losses)[0]
        start = self.seen
        end = start + ops.cast(count, self.sum_dtype)
        positions = start + ops.cast(ops.arange(count), self.sum_dtype)
        tail_start = ops.floor(end / size) * size
        chunk_tail = ops.sum(ops.where(positions >= tail_start, losses, 0.0))
        same_group = ops.equal(ops.floor(start / size) * size, tail_start)
        self.tail.assign(ops.where(same_group, self.tail + chunk_tail, chunk_tail))
        self.total.assign(self.total + ops.sum(losses))
        self.seen.assign(end)

    def result(self):
        size = float(self.batch_size)
        partial = self.seen - ops.floor(self.seen / size) * size
        full_groups = (self.total - self.tail) / size
        last_group = ops.where(partial > 0, self.tail / ops.maximum(partial, 1.0), 0.0)
        value = (full_groups + last_group) / ops.maximum(self.seen, 1.0)
        return ops.cast(value, "float32")

    def get_config(self):
        return {**super().get_config(), "batch_size": self.batch_size}


def _widest_float() -> str:
    """float64, unless the backend is JAX without `jax_enable_x64` (then float32)."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.read("jax_enable_x64"):
            return "float32"
    return "float64"
