"""Training-time augmentation in the tf.data pipeline, vectorised over whole batches.

Each image's flip, shift and cutout square in an epoch are drawn from (seed, epoch) alone, by
stateless generators over the whole training set, and looked up by the image's index: an
image is augmented the same way whatever batch it lands in, and a resumed run sees exactly the
batches an uninterrupted one does.
"""

from __future__ import annotations

from keras_cifar.zoo.recipe import Augment
from keras_cifar.zoo.spec import CIFAR_MEAN

# Cutout fills with CIFAR-10's mean colour, which every preprocessing maps near 0 (exactly 0
# under `standardize`), as cutout on normalised images does.
CUTOUT_FILL = tuple(round(255 * m) for m in CIFAR_MEAN)
_FLIP, _ALTERNATE, _SHIFT, _CUTOUT = 1, 2, 3, 4  # stream tags folded into the seed


def _stream(seed, epoch, tag: int):
    import tensorflow as tf

    base = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, tag)


def epoch_draws(n: int, seed: int, epoch, augment: Augment) -> dict:
    """The random choices of one epoch for all `n` training images, by image index:
    `flip` (bool), `shift` (int32, (n, 2): rows, columns) and `corner` (int32, (n, 2))."""
    import tensorflow as tf

    draws = {}
    if augment.flip == "random":
        draws["flip"] = tf.random.stateless_uniform([n], _stream(seed, epoch, _FLIP)) < 0.5
    elif augment.flip == "alternate":
        # A fixed random half is flipped in even epochs, the other half in odd ones.
        first = tf.random.stateless_uniform([n], _stream(seed, 0, _ALTERNATE)) < 0.5
        draws["flip"] = tf.math.logical_xor(first, tf.equal(tf.math.floormod(epoch, 2), 1))
    if augment.translate:
        t = augment.translate
        draws["shift"] = tf.random.stateless_uniform([n, 2], _stream(seed, epoch, _SHIFT),
                                                     minval=-t, maxval=t + 1, dtype=tf.int32)
    if augment.cutout:
        draws["corner"] = tf.random.stateless_uniform(
            [n, 2], _stream(seed, epoch, _CUTOUT), minval=0, maxval=32 - augment.cutout + 1,
            dtype=tf.int32)
    return draws


def flip_batch(images, flip):
    """Mirrors the images (N, H, W, C) where `flip` is true."""
    import tensorflow as tf

    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def translate_batch(images, shift, pad: int):
    """Moves each image by its (rows, columns) `shift` in [-pad, pad], reflect-padded: the
    output's pixel (y, x) is the input's (y + rows, x + columns), mirrored at the borders."""
    import tensorflow as tf

    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    rows = pad + shift[:, 0:1] + tf.range(h)[None, :]
    cols = pad + shift[:, 1:2] + tf.range(w)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def cutout_batch(images, corner, size: int):
    """Fills a size x size square at each image's (row, column) `corner` with `CUTOUT_FILL`."""
    import tensorflow as tf

    h, w = images.shape[1], images.shape[2]
    ys = tf.range(h)[None, :] - corner[:, 0:1]
    xs = tf.range(w)[None, :] - corner[:, 1:2]
    inside = ((ys >= 0) & (ys < size))[:, :, None] & ((xs >= 0) & (xs < size))[:, None, :]
    fill = tf.cast(tf.constant(CUTOUT_FILL), images.dtype)[None, None, None, :]
    return tf.where(inside[..., None], fill, images)


def augment_batch(images, draws: dict, augment: Augment):
    """Applies one batch's draws (`epoch_draws` gathered by the batch's indices)."""
    if "flip" in draws:
        images = flip_batch(images, draws["flip"])
    if "shift" in draws:
        images = translate_batch(images, draws["shift"], augment.translate)
    if "corner" in draws:
        images = cutout_batch(images, draws["corner"], augment.cutout)
    return images
