"""The data-dependent initialisation of a `whiten` layer: a frozen k x k convolution whose
filters are the eigenvectors of the training images' patch covariance, scaled by
1 / sqrt(eigenvalue + epsilon), and their negatives (airbench's `init_whitening_conv`).

Applied to the patches it was computed on, the first half of its outputs has a second-moment
matrix of eigenvalue / (eigenvalue + epsilon) on the diagonal and zeros elsewhere: close to
the identity for every direction the data varies in.
"""

from __future__ import annotations

import numpy as np

# Images per chunk when accumulating the covariance: bounds memory to a few tens of MB.
_CHUNK = 500


def patches(images: np.ndarray, kernel_size: int) -> np.ndarray:
    """Every k x k patch of (N, H, W, C) images, flattened in (row, column, channel) order,
    the order of a Keras kernel's first three axes: shape (N * (H-k+1) * (W-k+1), k*k*C)."""
    n, h, w, c = images.shape
    k = kernel_size
    views = [images[:, dy:dy + h - k + 1, dx:dx + w - k + 1, :]
             for dy in range(k) for dx in range(k)]
    return np.stack(views, axis=3).reshape(-1, k * k * c)


def patch_covariance(images: np.ndarray, kernel_size: int) -> np.ndarray:
    """The uncentred second moment of the images' patches (as airbench estimates it), in
    float64."""
    dims = kernel_size * kernel_size * images.shape[-1]
    total = np.zeros((dims, dims))
    count = 0
    for start in range(0, len(images), _CHUNK):
        p = patches(np.asarray(images[start:start + _CHUNK], dtype=np.float64), kernel_size)
        total += p.T @ p
        count += len(p)
    return total / max(count, 1)


def whitening_kernel(images: np.ndarray, kernel_size: int = 2, epsilon: float = 5e-4):
    """The whitening kernel for preprocessed (N, H, W, C) images.

    Returns:
        (kernel of shape (k, k, C, 2*k*k*C) in float32, eigenvalues in decreasing order).
    """
    covariance = patch_covariance(images, kernel_size)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    scaled = eigenvectors / np.sqrt(np.clip(eigenvalues, 0, None) + epsilon)
    channels = images.shape[-1]
    kernel = np.concatenate([scaled, -scaled], axis=1).reshape(
        kernel_size, kernel_size, channels, -1)
    return kernel.astype(np.float32), eigenvalues


def initialise_whitening(model, spec, train_images: np.ndarray) -> list[dict]:
    """Sets every `whiten` layer of a built model from the first images of the training set.

    The images go through the layers before the whitening layer (the preprocessing: the zoo
    puts no weighted layer before it), so the kernel whitens what the layer will see.

    Args:
        model: the model `build_model(spec)` made.
        spec: its `NetworkSpec`.
        train_images: the training images, raw pixels; the first `images` of them are used
            (the layer's option, 5000 as airbench).

    Returns:
        One record per layer, for the run's config.json: its name, the images used, the
        epsilon and the eigenvalues.
    """
    records = []
    for layer in spec.layers_of("whiten"):
        o = layer.options
        keras_layer = model.get_layer(layer.name)
        x = np.asarray(train_images[:o["images"]])
        for before in model.layers[:model.layers.index(keras_layer)]:
            x = np.asarray(before(x.astype(np.float32)))
        kernel, eigenvalues = whitening_kernel(x, o["kernel_size"], o["epsilon"])
        keras_layer.kernel.assign(kernel)
        records.append({"layer": layer.name, "images": int(len(x)), "epsilon": o["epsilon"],
                        "eigenvalues": [round(float(v), 8) for v in eigenvalues]})
    return records
