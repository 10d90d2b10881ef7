"""`keras-cifar reproduce`: experiment groups over seeds, resumable, into a results table."""

from __future__ import annotations

from pathlib import Path

import click

from keras_cifar import errors
from keras_cifar.cli.core import Group, TensorFlowFreeCommand, rule
from keras_cifar.cli.options import (NETWORK, announce_runs, backend_option, data_options,
                                     executor_options, load_data, retry_diverged_option,
                                     zoo_in_use)
from keras_cifar.zoo import Zoo, rules


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


@click.group(cls=Group)
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
@click.option("--limit", type=int, callback=rule(rules.check_limit), default=None,
              help="Class-stratified subset of N images per split (quick looks only).")
@click.option("--dry-run", is_flag=True, help="Print what would run, and run nothing.")
@retry_diverged_option("runs")
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

    z = zoo_in_use(ctx)
    seeds = _seeds(seeds_text)
    chosen = rep.select_experiments(z, experiment_ids, network.id if network else None, all_,
                                    group)
    if dry_run:
        _print_status(z, chosen, out, seeds, "Would run")
        return
    _fs.check_output_dir(out)
    if not load_data(data).is_cifar10:  # fails fast on bad data, and warms the decode cache
        click.echo("Note: reproducing on synthetic data, not CIFAR-10.", err=True)
    path = rep.reproduce(z, chosen, data, out, seeds=seeds, init=init, limit=limit,
                         executor=executor, workers=workers, address=address,
                         on_start=announce_runs(executor, workers), retry_diverged=retry_diverged,
                         on_outcome=lambda text: click.echo(f"Runs: {text}."))
    click.echo(f"Wrote {path}")


@reproduce.command("list", cls=TensorFlowFreeCommand)
@_selection_options
@click.pass_context
def reproduce_list(ctx, experiment_ids, all_, network, group, out, seeds_text):
    """List the experiments (all, unless some are chosen) with each seed's status and time left.

    \b
    Example:
      keras-cifar reproduce list --seeds 0-2 --out report
    """
    from keras_cifar.reproduce import experiments as rep

    z = zoo_in_use(ctx)
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
    click.echo(f"Wrote {rep.write_report(zoo_in_use(ctx), out)}")


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
    click.echo(f"Wrote {rep.publish(zoo_in_use(ctx), out, destination)}")
