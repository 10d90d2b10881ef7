"""The zoo: zoo.json's networks, recipes of SGD settings and the report's experiments, read and
validated into frozen dataclasses before any TensorFlow is imported.

`spec` holds the dataclasses and the vocabulary, `parse` reads and checks a zoo file, `rules`
checks each training setting once (for the zoo, `RunConfig` and the CLI alike).
"""

from keras_cifar.errors import ZooError
from keras_cifar.zoo.parse import (BUILTIN_ZOO_PATH, ZOO_ENV_VAR, get_network, list_networks,
                                   load_zoo, parse_network, parse_zoo, zoo_path)
from keras_cifar.zoo.rules import INITS
from keras_cifar.zoo.spec import (ACTIVATIONS, ID_PATTERN, INPUT_SHAPE, LAYER_KINDS, MAX_PARAMS,
                                  NUM_CLASSES, ExperimentSpec, LayerSpec, NetworkSpec,
                                  OriginalResult, ReportText, TrainSettings, Zoo)

__all__ = ["ACTIVATIONS", "BUILTIN_ZOO_PATH", "ExperimentSpec", "ID_PATTERN", "INITS",
           "INPUT_SHAPE", "LAYER_KINDS", "LayerSpec", "MAX_PARAMS", "NUM_CLASSES", "NetworkSpec",
           "OriginalResult", "ReportText", "TrainSettings", "ZOO_ENV_VAR", "Zoo", "ZooError",
           "get_network", "list_networks", "load_zoo", "parse_network", "parse_zoo", "zoo_path"]
