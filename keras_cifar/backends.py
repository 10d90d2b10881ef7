"""Which Keras backend runs: TensorFlow (the default), JAX or PyTorch.

Keras reads `KERAS_BACKEND` once, when it is first imported. `select_backend` checks a name
and sets it before that (the CLI's `--backend`, before any command imports Keras); worker
processes inherit it. Data stays on tf.data, which Keras feeds to every backend, so
TensorFlow stays installed whatever the backend. No Keras import here.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from keras_cifar.errors import ConfigError, MissingDependency

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
# The importable package of each backend and the keras-cifar extra that installs it.
_PACKAGES = {"tensorflow": ("tensorflow", None), "jax": ("jax", "jax"), "torch": ("torch", "torch")}


def check_backend(name) -> str:
    """A backend name: one of BACKENDS.

    Raises:
        ConfigError: any other value, listing the three.
    """
    if name not in BACKENDS:
        raise ConfigError(f"Unknown Keras backend; expected one of {list(BACKENDS)}. "
                          f"Received: backend={name!r}")
    return name


def requested_backend() -> str:
    """The backend this process will run (or runs): `KERAS_BACKEND`, else TensorFlow.

    Raises:
        ConfigError: `KERAS_BACKEND` names no backend keras-cifar runs on.
    """
    value = os.environ.get("KERAS_BACKEND", "").strip() or DEFAULT_BACKEND
    try:
        return check_backend(value)
    except ConfigError as e:
        raise ConfigError(f"KERAS_BACKEND: {e}") from None


def available_backend(name: str | None = None) -> str:
    """`name` (None: `KERAS_BACKEND` or TensorFlow), checked to be a backend whose package is
    installed; nothing is set.

    Raises:
        ConfigError: an unknown name.
        MissingDependency: the backend's package is not installed (names the extra).
    """
    name = requested_backend() if name is None else check_backend(name)
    package, extra = _PACKAGES[name]
    if importlib.util.find_spec(package) is None:
        raise MissingDependency([package], extra or "default", f"The {name} backend")
    return name


def select_backend(name: str | None = None) -> str:
    """Makes `name` (None: `KERAS_BACKEND` or TensorFlow) this process's Keras backend.

    Returns:
        The backend's name.

    Raises:
        ConfigError: an unknown name, or Keras already imported with another backend.
        MissingDependency: the backend's package is not installed (names the extra).
    """
    name = available_backend(name)
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise ConfigError(
                f"Keras is already running on {keras.backend.backend()} in this process; the "
                f"backend is chosen before Keras is imported. Set KERAS_BACKEND={name} before "
                f"starting Python. Received: backend={name!r}")
    os.environ["KERAS_BACKEND"] = name
    return name


def backend_version(name: str) -> str | None:
    """The installed version of a backend's package, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_PACKAGES[name][0])
    except PackageNotFoundError:
        return None
