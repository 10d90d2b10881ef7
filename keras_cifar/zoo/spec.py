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
from keras_cifar.zoo.recipe import DEFAULT_RECIPE, Recipe

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10

LAYER_KINDS = ("conv", "maxpool", "flatten", "dense", "dropout", "batchnorm", "whiten",
               "activation", "globalmaxpool", "scale")
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "gelu", "elu")
PADDINGS = ("valid", "same")
PREPROCESSES = ("unit", "symmetric", "standardize")
CONV_INITS = ("default", "dirac")
# CIFAR-10's per-channel mean and standard deviation of [0, 1] pixels, as airbench (and most
# CIFAR code) uses them for `standardize`.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
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
        "use_bias": True,
        "init": "default",
    },
    "maxpool": {"pool_size": 2, "strides": None},
    "flatten": {},
    "dense": {"units": None, "activation": "linear", "use_bias": True},
    "dropout": {"rate": None},
    "batchnorm": {"momentum": 0.99, "epsilon": 0.001, "scale": True},
    # A frozen patch-whitening convolution (2 * k * k * channels filters), initialised from the
    # training images before training; its bias trains (see the recipe's whiten_bias_epochs).
    "whiten": {"kernel_size": 2, "epsilon": 5e-4, "images": 5000},
    "activation": {"activation": None},
    "globalmaxpool": {},
    "scale": {"factor": None},
}
# Options added after runs were published: written out only where they differ from these
# defaults, so that the networks' serialised form, and with it every run's identity, is unchanged.
_QUIET_DEFAULTS: dict[str, dict[str, Any]] = {
    "conv": {"use_bias": True, "init": "default"},
    "dense": {"use_bias": True},
    "batchnorm": {"momentum": 0.99, "epsilon": 0.001, "scale": True},
}
WEIGHTED_KINDS = ("conv", "dense", "batchnorm", "whiten")
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
        trainable_params: the weights training changes (a whitening kernel, BatchNorm's moving
            statistics are not), as PyTorch counts `requires_grad` parameters.
    """

    kind: str
    name: str
    options: Mapping[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    fan_in: int | None
    params: int
    trainable_params: int = 0

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
        elif self.kind == "whiten":
            text = f"whiten{o['kernel_size']}x{o['kernel_size']}"
        elif self.kind == "activation":
            text = o["activation"]
        elif self.kind == "scale":
            text = f"x{o['factor']:.4g}"
        elif self.kind == "batchnorm" and not o["scale"]:
            text = "batchnorm(no scale)"
        else:
            text = self.kind
        if self.kind != "activation" and o.get("activation", "linear") != "linear":
            text += f"-{o['activation']}"
        if o.get("use_bias") is False:
            text += "(no bias)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Returns the layer as it would be written in zoo.json."""
        quiet = _QUIET_DEFAULTS.get(self.kind, {})
        return {"kind": self.kind, **{k: v for k, v in self.options.items()
                                      if not (k in quiet and v == quiet[k])}}


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
        train: the network's default training settings (its recipe's, with its own changes).
        init: the default weight initialisation, `torch` or `keras`.
        recipe: the id of its default training recipe (`report` for the report's networks).
        source: where the network comes from (repository, commit, file), or None.
    """

    id: str
    title: str
    layers: tuple[LayerSpec, ...]
    preprocess: str
    train: TrainSettings
    init: str = "torch"
    recipe: str = "report"
    source: Mapping[str, Any] | None = None

    @property
    def params(self) -> int:
        """Total number of weights, as `model.count_params()` gives it."""
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        """The weights training changes, as PyTorch counts `requires_grad` parameters at the
        start of training (a whitening kernel and BatchNorm's statistics excluded)."""
        return sum(layer.trainable_params for layer in self.layers)

    def layers_of(self, kind: str) -> list[LayerSpec]:
        """The layers of one kind, in order."""
        return [layer for layer in self.layers if layer.kind == kind]

    @property
    def is_convolutional(self) -> bool:
        """Whether the first weighted layer is a convolution."""
        return any(layer.kind == "conv" for layer in self.layers)

    def describe_layers(self) -> str:
        """Returns the layers on one line, e.g. `conv3x3(16)-relu > pool2 > ...`."""
        return " > ".join(layer.describe() for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """Returns the network as it would be written in zoo.json (its default recipe only
        where it is not the report's, so the report's networks serialise as they always have)."""
        out = {
            "id": self.id,
            "title": self.title,
            "preprocess": self.preprocess,
            "init": self.init,
            "layers": [layer.to_dict() for layer in self.layers],
            "train": {k: getattr(self.train, k) for k in _TRAIN_KEYS},
        }
        if self.recipe != DEFAULT_RECIPE:
            out["recipe"] = self.recipe
        return out


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
        at = f"@{self.commit[:7]}" if self.commit else ""
        return f"{self.repository}{at}:{self.notebook}"


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
        recipe: the id of its training recipe.
        recipe_settings: that recipe's `settings()` as canonical JSON (what run identities
            record under `recipe`), or None for the report's plain SGD, which they leave out.
        group: a name to select experiments by (`reproduce run --group ladder`), or None.
        title: a human title (the ladder's rung), or None.
    """

    id: str
    network: str
    train: TrainSettings
    original: OriginalResult | None = None
    report_text: ReportText = ReportText()
    recipe: str = "report"
    recipe_settings: str | None = None
    group: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Zoo:
    """A validated zoo file: its networks and experiments, by id, in file order."""

    path: Path
    networks: Mapping[str, NetworkSpec] = field(default_factory=dict)
    experiments: Mapping[str, ExperimentSpec] = field(default_factory=dict)
    recipes: Mapping[str, Recipe] = field(default_factory=lambda: {DEFAULT_RECIPE: Recipe()})

    def recipe(self, name: str) -> Recipe:
        """Returns the recipe called `name`.

        Raises:
            ZooError: no such recipe; the message lists the known ids and the nearest one.
        """
        return self._entry("recipe", name, self.recipes)

    def settings(self, network: NetworkSpec, recipe: str | None = None) -> TrainSettings:
        """SGD's settings for `network` under a recipe (`settings_under`)."""
        return settings_under(network, None if recipe is None else self.recipe(recipe))

    def experiments_in(self, group: str | None) -> list[ExperimentSpec]:
        """The experiments of a group (None: the report's own, which have none), in file order."""
        return [e for e in self.experiments.values() if e.group == group]

    @property
    def report_experiments(self) -> list[ExperimentSpec]:
        """The report's experiments (those in no group), in file order."""
        return self.experiments_in(None)

    @property
    def groups(self) -> list[str]:
        """The experiment groups, in file order of their first experiment."""
        return list(dict.fromkeys(e.group for e in self.experiments.values() if e.group))

    def network(self, name: str) -> NetworkSpec:
        """Returns the network called `name`.

        Raises:
            ZooError: no such network; the message lists the known ids and the nearest one.
        """
        return self._entry("network", name, self.networks)

    def experiment(self, name: str) -> ExperimentSpec:
        """Returns the experiment called `name`.

        Raises:
            ZooError: no such experiment; the message lists the known ids.
        """
        return self._entry("experiment", name, self.experiments)

    def _entry(self, what: str, name: str, entries: Mapping[str, Any]):
        if name in entries:
            return entries[name]
        raise ZooError(_unknown_message(what, name, list(entries), self.path))

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


def settings_under(network: NetworkSpec, recipe: Recipe | None = None) -> TrainSettings:
    """SGD's settings for `network` under `recipe`: the network's own for its default recipe
    (or None), else the recipe's `train` numbers, with those it leaves out from the network's."""
    if recipe is None or recipe.id == network.recipe:
        return network.train
    return network.train.replace(**recipe.train)


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


