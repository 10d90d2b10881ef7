"""tf.data pipelines over in-memory CIFAR-10 arrays: a resumable training order and in-order
evaluation."""

from __future__ import annotations

import numpy as np

def epoch_permutation(n: int, seed: int, epoch):
    """Returns the training order of epoch `epoch`: a function of (seed, epoch) only.

    Works on a Python int or a scalar tensor, so a resumed run sees the same order.
    """
    import tensorflow as tf

    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    )


def train_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                   epochs: int, augment=None):
    """Returns (dataset, first_epoch, steps_per_epoch): every epoch's batches in one dataset.

    Epoch e's order is `epoch_permutation(n, seed, e)`, so it does not depend on what ran
    before: a resumed run sees the same batches as an uninterrupted one. The dataset covers
    epochs `first_epoch` .. `epochs - 1`, where `first_epoch` is a variable read when Keras
    creates the iterator (set it at the first epoch's start). Pass `steps_per_epoch` to `fit`:
    one iterator then serves the whole run, which avoids the seconds-long stall TensorFlow
    shows when an iterator is recreated at each epoch's start. Batches are gathered from
    in-memory tensors, so there is no shuffle buffer to refill. `augment` (a recipe's
    `Augment`) transforms each batch after the gather (`keras_cifar.data.augment`).
    """
    import tensorflow as tf

    n = len(labels)
    with tf.device("/CPU:0"):
        images_t = tf.constant(images)
        labels_t = tf.constant(labels)
        first_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_first_epoch")

    if augment is not None and augment.active:
        from keras_cifar.data import augment as aug

        def epoch_batches(epoch):
            order = epoch_permutation(n, seed, epoch)
            draws = {k: tf.gather(v, order) for k, v in aug.epoch_draws(n, seed, epoch, augment).items()}
            return tf.data.Dataset.from_tensor_slices((order, draws)).batch(batch_size)

        def gather(idx, draws):
            return aug.augment_batch(tf.gather(images_t, idx), draws, augment), tf.gather(labels_t, idx)
    else:
        def epoch_batches(epoch):
            return tf.data.Dataset.from_tensor_slices(epoch_permutation(n, seed, epoch)).batch(batch_size)

        def gather(idx):
            return tf.gather(images_t, idx), tf.gather(labels_t, idx)

    def remaining_epochs(_):
        return tf.data.Dataset.range(first_epoch.read_value(), epochs).flat_map(epoch_batches)

    dataset = (
        tf.data.Dataset.from_tensors(0)
        .flat_map(remaining_epochs)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, first_epoch, -(-n // batch_size)


def eval_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """Returns the test pipeline: in order, batched, prefetched."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(
        tf.data.AUTOTUNE)
