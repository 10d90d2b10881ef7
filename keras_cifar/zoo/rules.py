"""The validation rule of each training setting, written once.

The zoo loader, the run configuration and the CLI's options all check settings through these
functions; each returns the value (as the type it must have) or raises ConfigError, Keras style,
ending with what was received. No TensorFlow here.
"""

from __future__ import annotations

import math

from keras_cifar.errors import ConfigError

INITS = ("torch", "keras")
MAX_SEED = 2**32 - 1  # keras.utils.set_random_seed's range


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


# The optimiser holds the learning rate in float32: the smallest normal float32 (2**-126).
# A smaller lr rounds to a subnormal or to 0, and training would silently not learn.
MIN_LR = 2.0 ** -126


def check_lr(lr) -> float:
    """A learning rate: a finite number > 0 that float32 holds as a normal number."""
    if not _is_number(lr) or lr <= 0:
        raise ConfigError(f"The learning rate must be a number > 0. Received: lr={lr!r}")
    if lr < MIN_LR or lr > 3.4e38:
        raise ConfigError(f"The learning rate must be between {MIN_LR:.3g} and 3.4e38, which "
                          f"float32 (the optimiser's dtype) holds; {lr!r} would round to "
                          f"{'0' if lr < MIN_LR else 'infinity'}. Received: lr={lr!r}")
    return float(lr)


def check_momentum(momentum) -> float:
    """SGD's momentum: a number in [0, 1)."""
    if not _is_number(momentum) or not 0 <= momentum < 1:
        raise ConfigError(f"The momentum must be in [0, 1). Received: momentum={momentum!r}")
    return float(momentum)


def check_epochs(epochs) -> int:
    """A number of epochs: an integer >= 1."""
    if not _is_int(epochs) or epochs < 1:
        raise ConfigError(f"The number of epochs must be an integer >= 1. Received: epochs={epochs!r}")
    return epochs


def check_batch_size(batch_size) -> int:
    """A batch size: an integer >= 1."""
    if not _is_int(batch_size) or batch_size < 1:
        raise ConfigError(f"The batch size must be an integer >= 1. Received: "
                          f"batch_size={batch_size!r}")
    return batch_size


def check_seed(seed) -> int:
    """A seed: an integer in [0, 2**32 - 1]."""
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"The seed must be an integer in [0, 2**32 - 1]. Received: seed={seed!r}")
    return seed


def check_init(init) -> str:
    """A weight initialisation: one of INITS."""
    if init not in INITS:
        raise ConfigError(f"The initialisation must be one of {list(INITS)}. Received: init={init!r}")
    return init


def check_limit(limit) -> int | None:
    """A per-split image limit: None (all) or an integer >= 1."""
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise ConfigError(f"`limit` must be an integer >= 1. Received: limit={limit!r}")
    return limit
