"""`keras-cifar zoo`: list and show the networks and recipes of the zoo."""

from __future__ import annotations

import json

import click

from keras_cifar._env import quiet_tensorflow
from keras_cifar.cli.core import Group, TensorFlowFreeCommand
from keras_cifar.cli.options import NETWORK, zoo_in_use


@click.group(cls=Group)
def zoo():
    """List and show the networks of the zoo.

    \b
    Example:
      keras-cifar zoo list
    """


def _percent(value):
    return "-" if value is None else f"{value:.1%}"


@zoo.command("list", cls=TensorFlowFreeCommand)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per network.")
@click.pass_context
def zoo_list(ctx, as_json):
    """List every network: layers, parameters, its settings as run, the original's best accuracy.

    \b
    Example:
      keras-cifar zoo list --json
    """
    z = zoo_in_use(ctx)
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


@zoo.command("show", cls=TensorFlowFreeCommand)
@click.argument("network", type=NETWORK)
@click.pass_context
def zoo_show(ctx, network):
    """Show a network: layers, training defaults, the report's experiments as run, model.summary().

    \b
    Example:
      keras-cifar zoo show lenet5
    """
    z = zoo_in_use(ctx)
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


@zoo.command("recipes", cls=TensorFlowFreeCommand)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per recipe.")
@click.pass_context
def zoo_recipes(ctx, as_json):
    """List the training recipes: what each sets beyond the network.

    \b
    Example:
      keras-cifar zoo recipes
    """
    z = zoo_in_use(ctx)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in z.recipes.values()], indent=2))
        return
    for r in z.recipes.values():
        numbers = " ".join(f"{k}={v:g}" for k, v in r.train.items())
        click.echo(f"{r.id}: {r.title}")
        click.echo(f"    {numbers + '; ' if numbers else ''}{r.describe()}")
    click.echo(f"\n{len(z.recipes)} recipes from {z.path}. Use one with `keras-cifar train NET "
               "--recipe NAME`; change a field with --set FIELD=VALUE.")
