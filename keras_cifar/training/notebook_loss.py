"""The loss on the report's notebook scale, computed from the per-example losses of a pass.

The original notebooks printed `sum over batches of (the batch's mean cross-entropy) / N`, with
batches of 64 in order: each example of a full batch weighs 1/64, each of the last, partial
batch 1/(its size), and the sum is divided by the number of examples N. That is about the
plain mean cross-entropy / 64, but not exactly (the last test batch holds 16 images).

`notebook_scale_loss` computes it from an array of per-example losses (no TensorFlow needed,
so the PyTorch reference uses it too); `keras_cifar.training.metrics.NotebookLoss` accumulates it
during the passes Keras already runs (training and validation), so it costs no extra pass.
"""

from __future__ import annotations

import numpy as np

NOTEBOOK_BATCH_SIZE = 64  # the notebooks' DataLoader batch size, for training and test


def notebook_scale_loss(per_example_losses, batch_size: int = NOTEBOOK_BATCH_SIZE) -> float:
    """Returns the notebook-scale loss of per-example losses given in data order.

    Args:
        per_example_losses: one loss per example, in the order the notebook's loader gave them.
        batch_size: the notebook's batch size.

    Returns:
        `sum over consecutive batches of their mean loss / number of examples`.

    Raises:
        ValueError: no losses, or a batch size < 1.
    """
    losses = np.asarray(per_example_losses, dtype=np.float64).ravel()
    if losses.size == 0:
        raise ValueError("Cannot compute a loss of no examples. Received: 0 losses")
    if batch_size < 1:
        raise ValueError(f"The batch size must be >= 1. Received: batch_size={batch_size!r}")
    starts = np.arange(0, losses.size, batch_size)
    batch_means = np.add.reduceat(losses, starts) / np.diff(np.append(starts, losses.size))
    return float(batch_means.sum() / losses.size)
