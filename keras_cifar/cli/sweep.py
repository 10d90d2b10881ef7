"""`keras-cifar sweep`: a grid of learning rates x momenta, a table sorted by accuracy."""

from __future__ import annotations

from pathlib import Path

import click

from keras_cifar.cli.core import Command, rule
from keras_cifar.cli.options import (NETWORK, announce_runs, backend_option, data_options,
                                     executor_options, load_data, retry_diverged_option)
from keras_cifar.zoo import rules


@click.command(cls=Command)
@click.argument("network", type=NETWORK)
@click.option("--lr", "lrs", required=True, metavar="LIST", help="Learning rates, e.g. 0.001,0.01,0.1.")
@click.option("--momentum", "momenta", default="0", show_default=True, metavar="LIST",
              help="Momenta, e.g. 0,0.9.")
@click.option("--epochs", type=int, callback=rule(rules.check_epochs), default=None,
              help="Epochs of every run. Default: the network's.")
@click.option("--batch-size", type=int, callback=rule(rules.check_batch_size), default=None,
              help="Batch size. Default: the network's.")
@click.option("--seed", type=int, callback=rule(rules.check_seed), default=0, show_default=True)
@click.option("--init", type=click.Choice(rules.INITS), default=None)
@click.option("--limit", type=int, callback=rule(rules.check_limit), default=None,
              help="Class-stratified subset of N images per split.")
@data_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output directory. Default: sweeps/NETWORK.")
@retry_diverged_option("points")
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
    load_data(data)  # fails fast on bad data, and warms the decode cache
    path = sweep_module.sweep(
        network, lr_values, momentum_values, epochs or network.train.epochs, data, out,
        executor=executor, workers=workers, address=address,
        on_start=announce_runs(executor, workers), batch_size=batch_size, seed=seed, init=init,
        limit=limit, retry_diverged=retry_diverged)
    click.echo(path.read_text(), nl=False)
    click.echo(f"Wrote {path}")
