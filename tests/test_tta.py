"""Test-time augmentation: airbench's averaging of mirrored and shifted views."""

import numpy as np
import pytest

from keras_cifar.training.tta import mirror, shift, tta_logits


def _images(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype(np.float32)


def _probe(x):
    # a "model" whose logits are chosen pixels: any view changes them
    return x[:, :10, 0, 0]


def test_level_none_is_the_plain_logits():
    x = _images()
    np.testing.assert_array_equal(tta_logits(_probe, x, "none"), _probe(x))


def test_mirror_averages_the_image_and_its_mirror():
    x = _images()
    np.testing.assert_allclose(tta_logits(_probe, x, "mirror"),
                               0.5 * _probe(x) + 0.5 * _probe(x[:, :, ::-1]))


def test_mirror_translate_is_half_mirror_half_the_two_one_pixel_shifts():
    x = _images()
    m = lambda v: 0.5 * _probe(v) + 0.5 * _probe(mirror(v))  # noqa: E731
    expected = 0.5 * m(x) + 0.25 * (m(shift(x, -1, -1)) + m(shift(x, 1, 1)))
    np.testing.assert_allclose(tta_logits(_probe, x, "mirror_translate", batch_size=2), expected)


def test_a_view_invariant_model_is_unchanged_by_tta():
    x = _images()
    mean = lambda v: np.repeat(v.mean(axis=(1, 2, 3))[:, None], 10, axis=1)  # noqa: E731
    # the mean over pixels is mirror-invariant; shifts with reflection change it only slightly
    np.testing.assert_allclose(tta_logits(mean, x, "mirror"), mean(x), rtol=1e-6)


def test_shift_moves_pixels_and_reflects_at_the_border():
    x = _images(1)
    s = shift(x, 1, 1)
    np.testing.assert_array_equal(s[0, :-1, :-1], x[0, 1:, 1:])
    np.testing.assert_array_equal(s[0, -1, :-1], x[0, -2, 1:])  # reflected, not repeated
    np.testing.assert_array_equal(shift(shift(x, 0, 0), 0, 0), x)


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="Received: tta='flip'"):
        tta_logits(_probe, _images(), "flip")
