"""One frozen run configuration: what to train, how, on which data, at what speed settings.

The CLI builds one per run, `reproduce` and `sweep` one per job, and `train_run` takes it.
It is validated once, here, when it is made (each rule lives in `keras_cifar.zoo.rules`), and
`identity` is its serialisation as the run's identity: config.json's `identity` and the hash
in the run directory's name. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keras_cifar.zoo import rules
from keras_cifar.data import DataSpec
from keras_cifar.errors import ConfigError

from keras_cifar.zoo import TrainSettings
from keras_cifar.zoo.recipe import Recipe

if TYPE_CHECKING:
    from keras_cifar.data import CifarData
    from keras_cifar.zoo import NetworkSpec

STRATEGIES = ("default", "mirrored")
XLA_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class RunConfig:
    """A training run: the network, SGD settings, seed, initialisation, data and speed settings.

    Attributes:
        network: the zoo network.
        train: SGD's settings (`TrainSettings`: lr, momentum, epochs, batch size), also read
            as `config.lr`, `config.momentum`, `config.epochs`, `config.batch_size`.
        seed: seeds weights, data order and everything Keras draws.
        init: `torch` or `keras` weight initialisation.
        limit: train and test on a class-stratified subset of this many images per split.
        mixed_precision: 16-bit compute (see `train.mixed_precision_policy`); changes results.
        data: where the data comes from (each worker loads it itself).
        xla: `auto`, `on` or `off` (see `compile.use_xla`); same maths.
        strategy: `default` or `mirrored` (`tf.distribute.MirroredStrategy` over `devices`).
        devices: the devices of a mirrored strategy; empty: all GPUs (or the CPU).
        deterministic: TensorFlow's op determinism, so a rerun gives the same history.
        recipe: the training recipe beyond SGD's four numbers (`keras_cifar.zoo.recipe`);
            the report's plain SGD by default.

    Raises:
        ConfigError: any setting is invalid (when the configuration is made).
    """

    network: NetworkSpec
    train: TrainSettings
    seed: int = 0
    init: str = "torch"
    limit: int | None = None
    mixed_precision: bool = False
    data: DataSpec = field(default_factory=DataSpec)
    xla: str = "auto"
    strategy: str = "default"
    devices: tuple[str, ...] = ()
    deterministic: bool = True
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self):
        if not isinstance(self.recipe, Recipe):
            raise ConfigError("`recipe` must be a Recipe (e.g. `zoo.recipe(\"airbench93\")`). "
                              f"Received: recipe={self.recipe!r}")
        if not isinstance(self.train, TrainSettings):
            raise ConfigError("`train` must be a TrainSettings (or use RunConfig.of(network, "
                              f"lr=..., ...)). Received: train={self.train!r}")
        checked = {
            "seed": rules.check_seed(self.seed), "init": rules.check_init(self.init),
            "limit": rules.check_limit(self.limit), "devices": tuple(self.devices or ()),
        }
        if self.xla not in XLA_CHOICES:
            raise ConfigError(f"xla must be one of {list(XLA_CHOICES)}. Received: xla={self.xla!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"Unknown strategy; expected one of {list(STRATEGIES)}. "
                              f"Received: strategy={self.strategy!r}")
        if checked["devices"] and self.strategy != "mirrored":
            raise ConfigError("`devices` needs `strategy=\"mirrored\"`. Received: "
                              f"devices={list(checked['devices'])!r}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    lr = property(lambda self: self.train.lr, doc="SGD's learning rate.")
    momentum = property(lambda self: self.train.momentum, doc="SGD's momentum.")
    epochs = property(lambda self: self.train.epochs, doc="Epochs to train.")
    batch_size = property(lambda self: self.train.batch_size, doc="Images per batch.")

    @classmethod
    def of(cls, network: NetworkSpec, *, lr=None, momentum=None, epochs=None, batch_size=None,
           init=None, **settings) -> RunConfig:
        """A configuration for `network`, its zoo defaults for the settings given as None.

        A `recipe` given here brings the SGD numbers it declares (`Recipe.train`), unless it
        is the network's default recipe, whose numbers the network's own `train` already are.
        """
        from keras_cifar.zoo.spec import settings_under

        base = settings_under(network, settings.get("recipe"))
        train = base.replace(lr=lr, momentum=momentum, epochs=epochs, batch_size=batch_size)
        return cls(network=network, train=train, init=network.init if init is None else init,
                   **settings)

    def replace(self, **changes) -> RunConfig:
        """A copy with some settings changed (validated again); `lr`, `momentum`, `epochs` and
        `batch_size` change `train`."""
        train = {k: changes.pop(k) for k in TrainSettings.FIELDS if k in changes}
        if train:
            changes["train"] = dataclasses.replace(changes.get("train", self.train), **train)
        return dataclasses.replace(self, **changes)

    def identity(self, data: CifarData, precision: str | None = None,
                 backend: str | None = None) -> dict:
        """The settings that define the run, serialised: two runs with equal identities are
        the same run. `data` is the data as loaded (its fingerprint, after any limit);
        `precision` the mixed-precision policy, left out when None, so float32 runs keep the
        identities (and run names) they had before mixed precision existed. Speed settings
        are not part of it: they change how fast, not what is computed. `backend` (the Keras
        backend) is left out for TensorFlow, for the same reason as `precision`.
        """
        identity = {
            "network": self.network.to_dict(),
            "lr": float(self.lr),
            "momentum": float(self.momentum),
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "seed": int(self.seed),
            "init": self.init,
            "limit": self.limit,
            "data": {"fingerprint": data.fingerprint, "is_cifar10": data.is_cifar10,
                     "train": int(len(data.train_labels)), "test": int(len(data.test_labels))},
        }
        if precision is not None:
            identity["precision"] = precision
        if backend not in (None, "tensorflow"):
            identity["backend"] = backend
        if not self.recipe.is_plain:  # so the report's runs keep their identities and names
            identity["recipe"] = self.recipe.settings()
        return identity
