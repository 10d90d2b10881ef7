"""The `keras-cifar` command line: thin click commands over the library, a module per command
group (`zoo`, `data`, `train`, the commands on one model, `reproduce`, `sweep`); `core` turns
library errors into exit codes and messages, `options` holds the options they share."""

from __future__ import annotations

from pathlib import Path

import click

from keras_cifar import __version__
from keras_cifar._env import VERBOSE_ENV_VAR
from keras_cifar.cli import data, models, reproduce, sweep, train, zoo
from keras_cifar.cli.core import CONTEXT_SETTINGS, EXIT_CODES, Group, exit_code, for_cli
from keras_cifar.zoo import ZOO_ENV_VAR

__all__ = ["cli", "main", "exit_code", "for_cli", "EXIT_CODES"]


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@click.option("--zoo", "zoo_path", type=click.Path(path_type=Path), envvar=ZOO_ENV_VAR,
              help=f"A zoo.json to use instead of the built-in one [env: {ZOO_ENV_VAR}].")
@click.option("--verbose", is_flag=True, envvar=VERBOSE_ENV_VAR,
              help=f"Show TensorFlow's own start-up and C++ log lines [env: {VERBOSE_ENV_VAR}].")
@click.version_option(__version__, "-V", "--version", prog_name="keras-cifar")
@click.pass_context
def cli(ctx, zoo_path, verbose):
    """keras-cifar: the CIFAR-10 networks of a coursework report, in Keras 3.

    \b
    Examples:
      keras-cifar zoo list
      keras-cifar train cnn3 --data-dir ~/data/cifar10
      keras-cifar train cnn3 --lr 0.1 --momentum 0.9 --epochs 20 --data-dir ~/data/cifar10
      keras-cifar inspect cnn3
    """
    ctx.meta["keras_cifar.verbose"] = verbose


for command in (zoo.zoo, models.inspect, data.data, train.train, models.evaluate, models.predict,
                models.plot, models.kernels, models.export, reproduce.reproduce, sweep.sweep):
    cli.add_command(command)


def main():
    """Entry point of the `keras-cifar` console script."""
    cli(prog_name="keras-cifar")
