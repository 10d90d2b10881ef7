"""The whitening layer's data-dependent initialisation: its outputs' patch covariance becomes
the identity, as airbench's init_whitening_conv makes it."""

import numpy as np

from keras_cifar.models.builder import build_model
from keras_cifar.models.whitening import (initialise_whitening, patch_covariance, patches,
                                          whitening_kernel)

from conftest import ZOO


def _correlated_images(n=300, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 33, 33, 3))
    # neighbouring pixels and channels correlated, as in natural images
    smooth = base[:, 1:, 1:] + 0.8 * base[:, :-1, :-1] + 0.5 * base[:, 1:, :-1]
    mix = np.array([[1.0, 0.6, 0.3], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    return smooth @ mix


def test_patches_are_flattened_in_keras_kernel_order():
    images = np.arange(2 * 3 * 3 * 3, dtype=float).reshape(2, 3, 3, 3)
    p = patches(images, 2)
    assert p.shape == (2 * 2 * 2, 12)
    # the first patch of image 0: pixels (0,0), (0,1), (1,0), (1,1), channels innermost
    expected = np.concatenate([images[0, 0, 0], images[0, 0, 1], images[0, 1, 0], images[0, 1, 1]])
    np.testing.assert_array_equal(p[0], expected)


def test_the_whitened_patches_have_identity_covariance():
    images = _correlated_images()
    kernel, eigenvalues = whitening_kernel(images, kernel_size=2, epsilon=1e-8)
    assert kernel.shape == (2, 2, 3, 24)
    assert np.all(np.diff(eigenvalues) <= 0)  # largest first, as airbench flips eigh's order
    out = patches(images, 2) @ kernel.reshape(12, 24)
    moment = out.T @ out / len(out)
    np.testing.assert_allclose(moment[:12, :12], np.eye(12), atol=1e-4)
    # the second half is the negation of the first
    np.testing.assert_allclose(kernel[..., 12:], -kernel[..., :12])
    assert np.abs(patch_covariance(images, 2) - np.cov(patches(images, 2).T)).max() > 0  # uncentred


def test_epsilon_shrinks_the_weak_directions_as_documented():
    images = _correlated_images()
    eps = 0.5
    kernel, eigenvalues = whitening_kernel(images, 2, eps)
    out = patches(images, 2) @ kernel.reshape(12, 24)[:, :12]
    moment = out.T @ out / len(out)
    np.testing.assert_allclose(np.diag(moment), eigenvalues / (eigenvalues + eps), rtol=1e-4)


def test_initialise_whitening_sets_the_model_layer_from_preprocessed_images():
    spec = ZOO.network("airbench93")
    model = build_model(spec, seed=0)
    images = np.random.default_rng(1).integers(0, 256, (64, 32, 32, 3)).astype(np.uint8)
    before = model.get_layer("whiten1").kernel.numpy()
    (record,) = initialise_whitening(model, spec, images)
    after = model.get_layer("whiten1").kernel.numpy()
    assert not np.allclose(before, after)
    assert record["layer"] == "whiten1" and record["images"] == 64 and len(record["eigenvalues"]) == 12
    # the kernel whitens what the layer sees: the rescaled (standardised) images
    rescaled = np.array(model.get_layer("rescale")(images.astype(np.float32)))
    expected, _ = whitening_kernel(rescaled, 2, spec.layers[0].options["epsilon"])
    np.testing.assert_allclose(after, expected, rtol=1e-4, atol=1e-5)
    assert not model.get_layer("whiten1").kernel.trainable
    assert model.get_layer("whiten1").bias.trainable


def test_only_the_first_images_are_used():
    spec = ZOO.network("airbench93")
    model = build_model(spec, seed=0)
    images = np.random.default_rng(2).integers(0, 256, (6000, 32, 32, 3)).astype(np.uint8)
    (record,) = initialise_whitening(model, spec, images)
    assert record["images"] == spec.layers[0].options["images"] == 5000
    assert [layer.name for layer in model.layers if layer.name.startswith("whiten")] == ["whiten1"]
