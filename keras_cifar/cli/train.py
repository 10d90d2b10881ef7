"""`keras-cifar train`: one network, one recipe, one run directory."""

from __future__ import annotations

from pathlib import Path

import click

from keras_cifar import errors
from keras_cifar.cli.core import Command, rule
from keras_cifar.cli.options import (NETWORK, RECIPE, backend_option, data_options, load_data,
                                     parse_recipe_changes, zoo_in_use)
from keras_cifar.zoo import rules


@click.command(cls=Command)
@click.argument("network", type=NETWORK)
@click.option("--lr", type=float, callback=rule(rules.check_lr), default=None,
              help="Learning rate (> 0). Default: the network's, from the zoo.")
@click.option("--momentum", type=float, callback=rule(rules.check_momentum), default=None,
              help="SGD momentum in [0, 1). Default: the network's.")
@click.option("--epochs", type=int, callback=rule(rules.check_epochs), default=None,
              help="Epochs (>= 1). Default: the network's.")
@click.option("--batch-size", type=int, callback=rule(rules.check_batch_size), default=None,
              help="Batch size. Default: the network's (64, as the report).")
@click.option("--seed", type=int, callback=rule(rules.check_seed), default=0, show_default=True,
              help="Seeds weights, data order and everything Keras draws.")
@click.option("--init", type=click.Choice(rules.INITS), default=None,
              help="Weight initialisation: torch (PyTorch's default, the zoo's) or keras.")
@click.option("--recipe", type=RECIPE, default=None,
              help="Training recipe from the zoo (default: the network's; `keras-cifar zoo "
              "recipes` lists them). Its lr, momentum, epochs and batch size apply unless given.")
@click.option("--set", "recipe_changes", multiple=True, metavar="FIELD=VALUE",
              callback=parse_recipe_changes,
              help="Change one recipe field, e.g. --set label_smoothing=0.1 --set "
              "augment.translate=4 --set tta=none (repeatable).")
@data_options
@click.option("--limit", type=int, callback=rule(rules.check_limit), default=None,
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

    recipe = recipe or zoo_in_use(ctx).recipe(network.recipe)
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
    d = load_data(config.data)
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
