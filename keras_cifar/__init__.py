"""keras-cifar: the networks of a CIFAR-10 coursework report as a Keras 3 model zoo.

The zoo (`zoo.json`) declares the networks and the report's experiments; `build_model` turns a
network into a `keras.Sequential`; `load_data` reads CIFAR-10 from any source; `train_run` trains
a `RunConfig` and writes a run directory; `draw_run` redraws its figures. TensorFlow is imported only by the
modules that need it, so `keras_cifar.zoo` stays light.
"""

__version__ = "0.1.0"

from keras_cifar.zoo import (
    ExperimentSpec,
    NetworkSpec,
    Zoo,
    ZooError,
    get_network,
    list_networks,
    load_zoo,
)

__all__ = [
    "ExperimentSpec", "NetworkSpec", "Zoo", "ZooError", "get_network", "list_networks",
    "load_zoo", "build_model", "load_data", "CifarData", "DataError", "CLASS_NAMES",
    "train_run", "draw_run", "RunConfig", "KerasCifarError", "__version__",
]


def __getattr__(name):
    # Lazy re-exports: importing keras_cifar must not import TensorFlow.
    if name == "build_model":
        from keras_cifar.builder import build_model

        return build_model
    if name in ("load_data", "CifarData", "DataError", "CLASS_NAMES"):
        from keras_cifar import data

        return getattr(data, name)
    if name == "RunConfig":
        from keras_cifar.config import RunConfig

        return RunConfig
    if name == "KerasCifarError":
        from keras_cifar.errors import KerasCifarError

        return KerasCifarError
    if name == "train_run":
        from keras_cifar.train import train_run

        return train_run
    if name == "draw_run":
        from keras_cifar.plots import draw_run

        return draw_run
    raise AttributeError(f"module 'keras_cifar' has no attribute {name!r}")
