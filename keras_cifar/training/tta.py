"""Test-time augmentation: average a model's logits over mirrored and shifted copies of each
test image (airbench's levels: `mirror` = the image and its mirror; `mirror_translate` = half
that, half the mean of the same over the image shifted one pixel up-left and down-right,
reflect-padded)."""

from __future__ import annotations

import numpy as np

from keras_cifar.zoo.recipe import TTA_LEVELS


def mirror(images: np.ndarray) -> np.ndarray:
    """Left-right mirror of (N, H, W, C) images."""
    return images[:, :, ::-1, :]


def shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The images moved so that the output's pixel (y, x) is the input's (y + dy, x + dx),
    reflect-padded at the borders (airbench's one-pixel crops of the padded image)."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = images.shape[1:3]
    return padded[:, pad + dy:pad + dy + h, pad + dx:pad + dx + w, :]


def tta_logits(predict, images: np.ndarray, level: str, batch_size: int = 1000) -> np.ndarray:
    """Averaged logits of `predict` (images -> logits, e.g. `model.predict_on_batch`) over
    `level`'s views, in float64, computed a batch at a time.

    Raises:
        ValueError: an unknown level.
    """
    if level not in TTA_LEVELS:
        raise ValueError(f"Unknown test-time augmentation; expected one of {list(TTA_LEVELS)}. "
                         f"Received: tta={level!r}")
    out = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size])
        run = lambda x: np.asarray(predict(np.ascontiguousarray(x)), dtype=np.float64)  # noqa: E731
        if level == "none":
            out.append(run(batch))
            continue
        mirrored = lambda x: 0.5 * run(x) + 0.5 * run(mirror(x))  # noqa: E731
        logits = mirrored(batch)
        if level == "mirror_translate":
            shifted = 0.5 * (mirrored(shift(batch, -1, -1)) + mirrored(shift(batch, 1, 1)))
            logits = 0.5 * logits + 0.5 * shifted
        out.append(logits)
    return np.concatenate(out) if out else np.zeros((0, 10))
