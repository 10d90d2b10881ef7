"""The zoo's vocabulary as frozen dataclasses: layers, networks, SGD settings, experiments, the
zoo itself; with the limits and choices the parser enforces. Pure Python.
"""

from __future__ import annotations

import difflib
import re
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from keras_cifar.errors import ZooError
from keras_cifar.zoo import rules

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10

LAYER_KINDS = ("conv", "maxpool", "flatten", "dense", "dropout", "batchnorm")
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "gelu", "elu")
PADDINGS = ("valid", "same")
PREPROCESSES = ("unit", "symmetric")
# Ids name run directories and files: lower-case ASCII letters, digits, '.', '_', '-', starting
# with a letter or digit, so an id can never climb out of a folder ('..', '/') or trip a tool.
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Larger networks are refused by the zoo: 100 million float32 weights are 400 MB, with SGD's
# momentum and a checkpoint several GB, far beyond what a CIFAR-10 zoo needs (CNN 3: 2.7 M).
MAX_PARAMS = 100_000_000

# Keys each layer kind accepts, with their defaults (None: required).
_LAYER_KEYS: dict[str, dict[str, Any]] = {
    "conv": {
        "filters": None,
        "kernel_size": 3,
        "strides": 1,
        "padding": "valid",
        "activation": "linear",
    },
    "maxpool": {"pool_size": 2, "strides": None},
    "flatten": {},
    "dense": {"units": None, "activation": "linear"},
    "dropout": {"rate": None},
    "batchnorm": {},
}
_TRAIN_KEYS = ("lr", "momentum", "epochs", "batch_size")


@dataclass(frozen=True)
class LayerSpec:
    """One declared layer, with every option resolved to its value.

    Attributes:
        kind: one of `LAYER_KINDS`.
        name: the Keras layer name (`conv1`, `pool1`, `dense2`...), numbered per kind.
        options: the kind's options (see `_LAYER_KEYS`), defaults filled in.
        input_shape: the shape (without batch) this layer receives.
        output_shape: the shape (without batch) it produces.
        fan_in: inputs per output unit (conv: k*k*channels, dense: units in), else None.
        params: number of weights (trainable and not) it holds.
    """

    kind: str
    name: str
    options: Mapping[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    fan_in: int | None
    params: int

    def describe(self) -> str:
        """Returns a short human form, e.g. `conv3x3(64)` or `dense(512)`."""
        o = self.options
        if self.kind == "conv":
            text = f"conv{o['kernel_size']}x{o['kernel_size']}({o['filters']})"
            if o["strides"] != 1:
                text += f"/s{o['strides']}"
            if o["padding"] != "valid":
                text += f"[{o['padding']}]"
        elif self.kind == "maxpool":
            text = f"pool{o['pool_size']}"
        elif self.kind == "dense":
            text = f"dense({o['units']})"
        elif self.kind == "dropout":
            text = f"dropout({o['rate']})"
        else:
            text = self.kind
        if o.get("activation", "linear") != "linear":
            text += f"-{o['activation']}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Returns the layer as it would be written in zoo.json."""
        return {"kind": self.kind, **dict(self.options)}


@dataclass(frozen=True)
class TrainSettings:
    """SGD settings: learning rate, momentum, epochs, batch size; one declaration for the zoo's
    networks and experiments and for `RunConfig`.

    Raises:
        ConfigError: a value breaks its rule (`keras_cifar.zoo.rules`).
    """

    lr: float
    momentum: float
    epochs: int
    batch_size: int = 64

    FIELDS = ("lr", "momentum", "epochs", "batch_size")

    def __post_init__(self):
        for name, value in (("lr", rules.check_lr(self.lr)),
                            ("momentum", rules.check_momentum(self.momentum)),
                            ("epochs", rules.check_epochs(self.epochs)),
                            ("batch_size", rules.check_batch_size(self.batch_size))):
            object.__setattr__(self, name, value)

    def replace(self, **changes) -> "TrainSettings":
        """A copy with the settings given (not None) changed, validated again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainSettings":
        """The settings as a run's identity or zoo.json writes them (extra keys ignored)."""
        return cls(**{k: values[k] for k in cls.FIELDS if k in values})


@dataclass(frozen=True)
class NetworkSpec:
    """A validated network of the zoo.

    Attributes:
        id: the name users type (`cnn3`).
        title: a human title.
        layers: the resolved layers, in order.
        preprocess: `unit` ([0, 1]) or `symmetric` ([-1, 1]).
        train: the network's default training settings.
        init: the default weight initialisation, `torch` or `keras`.
    """

    id: str
    title: str
    layers: tuple[LayerSpec, ...]
    preprocess: str
    train: TrainSettings
    init: str = "torch"

    @property
    def params(self) -> int:
        """Total number of weights, as `model.count_params()` gives it."""
        return sum(layer.params for layer in self.layers)

    @property
    def is_convolutional(self) -> bool:
        """Whether the first weighted layer is a convolution."""
        return any(layer.kind == "conv" for layer in self.layers)

    def describe_layers(self) -> str:
        """Returns the layers on one line, e.g. `conv3x3(16)-relu > pool2 > ...`."""
        return " > ".join(layer.describe() for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """Returns the network as it would be written in zoo.json."""
        return {
            "id": self.id,
            "title": self.title,
            "preprocess": self.preprocess,
            "init": self.init,
            "layers": [layer.to_dict() for layer in self.layers],
            "train": {k: getattr(self.train, k) for k in _TRAIN_KEYS},
        }


@dataclass(frozen=True)
class OriginalResult:
    """An experiment's final numbers as its original notebook printed them.

    Attributes:
        test_accuracy: the last epoch's test accuracy, a fraction.
        test_loss: the last epoch's test loss on the notebook's scale (the sum of the test
            batches' mean cross-entropy divided by the number of test images; see
            `keras_cifar.training.notebook_loss`).
        repository, commit, notebook: where the number was read.
    """

    test_accuracy: float | None
    test_loss: float | None
    repository: str | None = None
    commit: str | None = None
    notebook: str | None = None

    @property
    def source(self) -> str:
        """`repository@commit:notebook`, shortened for tables."""
        return f"{self.repository}@{(self.commit or '')[:7]}:{self.notebook}"


@dataclass(frozen=True)
class ReportText:
    """What the report's text says of an experiment: its words, the numbers it quotes, and any
    setting it states differently from what the notebooks ran (None where it agrees)."""

    test_accuracy: float | None = None
    test_loss: float | None = None
    words: str | None = None
    lr: float | None = None
    momentum: float | None = None
    epochs: int | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment of the report, with the settings its original notebook ran.

    Attributes:
        id: the experiment's name (`cnn3`, `lenet5-lr0.01`).
        network: the id of the network it trains.
        train: the SGD settings as run.
        original: the notebook's final numbers, or None for experiments of a user's own zoo.
        report_text: what the report's text says of it.
    """

    id: str
    network: str
    train: TrainSettings
    original: OriginalResult | None = None
    report_text: ReportText = ReportText()


@dataclass(frozen=True)
class Zoo:
    """A validated zoo file: its networks and experiments, by id, in file order."""

    path: Path
    networks: Mapping[str, NetworkSpec] = field(default_factory=dict)
    experiments: Mapping[str, ExperimentSpec] = field(default_factory=dict)

    def network(self, name: str) -> NetworkSpec:
        """Returns the network called `name`.

        Raises:
            ZooError: no such network; the message lists the known ids and the nearest one.
        """
        if name in self.networks:
            return self.networks[name]
        raise ZooError(_unknown_message("network", name, list(self.networks), self.path))

    def experiment(self, name: str) -> ExperimentSpec:
        """Returns the experiment called `name`.

        Raises:
            ZooError: no such experiment; the message lists the known ids.
        """
        if name in self.experiments:
            return self.experiments[name]
        raise ZooError(_unknown_message("experiment", name, list(self.experiments), self.path))

    def experiments_of(self, network_id: str) -> list[ExperimentSpec]:
        """Returns the experiments that train `network_id`, in file order."""
        return [e for e in self.experiments.values() if e.network == network_id]

    def original_best_accuracy(self, network_id: str) -> float | None:
        """Returns the best final test accuracy the original notebooks reached with the network
        over its experiments, or None when none is recorded."""
        known = [
            e.original.test_accuracy
            for e in self.experiments_of(network_id)
            if e.original is not None and e.original.test_accuracy is not None
        ]
        return max(known) if known else None


def nearest(name: str, known: list[str]) -> str | None:
    """Returns the known name closest to `name` (ignoring case), or None."""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1)
    return lowered[close[0]] if close else None


def _unknown_message(what: str, name: str, known: list[str], path: Path) -> str:
    close = nearest(name, known)
    hint = f" Did you mean '{close}'?" if close else ""
    return (
        f"Unknown {what} '{name}' in the zoo {path}.{hint} "
        f"Known {what}s: {', '.join(known)}. Received: {what}={name!r}"
    )


