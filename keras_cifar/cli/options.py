"""The options and arguments several commands share: zoo entries, the backend, the data
source, the executor, a trained model; flags are named here and in each command only."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from keras_cifar import errors
from keras_cifar.zoo import Zoo, ZooError, load_zoo


def zoo_in_use(ctx: click.Context | None) -> Zoo:
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
            return self._lookup(zoo_in_use(ctx), value)
        except ZooError as e:
            self.fail(str(e), param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        try:
            entries = self._entries(zoo_in_use(ctx))
        except ZooError:
            return []
        return [CompletionItem(i, help=e.title) for i, e in entries.items()
                if i.startswith(incomplete)]


NETWORK = ZooEntryType("network")
RECIPE = ZooEntryType("recipe")


def _backend(ctx, param, value):
    """`--backend` (or KERAS_BACKEND): checked while parsing, so that a bad or missing backend
    is a usage error; the command makes it Keras' backend before its body runs
    (`Command.invoke`)."""
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


def parse_recipe_changes(ctx, param, values):
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


def load_data(data):
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


def retry_diverged_option(what: str):
    """`--retry-diverged`, for the commands that train many runs (`what`: "runs", "points")."""
    return click.option("--retry-diverged", is_flag=True,
                        help=f"Train {what} whose loss diverged (NaN) before again, from scratch; "
                        "by default a divergence is a result and is kept.")


def executor_options(command):
    """Where many runs happen: this process, local processes, or a Ray cluster."""
    options = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, help="local: this machine; ray: one Ray task per run."),
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="With --executor local: runs in N processes at once, each with "
                     "cores/N TensorFlow threads, PyTorch threads too on --backend torch (on 2 "
                     "cores, --workers 2 finishes a sweep 1.1-1.5x sooner)."),
        click.option("--address", default=None,
                     help="Ray cluster address (e.g. ray://head:10001, auto); default: start a "
                     "local Ray. --out must be storage every node sees."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def load_model(path):
    """A trained model from MODEL (a .keras file or a run directory), saying on stderr when it
    is an unfinished run's checkpoint."""
    from keras_cifar.serving.predict import load_trained_model

    model, source = load_trained_model(path)
    if "checkpoint" in source:
        click.echo(f"Note: using {source}.", err=True)
    return model


MODEL_ARGUMENT = click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))


def announce_runs(executor, workers):
    def on_start(job, index, total):
        where = "" if executor == "local" and workers <= 1 else f" ({executor}, queued)"
        c = job.config
        click.echo(f"[{index + 1}/{total}] {job.name}: {c.network.id} lr={c.lr:g} "
                   f"momentum={c.momentum:g} epochs={c.epochs}{where}")

    return on_start
