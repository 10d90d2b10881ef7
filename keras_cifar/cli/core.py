"""How a `keras-cifar` command runs: keras-cifar's errors as exit codes and clean messages
(bad input exits 2, failures 1, no traceback), and TensorFlow started only after parsing."""

from __future__ import annotations

import contextlib
import re
import sys

import click

from keras_cifar import errors
from keras_cifar._env import quiet_tensorflow

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Exit codes by error class, most specific first: 2 for bad input (a usage error, with the
# usage line), 1 for failures, 128 + the signal for a run stopped by one (130 Ctrl-C, 143
# SIGTERM). Only keras-cifar's own errors are caught; anything else is a bug, with its traceback.
EXIT_CODES = (
    (errors.RunInUse, 1),
    (errors.DiskError, 1),
    (errors.ConfigError, 2),
    (errors.ZooError, 2),
    (errors.RunError, 2),
    (errors.DataError, 1),
    (errors.MissingDependency, 2),
    (errors.ModelFileError, 1),
    (errors.ImageError, 1),
    (errors.TrainingError, 1),
    (errors.TrainingInterrupted, 130),
)


# Library errors advise Python arguments, in backticks (`resume=True`), as a Python caller has
# no flags; the CLI says the same with its flags.
ARGUMENT_FLAGS = {
    "`resume=True`": "--resume", "`force=True`": "--force",
    "`data_dir=PATH`": "--data-dir PATH", "`tfds_dir=PATH`": "--tfds-dir PATH",
    '`source="synthetic"`': "--data synthetic", '`source="tfds"`': "--data tfds",
    '`source="local"`': "--data local", "`out_dir`": "--out", "`name`": "--name",
    "`batch_size`": "--batch-size", "`lr`": "--lr", "`limit`": "--limit",
    "`devices`": "--devices", '`strategy="mirrored"`': "--strategy mirrored",
    '`executor="ray"`': "--executor ray", "`network=NETWORK`": "--network NETWORK",
    "`all_=True`": "--all", "`group=GROUP`": "--group GROUP", "`zoo_path=PATH`": "--zoo PATH", "`workers=2`": "--workers 2",
    "the same call": "the same command",
}
_ARGUMENT_PATTERNS = ((re.compile(r"`limit=(\d+)`"), r"--limit \1"),
                      (re.compile(r'`format="([a-z_]+)"`'), r"--format \1"),
                      (re.compile(r'`backend="([a-z]+)"`'), r"--backend \1"))


def for_cli(message: str) -> str:
    """A library message with its Python arguments (`ARGUMENT_FLAGS`) spelled as flags."""
    for argument, flag in ARGUMENT_FLAGS.items():
        message = message.replace(argument, flag)
    for pattern, flag in _ARGUMENT_PATTERNS:
        message = pattern.sub(flag, message)
    return message


def exit_code(error: errors.KerasCifarError) -> int:
    """The exit code of a keras-cifar error (see EXIT_CODES)."""
    if isinstance(error, errors.RunsStopped):
        return 128 + error.signum
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 1)


class Command(click.Command):
    """A command that starts TensorFlow (quietly, `_env.quiet_tensorflow`) only once click has
    parsed and checked its arguments, so `--help` and every usage error answer without it."""

    needs_tensorflow = True

    def invoke(self, ctx):
        if "keras_cifar.backend" in ctx.meta:  # `--backend`: Keras' backend, before Keras
            from keras_cifar.backends import select_backend

            with as_cli_errors(ctx):
                select_backend(ctx.meta["keras_cifar.backend"])
        if self.needs_tensorflow:
            quiet_tensorflow(ctx.find_root().meta.get("keras_cifar.verbose", False))
        with as_cli_errors(ctx):
            return super().invoke(ctx)


class TensorFlowFreeCommand(Command):
    """A command that never needs TensorFlow (or imports it itself, quietly)."""

    needs_tensorflow = False


class Group(click.Group):
    """A click group that turns keras-cifar's errors into clean CLI errors (EXIT_CODES); its
    commands are `Command`s and its subgroups `Group`s."""

    command_class = Command
    group_class = type

    def invoke(self, ctx):
        with as_cli_errors(ctx):
            return super().invoke(ctx)


@contextlib.contextmanager
def as_cli_errors(ctx: click.Context):
    """keras-cifar's errors as CLI errors (EXIT_CODES): a usage error shows the usage line of
    `ctx`, the command that got the bad input."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("\nInterrupted. A run continues with the same command plus --resume.",
                   err=True)
        sys.exit(130)
    except errors.KerasCifarError as e:
        code, message = exit_code(e), for_cli(str(e))
        if code == 2:
            raise click.UsageError(message, ctx) from None
        if code == 1:
            raise click.ClickException(message) from None
        click.echo(f"\n{message}", err=True)
        sys.exit(code)


def rule(check):
    """A click option callback that applies a setting's rule (`keras_cifar.zoo.rules`), so the
    option and the library share one definition; a broken rule names the option."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return check(value)
        except errors.ConfigError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None

    return callback
