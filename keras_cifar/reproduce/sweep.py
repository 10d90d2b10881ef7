"""A user's own grid: one network over learning rates x momenta, as ordinary runs.

`OUT/runs/<network>-lr<lr>-m<momentum>-e<epochs>[-s<seed>]/` per point, run by any executor
(`keras_cifar.reproduce.executors`), then SWEEP.md and sweep.csv sorted by final test accuracy,
and one figure of test accuracy against epoch for every run.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from typing import Callable, Sequence

from keras_cifar import _fs, errors
from keras_cifar.training import rundir
from keras_cifar.errors import ConfigError
from keras_cifar.reproduce.results import FinishedRun
from keras_cifar.zoo import NetworkSpec

SWEEP_MD = "SWEEP.md"
SWEEP_CSV = "sweep.csv"
SWEEP_PNG = "sweep.png"
SWEEP_COLUMNS = ("run", "network", "lr", "momentum", "epochs", "test_accuracy",
                 "best_test_accuracy", "test_loss", "seconds", "status")


def parse_values(text: str, name: str) -> list[float]:
    """Parses a comma-separated list of numbers, e.g. `0.001,0.01,0.1`.

    Raises:
        ValueError: an empty list or an item that is not a number.
    """
    values = []
    for item in text.split(","):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(f"--{name} must be comma-separated numbers such as 0.001,0.01. "
                             f"Received: {name}={text!r}") from None
    return values


def sweep_jobs(spec: NetworkSpec, lrs: Sequence[float], momenta: Sequence[float], epochs: int,
               data_spec, out_dir, *, batch_size: int | None = None, seed: int = 0,
               init: str | None = None, limit: int | None = None,
               retry_diverged: bool = False) -> list:
    """Returns one `executors.Job` per distinct (lr, momentum) point (a value given twice is
    one point), each in a run directory named by its exact settings.

    Raises:
        ConfigError: a learning rate <= 0, a momentum outside [0, 1), or another bad setting
            (checked for every point before anything is created).
    """
    from keras_cifar.training.config import RunConfig
    from keras_cifar.reproduce.executors import Job, prepare_shared_dir

    configs = [RunConfig.of(spec, lr=lr, momentum=momentum, epochs=epochs, batch_size=batch_size,
                            seed=seed, init=init, limit=limit, data=data_spec)
               for lr, momentum in itertools.product(dict.fromkeys(lrs), dict.fromkeys(momenta))]
    marker = prepare_shared_dir(out_dir)
    return [
        Job(config, out_dir=str(out_dir), marker=marker, retry_diverged=retry_diverged,
            run_dir=str(_fs.child_path(Path(out_dir) / "runs", rundir.run_dir_name(
                rundir.settings_label(spec.id, config.lr, config.momentum, epochs), seed))))
        for config in configs
    ]


def sweep_rows(out_dir) -> list[dict]:
    """One row per finished or diverged run in `out_dir/runs` (this sweep's points and those
    of earlier sweeps into the same folder): finished ones by final test accuracy, best first,
    then the diverged ones."""
    rows = []
    runs_dir = Path(out_dir) / "runs"
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []:
        try:
            saved = rundir.read_run(run_dir)
        except errors.RunError:
            continue
        t = saved.train
        if t is None:
            continue
        row = {"run": run_dir.name, "network": saved.network_id, "lr": t.lr,
               "momentum": t.momentum, "epochs": t.epochs, "test_accuracy": None,
               "best_test_accuracy": None, "test_loss": None, "seconds": None}
        run = FinishedRun.of(saved, saved.seed)
        if run is not None:
            row.update(test_accuracy=run.final_accuracy, best_test_accuracy=run.best_accuracy,
                       test_loss=run.final_loss, seconds=run.seconds, status="finished")
        elif saved.diverged_epoch is not None:
            row.update(status=f"diverged in epoch {saved.diverged_epoch}")
        else:
            continue
        rows.append(row)
    return sorted(rows, key=lambda r: (r["test_accuracy"] is None, -(r["test_accuracy"] or 0),
                                       r["run"]))


def _cell(value, form: str) -> str:
    return "" if value is None else format(value, form)


def write_sweep_report(out_dir, outcome: str = "") -> Path:
    """Writes SWEEP.md, sweep.csv (sorted by accuracy, diverged points last) and sweep.png from
    every run in `out_dir/runs`; returns SWEEP.md. `outcome` (`executors.outcome`) heads it."""
    from keras_cifar.plots.figures import plot_comparison

    out_dir = Path(out_dir)
    rows = sweep_rows(out_dir)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SWEEP_COLUMNS)
    for r in rows:
        writer.writerow([r["run"], r["network"], f"{r['lr']:g}", f"{r['momentum']:g}", r["epochs"],
                         _cell(r["test_accuracy"], ".4f"), _cell(r["best_test_accuracy"], ".4f"),
                         _cell(r["test_loss"], ".4f"), _cell(r["seconds"], ".0f"), r["status"]])
    _fs.atomic_write_text(out_dir / SWEEP_CSV, buffer.getvalue())
    lines = ["# Sweep", ""] + ([f"This sweep: {outcome}.", ""] if outcome else []) + [
             "Sorted by final test accuracy (diverged points last); *best* is the best epoch's "
             "(optimistic, chosen on the test set). Loss: mean cross-entropy.", "",
             "| run | lr | momentum | epochs | test acc | best (optimistic) | test loss | seconds "
             "| status |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {r['run']} | {r['lr']:g} | {r['momentum']:g} | {r['epochs']} "
              f"| {_cell(r['test_accuracy'], '.1%')} | {_cell(r['best_test_accuracy'], '.1%')} "
              f"| {_cell(r['test_loss'], '.4f')} | {_cell(r['seconds'], '.0f')} | {r['status']} |"
              for r in rows]
    finished = [r for r in rows if r["status"] == "finished"]
    if finished:
        histories = [(f"lr {r['lr']:g}, momentum {r['momentum']:g}",
                      rundir.read_history(out_dir / "runs" / r["run"])) for r in finished]
        plot_comparison(histories, out_dir / SWEEP_PNG, f"{finished[0]['network']}: sweep")
        lines += ["", f"![sweep]({SWEEP_PNG})"]
    _fs.atomic_write_text(out_dir / SWEEP_MD, "\n".join(lines) + "\n")
    return out_dir / SWEEP_MD


def sweep(spec: NetworkSpec, lrs, momenta, epochs: int, data_spec, out_dir, *,
          executor: str = "local", workers: int = 1, address: str | None = None,
          on_start: Callable | None = None, **job_options) -> Path:
    """Runs the grid (finished points are skipped, interrupted ones resume) and its report.

    A point whose loss diverges is marked `diverged` with its epoch and the others still run;
    a rerun does not train it again unless `retry_diverged=True` (a job option).

    Returns:
        The path of SWEEP.md. `out_dir/tensorboard/` holds the runs' TensorBoard HParams logs
        (`tensorboard --logdir OUT`).
    """
    from keras_cifar.reproduce.executors import outcome, run_jobs
    from keras_cifar.reproduce.hparams import write_hparams_logs

    _fs.check_output_dir(out_dir)
    with _fs.lock_run_dir(out_dir, what="sweep's output directory", then=_fs.RERUN_HINT):
        jobs = sweep_jobs(spec, lrs, momenta, epochs, data_spec, out_dir, **job_options)
        summaries = run_jobs(jobs, executor=executor, workers=workers, address=address,
                             on_start=on_start)
        # every run in OUT/runs, so that points of earlier sweeps into OUT stay comparable
        write_hparams_logs(out_dir, sorted(p for p in (Path(out_dir) / "runs").iterdir()
                                           if p.is_dir()))
        return write_sweep_report(out_dir, outcome(summaries))
