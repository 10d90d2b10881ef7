"""Reproduce the report: run its experiments as ordinary runs, then compare with its numbers.

Each experiment of the zoo is one run directory, `OUT/runs/<experiment-id>` (seed 0) or
`OUT/runs/<experiment-id>-s<seed>`, trained by `train_run` with `resume=True`, so finished runs are
skipped and an interrupted one continues. `write_report` turns the run directories into
RESULTS.md, results.csv (`keras_cifar.reproduce.results`) and the figures, ours against the original
notebooks' curves; it needs only config.json, history.csv and metrics.json, so it also works
on a published `figures/` folder, which has the same layout.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from keras_cifar import errors
from keras_cifar.reproduce import results
from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.errors import ConfigError
from keras_cifar.reproduce.results import RUNS_SUBDIR, results_rows
from keras_cifar.zoo import ExperimentSpec, Zoo

RESULTS_MD = "RESULTS.md"
RESULTS_CSV = "results.csv"
NOTES_MD = "NOTES.md"
CURVES_SUBDIR = "curves"  # OUT/curves/<experiment-id>.png: each experiment against the original

# The report's comparisons: (file stem, title, experiment ids). Groups whose experiments are not
# all in the zoo are skipped, so a user's zoo gets the figures it can have.
COMPARISONS = (
    ("mlp-learning-rates", "MLP baseline: learning rates",
     ("mlp-lr0.001", "mlp-lr0.005", "mlp-lr0.1")),
    ("mlp-momenta", "MLP baseline: momenta", ("mlp-lr0.005", "mlp-m0.2", "mlp-m0.5")),
    ("mlp-widths", "MLP 1 (512-512-512) vs MLP 2 (256-256-256)", ("mlp1", "mlp2")),
    ("lenet5-learning-rates", "LeNet-5: learning rates",
     ("lenet5-lr0.001", "lenet5-lr0.01", "lenet5-lr0.1")),
    ("lenet5-momenta", "LeNet-5: momenta", ("lenet5-lr0.01", "lenet5-m0.2", "lenet5-m0.5")),
    ("cnn-widths", "CNN 1 vs 2 vs 3", ("cnn1", "cnn2", "cnn3")),
)
KERNEL_FIGURE_EXPERIMENT = "cnn3"
PARAMETER_DUMP_EXPERIMENTS = ("mlp2", "cnn3")

# Seconds per epoch on a 2-core CPU (keras-cifar's own measurements), for estimates before any
# run of a network has finished; finished runs in the output directory replace them.
DEFAULT_EPOCH_SECONDS = {"mlp-baseline": 5.0, "mlp1": 5.0, "mlp2": 3.0, "lenet5": 8.0,
                         "cnn1": 20.0, "cnn2": 35.0, "cnn3": 37.0, "airbench93": 90.0,
                         "airbench94": 250.0}


def experiment_run_dir(out_dir, experiment_id: str, seed: int = 0,
                       backend: str = "tensorflow") -> Path:
    """The run directory of an experiment in a reproduction's output directory:
    `runs/<id>[-<backend>][-s<seed>]`, the backend named off TensorFlow, so that one folder
    holds an experiment's runs on every backend."""
    return _fs.child_path(Path(out_dir) / RUNS_SUBDIR,
                          rundir.run_dir_name(results.run_label(experiment_id, backend), seed))


def select_experiments(zoo: Zoo, ids: Iterable[str] = (), network: str | None = None,
                       all_: bool = False, group: str | None = None) -> list[ExperimentSpec]:
    """Returns the chosen experiments in zoo order: `ids`, every experiment of `network`, of
    `group` (e.g. `ladder`), and with `all_` every one of the report's (those in no group).

    Raises:
        ZooError: an id, network or group is unknown.
        ConfigError: nothing was chosen.
    """
    ids = list(ids)
    chosen = {zoo.experiment(i).id for i in ids}
    if network is not None:
        chosen |= {e.id for e in zoo.experiments_of(zoo.network(network).id)}
    if group is not None:
        if group not in zoo.groups:
            from keras_cifar.zoo.spec import _unknown_message

            raise errors.ZooError(_unknown_message("group", group, zoo.groups, zoo.path))
        chosen |= {e.id for e in zoo.experiments_in(group)}
    if all_:
        chosen |= {e.id for e in zoo.report_experiments}
    if not chosen:
        raise ConfigError("Choose experiments: give their ids, `network=NETWORK`, "
                          "`group=GROUP` or `all_=True`. Known experiments: "
                          f"{', '.join(zoo.experiments)}.")
    return [e for e in zoo.experiments.values() if e.id in chosen]


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parses a seed list such as `0-2`, `0,3,5` or `0-2,7` into sorted unique seeds.

    Raises:
        ValueError: anything that is not such a list of integers in [0, 2**32 - 1].
    """
    seeds = set()
    for part in str(text).split(","):
        low, sep, high = part.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            raise ConfigError("Seeds must be integers, ranges or both, e.g. 0-2 or 0,3,5. "
                             f"Received: seeds={text!r}") from None
        if not 0 <= first <= last <= 2**32 - 1:
            raise ConfigError("Seeds must be in [0, 2**32 - 1], each range low-high with low <= "
                             f"high. Received: seeds={text!r}")
        seeds.update(range(first, last + 1))
    return tuple(sorted(seeds))


@dataclass(frozen=True)
class ExperimentStatus:
    """Where one seed of an experiment stands in an output directory."""

    experiment: ExperimentSpec
    seed: int
    run_dir: Path
    status: rundir.RunStatus
    epochs_done: int
    estimate_seconds: float  # for what is left
    estimate_basis: str = ""  # what the estimate comes from (`epoch_estimate`)

    @property
    def done(self) -> bool:
        return self.status is rundir.RunStatus.FINISHED

    def describe(self) -> str:
        """`done`, `not started`, or the state with the epochs done, e.g. `interrupted 7/40`."""
        if self.done:
            return "done"
        if self.status is rundir.RunStatus.NOT_STARTED:
            return self.status.value
        return f"{self.status.value} {self.epochs_done}/{self.experiment.train.epochs}"


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(rundir.read_history(run_dir))
    except errors.RunError:
        return 0


def epoch_estimate(out_dir: Path, network: str) -> tuple[float, str]:
    """(seconds per epoch, what they are based on) for `network` in `out_dir`: the median
    epoch of its newest run there (by the time it started, a running one included), or, with
    no measured epoch, a default measured on a 2-core CPU.

    The newest run trained on this machine with today's settings; older ones (published from
    another machine, or trained with other kernels) can be several times slower or faster,
    and a machine busy with other work is slower than when the epochs were measured.
    """
    newest: tuple[str, list[float]] | None = None
    for config_path in sorted((Path(out_dir) / RUNS_SUBDIR).glob(f"*/{rundir.CONFIG}")):
        try:
            saved = rundir.read_run(config_path.parent)
            if saved.network_id != network:
                continue
            seconds = [r["seconds"] for r in rundir.read_history(config_path.parent)
                       if "seconds" in r]
        except errors.RunError:
            continue
        started = saved.started
        if seconds and (newest is None or started > newest[0]):
            newest = (started, seconds, config_path.parent.name)
    if newest:
        return (statistics.median(newest[1]),
                f"measured: the median of {len(newest[1])} epoch(s) of {newest[2]}")
    return DEFAULT_EPOCH_SECONDS.get(network, 10.0), "default: measured on a 2-core CPU"


def experiment_status(zoo: Zoo, experiments: Iterable[ExperimentSpec], out_dir,
                      seeds: Iterable[int] = (0,),
                      backend: str | None = None) -> list[ExperimentStatus]:
    """Returns the state (a `rundir.RunStatus`) and time left of each experiment and
    seed on `backend` (None: this process's, `backends.requested_backend`), seed by seed,
    experiments in the given order within a seed."""
    from keras_cifar.backends import requested_backend

    backend = backend or requested_backend()
    out_dir = Path(out_dir)
    experiments = list(experiments)
    estimates = {}  # each network's histories read once, not per experiment
    result = []
    for seed in seeds:
        for e in experiments:
            run_dir = experiment_run_dir(out_dir, e.id, seed, backend)
            status = rundir.run_status(run_dir)
            done = _epochs_done(run_dir)
            left = 0 if status is rundir.RunStatus.FINISHED else max(e.train.epochs - done, 0)
            if left and e.network not in estimates:
                estimates[e.network] = epoch_estimate(out_dir, e.network)
            per_epoch, basis = estimates.get(e.network, (0.0, "")) if left else (0.0, "")
            result.append(ExperimentStatus(e, seed, run_dir, status, done, left * per_epoch,
                                           basis))
    return result


def longest_first(statuses: Iterable[ExperimentStatus]) -> list[ExperimentStatus]:
    """Orders runs seed by seed and, within a seed, by estimated time left, longest first
    (ties keep their order).

    Concurrent workers take the next job as they come free, so handing out the long ones first
    leaves only short ones for the end, instead of one worker running the last long experiment
    alone on its share of the cores while the others idle. Seed by seed, so that an
    interrupted reproduction has whole seeds finished rather than a bit of each.
    """
    return sorted(statuses, key=lambda st: (st.seed, -st.estimate_seconds))


def experiment_jobs(zoo: Zoo, statuses: Iterable[ExperimentStatus], data_spec, out_dir, *,
                    init: str | None = None, limit: int | None = None,
                    retry_diverged: bool = False) -> list:
    """Returns one `executors.Job` per experiment and seed, its run directory under `out_dir`."""
    from keras_cifar.training.config import RunConfig
    from keras_cifar.reproduce.executors import Job, prepare_shared_dir

    marker = prepare_shared_dir(out_dir)
    jobs = []
    for st in statuses:
        t = st.experiment.train
        config = RunConfig.of(zoo.network(st.experiment.network), lr=t.lr, momentum=t.momentum,
                              epochs=t.epochs, batch_size=t.batch_size, seed=st.seed, init=init,
                              limit=limit, data=data_spec,
                              recipe=zoo.recipe(st.experiment.recipe))
        jobs.append(Job(config, run_dir=str(st.run_dir), out_dir=str(out_dir), marker=marker,
                        retry_diverged=retry_diverged))
    return jobs


def reproduce(zoo: Zoo, experiments: Iterable[ExperimentSpec], data_spec, out_dir, *,
              seeds: Iterable[int] = (0,), init: str | None = None, limit: int | None = None,
              executor: str = "local", workers: int = 1, address: str | None = None,
              on_start: Callable | None = None, on_outcome: Callable | None = None,
              retry_diverged: bool = False) -> Path:
    """Runs experiments (finished ones are skipped, interrupted ones resume), then the report.

    Args:
        zoo: the zoo the experiments come from.
        experiments: what to run, e.g. from `select_experiments`.
        data_spec: a `data.DataSpec`; each worker loads the data itself.
        out_dir: where runs/<experiment-id>/, RESULTS.md, results.csv and the figures go.
        seeds: each experiment runs once per seed (`runs/<id>` for seed 0, `runs/<id>-s<seed>`).
        init, limit: as for `train_run`.
        executor, workers, address: where the runs happen (see `executors.run_jobs`); with
            more than one at a time, each seed's experiments go out longest first
            (`longest_first`).
        on_start: called with (job, index, total) as each experiment is handed out.
        on_outcome: called with what the runs came to (`executors.outcome`: "14 finished,
            1 diverged (...)").
        retry_diverged: train runs that diverged before again; by default a run whose loss
            became NaN is a result (`diverged`, with its epoch) and the others still run.

    Returns:
        The path of RESULTS.md. `out_dir/tensorboard/` holds the runs' TensorBoard HParams
        logs (`tensorboard --logdir OUT`).
    """
    from keras_cifar.backends import requested_backend
    from keras_cifar.reproduce.executors import outcome, run_jobs
    from keras_cifar.reproduce.hparams import write_hparams_logs

    _fs.check_output_dir(out_dir)
    with _fs.lock_run_dir(out_dir, what="reproduction's output directory", then=_fs.RERUN_HINT):
        statuses = experiment_status(zoo, experiments, out_dir, seeds)
        if executor != "local" or workers > 1:
            statuses = longest_first(statuses)
        jobs = experiment_jobs(zoo, statuses, data_spec, out_dir, init=init, limit=limit,
                               retry_diverged=retry_diverged)
        summaries = run_jobs(jobs, executor=executor, workers=workers, address=address,
                             on_start=on_start)
        if on_outcome:
            on_outcome(outcome(summaries))
        backend = requested_backend()
        done = {run.run_dir: e.id for e in zoo.experiments.values()  # this call's and earlier
                for run in results.finished_runs(out_dir, e, backend=backend)}
        done.update({run_dir: e.id for e in zoo.experiments.values()
                     for _, _, run_dir in results.diverged_runs(out_dir, e, backend=backend)})
        write_hparams_logs(out_dir, done, {d.name: i for d, i in done.items()})
        return write_report(zoo, out_dir)


def data_note(rows: list[results.ResultRow]) -> str:
    """Says what data the runs were trained on (from their config.json)."""
    sources = set()
    for r in rows:
        for run in r.runs:
            saved = rundir.read_run(run.run_dir)
            data = saved.data
            if not saved.is_cifar10:
                sources.add("synthetic data (not CIFAR-10)")
            elif data.get("format") == "image-folder":
                sources.add("CIFAR-10 from an image-folder copy (the project's is JPEG-re-encoded "
                            "at quality 75, which costs a little accuracy against the original "
                            "release)")
            else:
                sources.add(f"CIFAR-10 ({data.get('format', '?')})")
            if saved.limit:
                sources.add(f"a class-stratified subset of {saved.limit} images per split")
    return "Data: " + "; ".join(sorted(sources)) + "." if sources else "No finished runs yet."


def _comparison_title(zoo: Zoo, title: str, ids: tuple[str, ...]) -> str:
    """The group's title with the settings its experiments share, as run."""
    shared = []
    for key, label in (("lr", "lr"), ("momentum", "momentum"), ("epochs", "epochs")):
        values = {getattr(zoo.experiment(i).train, key) for i in ids}
        if len(values) == 1:
            shared.append(f"{label} {values.pop():g}")
    return f"{title} ({', '.join(shared)})" if shared else title


def write_report(zoo: Zoo, out_dir) -> Path:
    """Writes RESULTS.md, results.csv and the figures from the runs in `out_dir`.

    The table has one row per experiment over its finished seeds, against the original
    notebooks' numbers and, where `out_dir/torch/` holds them, the PyTorch reference's. A
    NOTES.md in `out_dir` (findings written by a person) is included in RESULTS.md. Figures:
    the report's comparisons and one per experiment (`curves/<id>.png`), ours against the
    original's curve; CNN 3's first-layer kernels and the parameter dumps of MLP 2 and CNN 3
    when their seed-0 runs hold model.keras / parameters.txt.

    Returns:
        The path of RESULTS.md.
    """
    from keras_cifar.plots.figures import plot_against_original, plot_kernels

    out_dir = Path(out_dir)
    curves = results.read_original_curves()
    rows = results_rows(zoo, out_dir, curves)
    by_id = {r.id: r for r in rows}

    def group(row: results.ResultRow, label: str) -> dict:
        return {"label": label, "ours": [run.history for run in row.runs],
                "original": curves.get(row.id),
                "reference": [run.history for run in row.reference_runs]}

    figures = []
    for stem, title, ids in COMPARISONS:
        if all(i in by_id for i in ids):
            groups = [group(by_id[i], f"{i} (lr {by_id[i].lr:g}, m {by_id[i].momentum:g})")
                      for i in ids]
            plot_against_original(groups, out_dir / f"{stem}.png",
                                  _comparison_title(zoo, title, ids))
            figures.append(f"{stem}.png")
    for r in rows:
        figure = f"{CURVES_SUBDIR}/{r.id}.png"
        name = r.id if r.id == r.network else f"{r.id} ({r.network})"
        plot_against_original([group(r, r.id)], out_dir / figure,
                              f"{name}: lr {r.lr:g}, momentum {r.momentum:g}, {r.epochs} epochs")
        figures.append(figure)
    kernel_run = experiment_run_dir(out_dir, KERNEL_FIGURE_EXPERIMENT)
    kernel_png = out_dir / f"{KERNEL_FIGURE_EXPERIMENT}-kernels.png"
    if KERNEL_FIGURE_EXPERIMENT in by_id and (kernel_run / rundir.MODEL).exists():
        from keras_cifar.serving.predict import load_model_file

        plot_kernels(load_model_file(kernel_run / rundir.MODEL), kernel_png)
    if kernel_png.exists():
        figures.append(kernel_png.name)
    for experiment_id in PARAMETER_DUMP_EXPERIMENTS:
        source = experiment_run_dir(out_dir, experiment_id) / rundir.PARAMETERS
        if experiment_id in by_id and source.exists():
            shutil.copyfile(source, out_dir / f"{experiment_id}-parameters.txt")
    _fs.atomic_write_text(out_dir / RESULTS_CSV, results.results_csv(rows))
    notes = (out_dir / NOTES_MD).read_text(encoding="utf-8") if (out_dir / NOTES_MD).exists() else ""
    diverged = [f"- **{e.id}**, seed {seed}: the loss became NaN in epoch {epoch} "
                f"(`{run_dir.parent.name}/{run_dir.name}`); not in the means above."
                for e in zoo.experiments.values()
                for seed, epoch, run_dir in results.diverged_runs(out_dir, e)]
    if diverged:
        notes = "\n".join(["## Diverged runs", "", *diverged, "", notes])
    _fs.atomic_write_text(out_dir / RESULTS_MD,
                           results.results_markdown(rows, data_note(rows), figures, notes))
    from keras_cifar.reproduce.backend_table import write_backend_table
    from keras_cifar.reproduce.ladder import write_ladder

    write_ladder(zoo, out_dir)  # where the ladder's rungs ran
    write_backend_table(zoo, out_dir)  # where runs on JAX or PyTorch are
    return out_dir / RESULTS_MD


PUBLISHED_RUN_FILES = (rundir.CONFIG, rundir.HISTORY, rundir.METRICS)


def publish(zoo: Zoo, out_dir, destination) -> Path:
    """Copies the finished runs' small files and the report into `destination` (no models).

    `destination/runs/<run>/` (and `destination/torch/<run>/` for the PyTorch reference) get
    config.json, history.csv and metrics.json of every finished run, all seeds; the kernel
    figure, parameter dumps and NOTES.md are copied; then the report is written there afresh,
    so `write_report(zoo, destination)` (`keras-cifar reproduce report`) regenerates it exactly.

    Returns:
        The path of destination/RESULTS.md.

    Raises:
        RunError: `destination` is `out_dir` itself.
    """
    out_dir, destination = Path(out_dir), Path(destination)
    if destination.resolve() == out_dir.resolve():
        raise errors.RunError(
            f"{destination} is the reproduction's own folder: publishing copies its runs "
            "elsewhere. Choose another destination, or redraw the table and figures in place "
            f"with `keras-cifar reproduce report`. Received: destination={str(destination)!r}, "
            f"out_dir={str(out_dir)!r}")
    for subdir in (RUNS_SUBDIR, results.TORCH_SUBDIR):
        if not (out_dir / subdir).is_dir():
            continue
        for source in sorted((out_dir / subdir).iterdir()):
            if rundir.run_status(source) != rundir.STATUS_FINISHED:
                continue
            target = destination / subdir / source.name
            target.mkdir(parents=True, exist_ok=True)
            for file_name in PUBLISHED_RUN_FILES:
                shutil.copyfile(source / file_name, target / file_name)
    extras = [f"{KERNEL_FIGURE_EXPERIMENT}-kernels.png", NOTES_MD] + [
        f"{i}-parameters.txt" for i in PARAMETER_DUMP_EXPERIMENTS]
    for file_name in extras:
        if (out_dir / file_name).exists():
            shutil.copyfile(out_dir / file_name, destination / file_name)
    return write_report(zoo, destination)
