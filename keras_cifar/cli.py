"""The `keras-cifar` command line: thin click commands over the library.

Library errors become click errors here: bad input exits 2 with a message, failures exit 1,
and no traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
from pathlib import Path

import click

from keras_cifar import __version__
from keras_cifar import _fs, errors
from keras_cifar.zoo import rules
from keras_cifar._env import VERBOSE_ENV_VAR, quiet_tensorflow
from keras_cifar.zoo import ZOO_ENV_VAR, Zoo, ZooError, load_zoo

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# ----------------------------------------------------------------------------------------------
# Errors and shared options


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


class _Command(click.Command):
    """A command that starts TensorFlow (quietly, `_env.quiet_tensorflow`) only once click has
    parsed and checked its arguments, so `--help` and every usage error answer without it."""

    needs_tensorflow = True

    def invoke(self, ctx):
        if "keras_cifar.backend" in ctx.meta:  # `--backend`: Keras' backend, before Keras
            from keras_cifar.backends import select_backend

            with _as_cli_errors(ctx):
                select_backend(ctx.meta["keras_cifar.backend"])
        if self.needs_tensorflow:
            quiet_tensorflow(ctx.find_root().meta.get("keras_cifar.verbose", False))
        with _as_cli_errors(ctx):
            return super().invoke(ctx)


class _TensorFlowFreeCommand(_Command):
    """A command that never needs TensorFlow (or imports it itself, quietly)."""

    needs_tensorflow = False


class _Group(click.Group):
    """A click group that turns keras-cifar's errors into clean CLI errors (EXIT_CODES); its
    commands are `_Command`s and its subgroups `_Group`s."""

    command_class = _Command
    group_class = type

    def invoke(self, ctx):
        with _as_cli_errors(ctx):
            return super().invoke(ctx)


@contextlib.contextmanager
def _as_cli_errors(ctx: click.Context):
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


def _rule(check):
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


def _zoo(ctx: click.Context | None) -> Zoo:
    root = ctx.find_root() if ctx else None
    path = root.params.get("zoo_path") if root else None
    cache = root.meta.setdefault("keras_cifar.zoo", {}) if root else {}
    if path not in cache:
        cache[path] = load_zoo(path)
    return cache[path]


class ZooEntryType(click.ParamType):
    """A network or recipe id of the zoo in use; completes ids and suggests the nearest on a
    typo."""

    def __init__(self, what: str):
        self.name = what
        self._lookup = {"network": Zoo.network, "recipe": Zoo.recipe}[what]
        self._entries = {"network": lambda z: z.networks, "recipe": lambda z: z.recipes}[what]

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._lookup(_zoo(ctx), value)
        except ZooError as e:
            self.fail(str(e), param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        try:
            entries = self._entries(_zoo(ctx))
        except ZooError:
            return []
        return [CompletionItem(i, help=e.title) for i, e in entries.items()
                if i.startswith(incomplete)]


NETWORK = ZooEntryType("network")
RECIPE = ZooEntryType("recipe")


def _backend(ctx, param, value):
    """`--backend` (or KERAS_BACKEND): checked while parsing, so that a bad or missing backend
    is a usage error; the command makes it Keras' backend before its body runs
    (`_Command.invoke`)."""
    import os

    from keras_cifar.backends import available_backend

    if value is None and "KERAS_BACKEND" not in os.environ:
        return None
    try:
        name = available_backend(value)
    except (errors.ConfigError, errors.MissingDependency) as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None
    ctx.meta["keras_cifar.backend"] = name
    return name


def backend_option(command):
    """`--backend tensorflow|jax|torch`, for the commands that train."""
    from keras_cifar.backends import BACKENDS

    return click.option(
        "--backend", type=click.Choice(BACKENDS), default=None, callback=_backend,
        is_eager=True, expose_value=False,
        help="Keras backend (default: KERAS_BACKEND, else tensorflow); recorded in each run, and "
        "part of its identity.")(command)


def _recipe_changes(ctx, param, values):
    """`--set FIELD=VALUE` pairs as a dict, VALUE read as JSON where it parses (numbers,
    true/false, null) and as a string otherwise."""
    changes = {}
    for item in values or ():
        field, sep, text = item.partition("=")
        if not sep or not field.strip():
            raise click.BadParameter(f"expected FIELD=VALUE, e.g. label_smoothing=0.1 or "
                                     f"augment.translate=4. Received: {item!r}", ctx=ctx,
                                     param=param)
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        changes[field.strip()] = value
    return changes


def data_options(command):
    """The options that choose the data source, shared by every command that reads data; the
    command receives them as one `data` argument, a `DataSpec`."""
    options = [
        click.option("--data", "data_source", type=click.Choice(["tfds", "local", "synthetic"]),
                     default=None, help="Data source. Default: local when --data-dir is given, "
                     "else tfds (downloads CIFAR-10). synthetic: made-up learnable images for "
                     "checking the code path, never CIFAR-10."),
        click.option("--data-dir", type=click.Path(path_type=Path), envvar="KERAS_CIFAR_DATA_DIR",
                     help="A local CIFAR-10: an image-folder tree, cifar-10-batches-py/, "
                     "cifar-10-batches-bin/, or a .tar.gz of one [env: KERAS_CIFAR_DATA_DIR]."),
        click.option("--tfds-dir", type=click.Path(path_type=Path), envvar="TFDS_DATA_DIR",
                     help="tensorflow-datasets' data directory [env: TFDS_DATA_DIR]."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the decoded-data cache."),
    ]

    @functools.wraps(command)
    def with_data_spec(*args, data_source, data_dir, tfds_dir, no_cache, **kwargs):
        from keras_cifar.data import DataSpec

        spec = DataSpec.from_options(data_source, data_dir, tfds_dir, use_cache=not no_cache)
        return command(*args, data=spec, **kwargs)

    for option in reversed(options):
        with_data_spec = option(with_data_spec)
    return with_data_spec


def _load(data):
    """Loads a DataSpec, saying on stderr what is loading and, while an image folder decodes
    (the first time only: then the decode cache answers), how far it has got."""
    click.echo(f"Loading CIFAR-10 data: {data.describe()} ...", err=True)
    terminal = sys.stderr.isatty()

    def progress(split, done, total):
        if terminal or done == total:
            end = "\n" if done == total else "\r"
            click.echo(f"  decoding {split} images: {done:,} / {total:,}", err=True, nl=False)
            click.echo(end, err=True, nl=False)

    return data.load(progress=progress)


def executor_options(command):
    """Where many runs happen: this process, local processes, or a Ray cluster."""
    options = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, help="local: this machine; ray: one Ray task per run."),
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="With --executor local: runs in N processes at once, each with "
                     "cores/N TensorFlow threads (on 2 cores, --workers 2 finishes a sweep "
                     "1.1-1.5x sooner)."),
        click.option("--address", default=None,
                     help="Ray cluster address (e.g. ray://head:10001, auto); default: start a "
                     "local Ray. --out must be storage every node sees."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# ----------------------------------------------------------------------------------------------
# The group


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
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


# ----------------------------------------------------------------------------------------------
# zoo


@cli.group(cls=_Group)
def zoo():
    """List and show the networks of the zoo.

    \b
    Example:
      keras-cifar zoo list
    """


def _percent(value):
    return "-" if value is None else f"{value:.1%}"


@zoo.command("list", cls=_TensorFlowFreeCommand)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per network.")
@click.pass_context
def zoo_list(ctx, as_json):
    """List every network: layers, parameters, its settings as run, the original's best accuracy.

    \b
    Example:
      keras-cifar zoo list --json
    """
    z = _zoo(ctx)
    rows = []
    for n in z.networks.values():
        rows.append({
            "id": n.id, "title": n.title, "layers": n.describe_layers(), "params": n.params,
            "lr": n.train.lr, "momentum": n.train.momentum, "epochs": n.train.epochs,
            "batch_size": n.train.batch_size,
            "preprocess": n.preprocess, "recipe": n.recipe,
            "original_best_accuracy": z.original_best_accuracy(n.id),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("id", "params", "lr", "momentum", "epochs", "original best", "title / layers")
    table = [header] + [
        (r["id"], f"{r['params']:,}", f"{r['lr']:g}", f"{r['momentum']:g}", str(r["epochs"]),
         _percent(r["original_best_accuracy"]), r["title"]) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for index, row in enumerate(table):
        cells = [cell.ljust(w) if i in (0, 6) else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths + [0]))]
        click.echo("  ".join(cells).rstrip())
        if index:
            click.echo(" " * (sum(widths) + 2 * len(widths)) + rows[index - 1]["layers"])
    click.echo(f"\n{len(rows)} networks from {z.path}. Settings: the headline experiment's, as "
               "the original notebooks ran it. Original best: the best final test accuracy the "
               "notebooks reached with the network.")


@zoo.command("show", cls=_TensorFlowFreeCommand)
@click.argument("network", type=NETWORK)
@click.pass_context
def zoo_show(ctx, network):
    """Show a network: layers, training defaults, the report's experiments as run, model.summary().

    \b
    Example:
      keras-cifar zoo show lenet5
    """
    z = _zoo(ctx)
    click.echo(f"{network.id}: {network.title}")
    click.echo(f"  preprocess: {network.preprocess}   init: {network.init}   "
               f"parameters: {network.params:,}")
    if network.trainable_params != network.params:
        click.echo(f"  trainable parameters: {network.trainable_params:,}")
    t = network.train
    click.echo(f"  training defaults: lr={t.lr:g} momentum={t.momentum:g} epochs={t.epochs} "
               f"batch_size={t.batch_size}")
    recipe = z.recipe(network.recipe)
    click.echo(f"  recipe: {recipe.id}: {recipe.describe()}")
    if network.source:
        click.echo("  source: " + ", ".join(f"{k} {v}" for k, v in network.source.items()))
    click.echo("  layers:")
    for layer in network.layers:
        click.echo(f"    {layer.name:<9} {layer.describe():<22} -> {layer.output_shape}  "
                   f"params {layer.params:,}")
    experiments = z.experiments_of(network.id)
    click.echo(f"  experiments ({len(experiments)}; the report's as the notebooks ran them):")
    for e in experiments:
        original = _percent(e.original.test_accuracy if e.original else None)
        extra = "" if e.recipe == "report" else f" recipe={e.recipe}"
        click.echo(f"    {e.id:<16} lr={e.train.lr:g} momentum={e.train.momentum:g} "
                   f"epochs={e.train.epochs}{extra}  original accuracy {original}")
        text = e.report_text
        differs = [f"{key}={getattr(text, key):g}" for key in ("lr", "momentum", "epochs")
                   if getattr(text, key) is not None]
        if differs:
            click.echo(f"      the report's text says {', '.join(differs)}")
        if text.words:
            click.echo(f'      report: "{text.words}"')
    quiet_tensorflow(ctx.find_root().meta.get("keras_cifar.verbose", False))
    from keras_cifar.models.builder import build_model
    from keras_cifar.models.inspection import summary_text

    click.echo()
    click.echo(summary_text(build_model(network, seed=0)), nl=False)


# ----------------------------------------------------------------------------------------------
# inspect


@cli.command()
@click.argument("target")
@click.option("--all", "all_values", is_flag=True, help="Print every value of every weight.")
@click.option("--init", type=click.Choice(rules.INITS), default=None,
              help="Initialisation for a network id (default: the network's).")
@click.option("--seed", type=int, callback=_rule(rules.check_seed), default=0, show_default=True,
              help="Seed for a network id.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the text to this file instead of the terminal.")
@click.pass_context
def inspect(ctx, target, all_values, init, seed, output):
    """Print model.summary() and the report's "Parameters & Structure" dump.

    TARGET is a network id (freshly initialised weights), a trained model.keras, or a run
    directory (its model.keras, or an unfinished run's last checkpoint).

    \b
    Examples:
      keras-cifar inspect cnn3
      keras-cifar inspect runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras --all -o cnn3.txt
    """
    from keras_cifar.models.inspection import parameter_dump, summary_text

    if output is not None:
        _fs.check_output_file(output, "--output")

    if target.endswith(".keras") or Path(target).is_file() or Path(target).is_dir():
        model = _load_model(target)
    else:
        network = NETWORK.convert(target, ctx.command.params[0], ctx)
        from keras_cifar.models.builder import build_model

        model = build_model(network, init=init, seed=seed)
    if all_values and output is None:
        # about 12 characters a value as numpy prints them
        click.echo(f"Printing all {model.count_params():,} values, about "
                   f"{model.count_params() * 12 / 2**20:.0f} MB of text; add -o FILE to write "
                   "them to a file instead.", err=True)
    text = (summary_text(model) + "\nParameters & Structure\n"
            + parameter_dump(model, all_values=all_values))
    if output is None:
        click.echo(text, nl=False)
    else:
        _fs.atomic_write_text(output, text)
        click.echo(f"Wrote {output} ({len(text.encode()) / 2**20:.1f} MiB)")


# ----------------------------------------------------------------------------------------------
# data


@cli.group(cls=_Group)
def data():
    """Inspect and prepare CIFAR-10 sources.

    \b
    Example:
      keras-cifar data info --data-dir ~/data/cifar10
    """


@data.command("info")
@data_options
def data_info(data):
    """Show a source: format, counts per split and class, the cache.

    \b
    Examples:
      keras-cifar data info --data-dir ../shared/data/cifar10-jpeg.tar.gz
      keras-cifar data info --data synthetic
    """
    import numpy as np

    from keras_cifar.data import cache_dir, cache_entries

    d = _load(data)
    click.echo(f"source:      {d.source}" + ("" if d.is_cifar10 else "  (synthetic: NOT CIFAR-10)"))
    click.echo(f"format:      {d.format}")
    click.echo(f"location:    {d.location}")
    click.echo(f"fingerprint: {d.fingerprint}")
    click.echo(f"{'class':<12}{'train':>8}{'test':>8}")
    train_counts = np.bincount(d.train_labels, minlength=10)
    test_counts = np.bincount(d.test_labels, minlength=10)
    for name, a, b in zip(d.class_names, train_counts, test_counts):
        click.echo(f"{name:<12}{a:>8,}{b:>8,}")
    click.echo(f"{'total':<12}{len(d.train_labels):>8,}{len(d.test_labels):>8,}")
    entries = cache_entries()
    size = sum(p.stat().st_size for p in entries)
    click.echo(f"cache:       {cache_dir()} ({len(entries)} entries, {size / 2**20:.1f} MiB)")


@data.command("prepare")
@data_options
def data_prepare(data):
    """Load (download or decode) a source once and cache it, ahead of training.

    \b
    Example:
      keras-cifar data prepare --data-dir ~/data/cifar10
    """
    d = _load(data)
    click.echo(f"Ready: {d.format} from {d.location}, {len(d.train_labels):,} train and "
               f"{len(d.test_labels):,} test images (fingerprint {d.fingerprint}).")


# ----------------------------------------------------------------------------------------------
# train and the commands on trained models


@cli.command()
@click.argument("network", type=NETWORK)
@click.option("--lr", type=float, callback=_rule(rules.check_lr), default=None,
              help="Learning rate (> 0). Default: the network's, from the zoo.")
@click.option("--momentum", type=float, callback=_rule(rules.check_momentum), default=None,
              help="SGD momentum in [0, 1). Default: the network's.")
@click.option("--epochs", type=int, callback=_rule(rules.check_epochs), default=None,
              help="Epochs (>= 1). Default: the network's.")
@click.option("--batch-size", type=int, callback=_rule(rules.check_batch_size), default=None,
              help="Batch size. Default: the network's (64, as the report).")
@click.option("--seed", type=int, callback=_rule(rules.check_seed), default=0, show_default=True,
              help="Seeds weights, data order and everything Keras draws.")
@click.option("--init", type=click.Choice(rules.INITS), default=None,
              help="Weight initialisation: torch (PyTorch's default, the zoo's) or keras.")
@click.option("--recipe", type=RECIPE, default=None,
              help="Training recipe from the zoo (default: the network's; `keras-cifar zoo "
              "recipes` lists them). Its lr, momentum, epochs and batch size apply unless given.")
@click.option("--set", "recipe_changes", multiple=True, metavar="FIELD=VALUE",
              callback=_recipe_changes,
              help="Change one recipe field, e.g. --set label_smoothing=0.1 --set "
              "augment.translate=4 --set tta=none (repeatable).")
@data_options
@click.option("--limit", type=int, callback=_rule(rules.check_limit), default=None,
              help="Train and test on a seeded, class-stratified subset of N images per split.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where run directories go.")
@click.option("--name", default=None, help="Run directory name. Default: settings plus a hash.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last epoch.")
@click.option("--force", is_flag=True, help="Replace an existing run directory of that name.")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs to the run.")
@click.option("--strategy", type=click.Choice(["default", "mirrored"]), default="default",
              show_default=True, help="mirrored: tf.distribute.MirroredStrategy over all GPUs (or "
              "--devices); --batch-size stays the global batch.")
@click.option("--devices", default=None, metavar="LIST",
              help="Comma-separated devices for --strategy mirrored, e.g. /gpu:0,/gpu:1.")
@click.option("--xla", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Compile the train step (Keras' jit_compile). auto: on TensorFlow, XLA for "
              "MLPs on CPU and everything on GPU, where it was measured faster; always on JAX; "
              "never on PyTorch.")
@click.option("--mixed-precision", is_flag=True,
              help="Compute in 16 bits with float32 weights: mixed_float16 on a GPU, "
              "mixed_bfloat16 on a CPU (fast with AVX512-BF16 or AMX: docs/speed.md). Changes "
              "the results; off by default.")
@backend_option
@click.pass_context
def train(ctx, network, lr, momentum, epochs, batch_size, seed, init, recipe, recipe_changes, data,
          limit, out, name, resume, force, tensorboard, strategy, devices, xla, mixed_precision):
    """Train NETWORK with SGD(momentum) under its recipe and write a run directory.

    The run directory holds config.json, history.csv, model.keras, summary.txt,
    parameters.txt, metrics.json, curves.png, kernels.png and confusion.png.

    \b
    Examples:
      keras-cifar train cnn3 --lr 0.1 --momentum 0.9 --epochs 20 --data-dir ~/data/cifar10
      keras-cifar train lenet5 --data synthetic --epochs 1
      keras-cifar train airbench93 --data-dir ~/data/cifar10
      keras-cifar train cnn3 --recipe modern --lr 0.1 --set label_smoothing=0 --data-dir ~/data/cifar10
    """
    from keras_cifar.training.config import RunConfig
    from keras_cifar.plots.figures import draw_run
    from keras_cifar._fs import check_output_dir
    from keras_cifar.training.train import train_run
    from keras_cifar.zoo.recipe import with_changes

    recipe = recipe or _zoo(ctx).recipe(network.recipe)
    if recipe_changes:
        try:
            recipe = with_changes(recipe, recipe_changes)
        except errors.ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--set") from None
    config = RunConfig.of(network, recipe=recipe, lr=lr, momentum=momentum, epochs=epochs,
                          batch_size=batch_size, seed=seed, init=init, limit=limit,
                          mixed_precision=mixed_precision,
                          data=data,
                          xla=xla, strategy=strategy,
                          devices=tuple(d.strip() for d in devices.split(",")) if devices else ())
    check_output_dir(out)
    d = _load(config.data)
    if not d.is_cifar10:
        click.echo("Note: training on synthetic data, not CIFAR-10.", err=True)
    result = train_run(config, d, out_dir=out, name=name, resume=resume, force=force,
                       tensorboard=tensorboard)
    if result.already_finished:
        click.echo(f"{result.run_dir} is already finished; nothing to resume.")
    draw_run(result.run_dir, missing_only=result.already_finished, model=result.model)
    m = result.metrics
    identity = result.config["identity"]
    tta = (f"; with test-time augmentation ({m['tta']}) {m['tta_test_accuracy']:.2%}"
           if "tta_test_accuracy" in m else "")
    click.echo(
        f"{network.id}: test accuracy {m['test_accuracy']:.2%}{tta} (best epoch "
        f"{m['best_test_accuracy']:.2%}, optimistic), test loss {m['test_loss']:.4f} after "
        f"{identity['epochs']} epochs, {m['seconds']:.0f} s.\nRun directory: {result.run_dir}"
    )


def _load_model(path):
    """A trained model from MODEL (a .keras file or a run directory), saying on stderr when it
    is an unfinished run's checkpoint."""
    from keras_cifar.serving.predict import load_trained_model

    model, source = load_trained_model(path)
    if "checkpoint" in source:
        click.echo(f"Note: using {source}.", err=True)
    return model


MODEL_ARGUMENT = click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))


def _print_metrics(metrics: dict) -> None:
    click.echo(f"test loss {metrics['test_loss']:.4f} (mean cross-entropy), "
               f"test accuracy {metrics['test_accuracy']:.2%}")
    click.echo(f"{'class':<12}{'accuracy':>9}")
    for name, accuracy in zip(metrics["class_names"], metrics["per_class_accuracy"]):
        click.echo(f"{name:<12}{accuracy:>9.1%}")


@cli.command()
@MODEL_ARGUMENT
@data_options
@click.option("--limit", type=int, callback=_rule(rules.check_limit), default=None,
              help="Evaluate on a class-stratified subset of N test images.")
@click.option("--confusion", type=click.Path(path_type=Path), default=None,
              help="Also write the confusion-matrix figure to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path, data, limit, confusion, as_json):
    """Evaluate a trained model on the test split: loss, accuracy, per-class accuracy.

    \b
    Example:
      keras-cifar evaluate runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras --data-dir ~/data/cifar10
    """
    from keras_cifar.api import evaluate as evaluate_on

    model = _load_model(model_path)
    d = _load(data)
    metrics = evaluate_on(model, d, limit=limit)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
    else:
        _print_metrics(metrics)
    if confusion:
        from keras_cifar.plots.figures import plot_confusion

        plot_confusion(metrics["confusion_matrix"], d.class_names, confusion)
        if not as_json:
            click.echo(f"Confusion matrix: {confusion}")


@cli.command()
@MODEL_ARGUMENT
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=click.IntRange(1, 10), default=3, show_default=True,
              help="How many classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(model_path, images, top, as_json):
    """Classify image files: the top classes with probabilities.

    Images of any size or mode are converted to 32x32 RGB, with a note (16-bit images are
    scaled to 8 bits); images over 4096x4096 pixels and unreadable files are reported, and the
    others still predicted (exit 1 if any failed).

    \b
    Example:
      keras-cifar predict runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras cat.png ship.jpg
    """
    from keras_cifar.serving.predict import predict_images

    model = _load_model(model_path)
    results = predict_images(model, images, top=top)
    failed = [r for r in results if "error" in r]
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                click.echo(f"{r['image']}: error: {r['error']}", err=True)
                continue
            guesses = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top"])
            click.echo(f"{r['image']}: {guesses}")
            for note in r["notes"]:
                click.echo(f"  note: {note}")
    if failed:
        if len(failed) == len(results):
            raise click.ClickException("The image could not be read." if len(results) == 1 else
                                       f"None of the {len(results)} images could be read.")
        raise click.ClickException(f"{len(failed)} of {len(results)} images could not be read; "
                                   "the others were predicted.")


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR...")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write the figure. Default: RUN_DIR/curves.png for one run, "
              "comparison.png for several.")
def plot(run_dirs, output):
    """Redraw loss/accuracy curves from history.csv; several runs give one comparison figure.

    \b
    Examples:
      keras-cifar plot runs/lenet5-lr0.01-m0-e40-s0-1a2b3c4d
      keras-cifar plot runs/lenet5-lr0.001-* runs/lenet5-lr0.01-* -o lr.png
    """
    from keras_cifar import _fs
    from keras_cifar.training import rundir
    from keras_cifar.plots.figures import plot_comparison, plot_curves, run_title

    _fs.check_output_file(output or (run_dirs[0] / rundir.CURVES if len(run_dirs) == 1
                                      else Path("comparison.png")), "--output")
    if len(run_dirs) == 1:
        rows = rundir.read_history(run_dirs[0])
        path = plot_curves(rows, output or run_dirs[0] / rundir.CURVES,
                           run_title(rundir.read_run(run_dirs[0])))
    else:
        histories = [(run_title(rundir.read_run(r)), rundir.read_history(r)) for r in run_dirs]
        path = plot_comparison(histories, output or Path("comparison.png"))
    click.echo(f"Wrote {path}")


@cli.command()
@MODEL_ARGUMENT
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The PNG to write.")
def kernels(model_path, output):
    """Draw the first layer's kernels of a saved model (conv filters or first dense units).

    \b
    Example:
      keras-cifar kernels runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras -o cnn3-kernels.png
    """
    from keras_cifar.plots.figures import plot_kernels
    _fs.check_output_file(output, "--output")
    click.echo(f"Wrote {plot_kernels(_load_model(model_path), output)}")


@cli.command()
@MODEL_ARGUMENT
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["saved_model", "onnx", "litert"]),
              default=None, help="saved_model: a directory; onnx: an .onnx file; litert: a "
              ".tflite file. Default: what TARGET's suffix says (.onnx, .tflite, else a "
              "SavedModel directory).")
@click.option("--force", is_flag=True, help="Replace TARGET if it exists (a non-empty directory).")
def export(model_path, target, format_, force):
    """Export a model for serving: uint8 images (N, 32, 32, 3) in, probabilities (N, 10) out.

    ONNX needs the export extra: pip install -e ".[export]".

    \b
    Examples:
      keras-cifar export runs/cnn3-lr0.01-m0.9-e20-s0-1a2b3c4d/model.keras exported/cnn3
      keras-cifar export runs/cnn3-lr0.01-m0.9-e20-s0-1a2b3c4d/model.keras cnn3.onnx
      keras-cifar export runs/cnn3-lr0.01-m0.9-e20-s0-1a2b3c4d/model.keras cnn3.tflite
    """
    import keras

    from keras_cifar.serving.exports import (EXPORT_FORMATS, check_export_target, export_model,
                                             export_route, require_converter, resolve_format)

    format_ = resolve_format(target, format_)
    require_converter(format_)
    check_export_target(target, format_, force)
    path = export_model(_load_model(model_path), target, format_, force=force)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
        else path.stat().st_size
    route = export_route(format_)
    click.echo(f"Wrote {EXPORT_FORMATS[format_][0]} {path} ({size / 2**20:.1f} MiB): uint8 "
               f"images (N, 32, 32, 3) in, probabilities (N, 10) out"
               + ("; endpoint `serve`" if format_ == "saved_model" else "; input `images`")
               + ("." if route == "keras" else
                  f"; exported by {route} (Keras cannot export {format_} on the "
                  f"{keras.backend.backend()} backend)."))


# ----------------------------------------------------------------------------------------------
# reproduce


@zoo.command("recipes", cls=_TensorFlowFreeCommand)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per recipe.")
@click.pass_context
def zoo_recipes(ctx, as_json):
    """List the training recipes: what each sets beyond the network.

    \b
    Example:
      keras-cifar zoo recipes
    """
    z = _zoo(ctx)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in z.recipes.values()], indent=2))
        return
    for r in z.recipes.values():
        numbers = " ".join(f"{k}={v:g}" for k, v in r.train.items())
        click.echo(f"{r.id}: {r.title}")
        click.echo(f"    {numbers + '; ' if numbers else ''}{r.describe()}")
    click.echo(f"\n{len(z.recipes)} recipes from {z.path}. Use one with `keras-cifar train NET "
               "--recipe NAME`; change a field with --set FIELD=VALUE.")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _selection_options(command):
    for option in reversed([
        click.argument("experiment_ids", nargs=-1, metavar="[EXPERIMENT_ID]..."),
        click.option("--all", "all_", is_flag=True,
                     help="All the report's experiments (not the groups, e.g. the ladder)."),
        click.option("--network", type=NETWORK, default=None,
                     help="Every experiment of one network."),
        click.option("--group", default=None, metavar="GROUP",
                     help="Every experiment of a group, e.g. ladder (72% to airbench93)."),
        click.option("--out", type=click.Path(path_type=Path), default=Path("report"),
                     show_default=True,
                     help="Output directory: runs/<experiment-id>[-s<seed>]/, RESULTS.md, "
                     "results.csv, figures."),
        click.option("--seeds", "seeds_text", default="0-2", show_default=True, metavar="LIST",
                     help="Seeds: each experiment runs once per seed, e.g. 0-2, 0,3,5 or 0."),
    ]):
        command = option(command)
    return command


def _seeds(seeds_text: str) -> tuple[int, ...]:
    from keras_cifar.reproduce import experiments as rep

    try:
        return rep.parse_seeds(seeds_text)
    except errors.ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--seeds") from None


def _print_status(z: Zoo, chosen, out: Path, seeds, verb: str) -> None:
    from keras_cifar.reproduce import experiments as rep

    statuses = rep.experiment_status(z, chosen, out, seeds)
    click.echo(f"{'experiment':<16}{'seed':>5} {'network':<14}{'lr':>7}{'mom':>6}{'epochs':>7}  "
               f"{'status':<16}{'time left':>10}")
    for st in statuses:
        e = st.experiment
        click.echo(f"{e.id:<16}{st.seed:>5} {e.network:<14}{e.train.lr:>7g}"
                   f"{e.train.momentum:>6g}{e.train.epochs:>7}  {st.describe():<16}"
                   f"{_minutes(st.estimate_seconds):>10}")
    left = [st for st in statuses if not st.done]
    total = sum(st.estimate_seconds for st in left)
    click.echo(f"{verb} {len(left)} of {len(statuses)} runs, about {_minutes(total)}, into {out}.")
    bases = {st.experiment.network: st.estimate_basis for st in left}
    if bases:
        click.echo("Time per epoch, by network (slower on a machine busy with other work):")
        for network, basis in bases.items():
            click.echo(f"  {network}: {basis}")


@cli.group(cls=_Group)
def reproduce():
    """The report's experiments, as its notebooks ran them, against the notebooks' numbers.

    Each experiment and seed is an ordinary run directory under OUT/runs/ (`<id>` for seed 0,
    `<id>-s<seed>`); finished ones are skipped and an interrupted one resumes, so a
    reproduction can be spread over several sittings.

    \b
    Examples:
      keras-cifar reproduce list
      keras-cifar reproduce run --all --seeds 0-2 --workers 2 --data-dir ~/data/cifar10
      keras-cifar reproduce run lenet5-lr0.01 cnn3 --seeds 0 --data-dir ~/data/cifar10
      keras-cifar reproduce report --out report
      keras-cifar reproduce publish figures --out report
    """


@reproduce.command("run")
@_selection_options
@data_options
@click.option("--init", type=click.Choice(rules.INITS), default=None,
              help="Weight initialisation (default: each network's, torch in the zoo).")
@click.option("--limit", type=int, callback=_rule(rules.check_limit), default=None,
              help="Class-stratified subset of N images per split (quick looks only).")
@click.option("--dry-run", is_flag=True, help="Print what would run, and run nothing.")
@click.option("--retry-diverged", is_flag=True,
              help="Train runs whose loss diverged (NaN) before again, from scratch; by default "
              "a divergence is a result and is kept.")
@executor_options
@backend_option
@click.pass_context
def reproduce_run(ctx, experiment_ids, all_, network, group, out, seeds_text, data, init, limit,
                  dry_run, retry_diverged, executor, workers, address):
    """Train the chosen experiments with every seed, then write the results table and figures.

    \b
    Examples:
      keras-cifar reproduce run --all --seeds 0-2 --workers 2 --data-dir ~/data/cifar10
      keras-cifar reproduce run cnn3 --seeds 0 --data-dir ~/data/cifar10 --out report
      keras-cifar reproduce run --group ladder --seeds 0-1 --data-dir ~/data/cifar10 --out ladder
    """
    from keras_cifar.reproduce import experiments as rep
    from keras_cifar import _fs

    z = _zoo(ctx)
    seeds = _seeds(seeds_text)
    chosen = rep.select_experiments(z, experiment_ids, network.id if network else None, all_,
                                    group)
    if dry_run:
        _print_status(z, chosen, out, seeds, "Would run")
        return
    _fs.check_output_dir(out)
    if not _load(data).is_cifar10:  # fails fast on bad data, and warms the decode cache
        click.echo("Note: reproducing on synthetic data, not CIFAR-10.", err=True)
    path = rep.reproduce(z, chosen, data, out, seeds=seeds, init=init, limit=limit,
                         executor=executor, workers=workers, address=address,
                         on_start=_announce(executor, workers), retry_diverged=retry_diverged,
                         on_outcome=lambda text: click.echo(f"Runs: {text}."))
    click.echo(f"Wrote {path}")


@reproduce.command("list", cls=_TensorFlowFreeCommand)
@_selection_options
@click.pass_context
def reproduce_list(ctx, experiment_ids, all_, network, group, out, seeds_text):
    """List the experiments (all, unless some are chosen) with each seed's status and time left.

    \b
    Example:
      keras-cifar reproduce list --seeds 0-2 --out report
    """
    from keras_cifar.reproduce import experiments as rep

    z = _zoo(ctx)
    seeds = _seeds(seeds_text)
    if experiment_ids or network or all_ or group:
        chosen = rep.select_experiments(z, experiment_ids, network.id if network else None, all_,
                                        group)
    else:
        chosen = list(z.experiments.values())
    _print_status(z, chosen, out, seeds, "To run:")


@reproduce.command("report")
@click.option("--out", type=click.Path(path_type=Path), default=Path("report"), show_default=True,
              help="The reproduction's output directory.")
@click.pass_context
def reproduce_report(ctx, out):
    """Rebuild RESULTS.md, results.csv and the figures from the saved runs; no training.

    \b
    Example:
      keras-cifar reproduce report --out figures
    """
    from keras_cifar.reproduce import experiments as rep
    from keras_cifar import _fs

    _fs.check_output_dir(out)
    click.echo(f"Wrote {rep.write_report(_zoo(ctx), out)}")


@reproduce.command("publish")
@click.argument("destination", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("report"), show_default=True,
              help="The reproduction's output directory to publish from.")
@click.pass_context
def reproduce_publish(ctx, destination, out):
    """Copy the finished runs' config, history and metrics and the report to DESTINATION.

    The model files stay behind; the table and figures are redrawn in DESTINATION from what
    it then holds (runs published earlier included).

    \b
    Example:
      keras-cifar reproduce publish figures --out report
    """
    from keras_cifar.reproduce import experiments as rep
    from keras_cifar import _fs

    _fs.check_output_dir(destination, "DESTINATION")
    click.echo(f"Wrote {rep.publish(_zoo(ctx), out, destination)}")


def _announce(executor, workers):
    def on_start(job, index, total):
        where = "" if executor == "local" and workers <= 1 else f" ({executor}, queued)"
        c = job.config
        click.echo(f"[{index + 1}/{total}] {job.name}: {c.network.id} lr={c.lr:g} "
                   f"momentum={c.momentum:g} epochs={c.epochs}{where}")

    return on_start


# ----------------------------------------------------------------------------------------------
# sweep


@cli.command()
@click.argument("network", type=NETWORK)
@click.option("--lr", "lrs", required=True, metavar="LIST", help="Learning rates, e.g. 0.001,0.01,0.1.")
@click.option("--momentum", "momenta", default="0", show_default=True, metavar="LIST",
              help="Momenta, e.g. 0,0.9.")
@click.option("--epochs", type=int, callback=_rule(rules.check_epochs), default=None,
              help="Epochs of every run. Default: the network's.")
@click.option("--batch-size", type=int, callback=_rule(rules.check_batch_size), default=None,
              help="Batch size. Default: the network's.")
@click.option("--seed", type=int, callback=_rule(rules.check_seed), default=0, show_default=True)
@click.option("--init", type=click.Choice(rules.INITS), default=None)
@click.option("--limit", type=int, callback=_rule(rules.check_limit), default=None,
              help="Class-stratified subset of N images per split.")
@data_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output directory. Default: sweeps/NETWORK.")
@click.option("--retry-diverged", is_flag=True,
              help="Train points whose loss diverged (NaN) before again, from scratch; by "
              "default a divergence is a result and is kept.")
@executor_options
@backend_option
@click.pass_context
def sweep(ctx, network, lrs, momenta, epochs, batch_size, seed, init, limit, data, out,
          retry_diverged, executor, workers, address):
    """Train NETWORK over a grid of learning rates x momenta; a table sorted by accuracy.

    Writes OUT/runs/<run>/ per point, SWEEP.md, sweep.csv and sweep.png (test accuracy against
    epoch for every run). Finished points are skipped; interrupted ones resume.

    \b
    Examples:
      keras-cifar sweep lenet5 --lr 0.001,0.01,0.1 --momentum 0,0.9 --epochs 20 --data-dir ~/data/cifar10
      keras-cifar sweep mlp2 --lr 0.01,0.05 --workers 2 --data synthetic
    """
    from keras_cifar.reproduce import sweep as sweep_module

    lr_values = sweep_module.parse_values(lrs, "lr")
    momentum_values = sweep_module.parse_values(momenta, "momentum")
    out = out or Path("sweeps") / network.id
    _load(data)  # fails fast on bad data, and warms the decode cache
    path = sweep_module.sweep(
        network, lr_values, momentum_values, epochs or network.train.epochs, data, out,
        executor=executor, workers=workers, address=address,
        on_start=_announce(executor, workers), batch_size=batch_size, seed=seed, init=init,
        limit=limit, retry_diverged=retry_diverged)
    click.echo(path.read_text(), nl=False)
    click.echo(f"Wrote {path}")


def main():
    """Entry point of the `keras-cifar` console script."""
    cli(prog_name="keras-cifar")
