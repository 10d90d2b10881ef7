"""training.config: RunConfig holds the zoo's TrainSettings, validated once, and serialises its
identity."""

import dataclasses

import pytest

from keras_cifar.errors import ConfigError
from keras_cifar.training.config import RunConfig
from keras_cifar.zoo import TrainSettings, get_network


def test_sgd_settings_are_the_zoos_train_settings_not_fields_of_their_own():
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert "train" in fields and not fields & set(TrainSettings.FIELDS)
    network = get_network("cnn3")
    config = RunConfig.of(network)
    assert config.train == network.train and isinstance(config.train, TrainSettings)
    assert (config.lr, config.momentum, config.epochs, config.batch_size) == (0.01, 0.9, 20, 64)


def test_overrides_and_replace_change_only_the_settings_given():
    config = RunConfig.of(get_network("mlp2"), lr=0.1, epochs=2)
    assert config.train == TrainSettings(lr=0.1, momentum=0.9, epochs=2, batch_size=64)
    changed = config.replace(momentum=0.5, seed=3)
    assert (changed.lr, changed.momentum, changed.epochs, changed.seed) == (0.1, 0.5, 2, 3)
    assert config.momentum == 0.9  # frozen: the original is untouched


@pytest.mark.parametrize("settings, message", [
    ({"lr": 0}, "learning rate must be a number > 0"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch size must be an integer"),
    ({"seed": -1}, "seed must be an integer"),
])
def test_bad_settings_are_refused_when_the_config_is_made(settings, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.of(get_network("mlp2"), **settings)


def test_a_train_that_is_not_train_settings_is_refused():
    with pytest.raises(ConfigError, match="`train` must be a TrainSettings"):
        RunConfig(get_network("mlp2"), train={"lr": 0.1})
