"""zoo.rules: each training setting's rule, shared by the zoo, RunConfig and the CLI."""

import numpy as np
import pytest

from keras_cifar.cli import cli
from keras_cifar.errors import ConfigError
from keras_cifar.zoo import rules


@pytest.mark.parametrize("lr", [1e-320, 1e-40, 2.0 ** -127, 1e39])
def test_a_learning_rate_float32_cannot_hold_is_refused(lr):
    with pytest.raises(ConfigError, match="float32") as info:
        rules.check_lr(lr)
    assert f"Received: lr={lr!r}" in str(info.value)


@pytest.mark.parametrize("lr", [rules.MIN_LR, 1e-30, 0.01, 10.0])
def test_learning_rates_float32_holds_pass_and_stay_nonzero_in_float32(lr):
    assert rules.check_lr(lr) == lr and np.float32(lr) > 0


def test_the_cli_refuses_an_underflowing_lr_before_any_work(runner):
    result = runner.invoke(cli, ["train", "mlp2", "--data", "synthetic", "--lr", "1e-320"])
    assert result.exit_code == 2 and "would round to 0" in result.output
