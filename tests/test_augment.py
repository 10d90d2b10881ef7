"""Augmentation: labels kept, pixels moved as stated, draws a function of (seed, epoch, image),
so a resumed run sees the batches an uninterrupted one does."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cifar.data import synthetic_data
from keras_cifar.data.augment import (CUTOUT_FILL, augment_batch, cutout_batch, epoch_draws,
                                      flip_batch, translate_batch)
from keras_cifar.data.pipelines import train_pipeline
from keras_cifar.zoo.recipe import Augment


def _images(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)


def test_flip_mirrors_exactly_the_chosen_images_and_keeps_their_pixels():
    x = _images()
    flip = np.array([True, False] * 4)
    out = flip_batch(tf.constant(x), tf.constant(flip)).numpy()
    np.testing.assert_array_equal(out[flip], x[flip][:, :, ::-1])
    np.testing.assert_array_equal(out[~flip], x[~flip])
    for a, b in zip(out, x):  # the same pixel multiset per image
        np.testing.assert_array_equal(np.sort(a.reshape(-1, 3), axis=0), np.sort(b.reshape(-1, 3), axis=0))


def test_translate_takes_a_window_of_the_reflect_padded_image():
    x = _images(4)
    shifts = np.array([[0, 0], [2, -1], [-2, 2], [1, 1]], np.int32)
    out = translate_batch(tf.constant(x), tf.constant(shifts), 2).numpy()
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    for i, (dy, dx) in enumerate(shifts):
        np.testing.assert_array_equal(out[i], padded[i, 2 + dy:34 + dy, 2 + dx:34 + dx])
    np.testing.assert_array_equal(out[0], x[0])  # a zero shift is the identity
    # inside the image, a shift moves pixels without changing them
    np.testing.assert_array_equal(out[1][:-2, 1:], x[1][2:, :-1])


def test_cutout_fills_one_square_of_the_given_side():
    x = np.zeros((3, 32, 32, 3), np.uint8)
    corners = np.array([[0, 0], [10, 20], [24, 24]], np.int32)
    out = cutout_batch(tf.constant(x), tf.constant(corners), 8).numpy()
    for image, (y, c) in zip(out, corners):
        filled = np.all(image == np.array(CUTOUT_FILL, np.uint8), axis=-1)
        assert filled.sum() == 64 and filled[y:y + 8, c:c + 8].all()


def test_alternate_flip_flips_complementary_halves_in_even_and_odd_epochs():
    augment = Augment(flip="alternate")
    even = epoch_draws(1000, 3, 0, augment)["flip"].numpy()
    odd = epoch_draws(1000, 3, 1, augment)["flip"].numpy()
    np.testing.assert_array_equal(even, ~odd)
    np.testing.assert_array_equal(epoch_draws(1000, 3, 2, augment)["flip"].numpy(), even)
    assert 400 < even.sum() < 600
    random_flip = Augment(flip="random")
    a, b = (epoch_draws(1000, 3, e, random_flip)["flip"].numpy() for e in (0, 1))
    assert 0.35 < (a == b).mean() < 0.65  # independent epochs


def test_draws_depend_only_on_seed_and_epoch_and_stay_in_range():
    augment = Augment(flip="random", translate=3, cutout=6)
    first = {k: v.numpy() for k, v in epoch_draws(500, 7, 4, augment).items()}
    again = {k: v.numpy() for k, v in epoch_draws(500, 7, 4, augment).items()}
    other = epoch_draws(500, 8, 4, augment)["shift"].numpy()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["shift"], other)
    assert first["shift"].min() == -3 and first["shift"].max() == 3
    assert first["corner"].min() >= 0 and first["corner"].max() == 32 - 6


@pytest.mark.parametrize("augment", [Augment(flip="alternate", translate=2),
                                     Augment(flip="random", cutout=8)])
def test_the_augmented_pipeline_keeps_labels_and_resumes_exactly(augment):
    d = synthetic_data(96, 10)

    def batches(first_epoch):
        ds, first, _ = train_pipeline(d.train_images, d.train_labels, 32, seed=1, epochs=3,
                                      augment=augment)
        first.assign(first_epoch)
        return [(x, y) for x, y in ds.as_numpy_iterator()]

    full, resumed = batches(0), batches(2)
    for (x, y), (rx, ry) in zip(full[6:], resumed):
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
    plain, _, _ = train_pipeline(d.train_images, d.train_labels, 32, seed=1, epochs=3)
    plain = list(plain.as_numpy_iterator())
    for (x, y), (px, py) in zip(full, plain):
        np.testing.assert_array_equal(y, py)  # the same order and labels
        assert x.dtype == np.uint8 and x.shape == px.shape
    assert any(not np.array_equal(x, px) for (x, _), (px, _) in zip(full, plain))


def test_augment_batch_applies_nothing_without_draws():
    x = _images(2)
    np.testing.assert_array_equal(augment_batch(tf.constant(x), {}, Augment()).numpy(), x)
