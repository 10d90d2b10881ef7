"""keras-cifar: the networks of a CIFAR-10 coursework report as a Keras 3 model zoo.

The zoo (`zoo.json`) declares the networks and the report's experiments. From Python:
`list_networks()` and `get_network(id)` read it; `build_model("cnn3")` returns the
`keras.Sequential`; `load_data(...)` reads CIFAR-10 from any source; `train_network("cnn3", data,
epochs=...)` trains and returns a `RunResult` (model, history, metrics, run directory);
`run_figures(run)` gives its figures as matplotlib Figures; `evaluate`, `predict` and
`export_model` use a trained model; `reproduce_experiments([...])` runs the report's experiments
and `read_results(out_dir)` reads their table. Lower level: `RunConfig` and `train_run`,
`draw_run`. TensorFlow is imported only when a call needs it, so `import keras_cifar` is light.
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

# Lazy re-exports, name -> module: importing keras_cifar must not import TensorFlow.
_LAZY = {
    "build_model": "keras_cifar.models.builder",
    "load_data": "keras_cifar.data", "CifarData": "keras_cifar.data",
    "DataError": "keras_cifar.errors", "CLASS_NAMES": "keras_cifar.data",
    "RunConfig": "keras_cifar.training.config",
    "KerasCifarError": "keras_cifar.errors",
    "train_run": "keras_cifar.training.train", "RunResult": "keras_cifar.training.train",
    "draw_run": "keras_cifar.plots.figures",
    "train_network": "keras_cifar.api", "run_figures": "keras_cifar.api",
    "evaluate": "keras_cifar.api", "predict": "keras_cifar.api",
    "export_model": "keras_cifar.api", "reproduce_experiments": "keras_cifar.api",
    "read_results": "keras_cifar.api",
}

__all__ = ["ExperimentSpec", "NetworkSpec", "Zoo", "ZooError", "get_network", "list_networks",
           "load_zoo", *_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_cifar' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
