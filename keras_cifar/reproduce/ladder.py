"""The ladder: from the report's CNN 3 to airbench93, one change at a time.

Its rungs are the zoo's `ladder` experiments, trained by `reproduce run --group ladder` like
any other; this module turns their run directories into LADDER.md (mean +- sd over seeds,
epochs, minutes, and each rung's gain over the one before with its standard error) and
ladder.png (test accuracy against training minutes, one line per rung). Like RESULTS.md it
needs only config.json, history.csv and metrics.json, so it redraws from a published folder.

A rung that trains exactly what another experiment trains, differing at most in test-time
augmentation ((g) and (h): TTA changes the final evaluation, not the training; (a) and the
report's `cnn3`: the same run), needs no runs of its own: without its own it reads the other's
runs, evaluated its way (`test_accuracy` for no TTA), and a gain between two rungs over the
same runs is paired, seed by seed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from keras_cifar import _fs
from keras_cifar.reproduce import results
from keras_cifar.zoo import ExperimentSpec, Zoo
from keras_cifar.zoo.recipe import Recipe

LADDER_GROUP = "ladder"
LADDER_MD = "LADDER.md"
LADDER_CSV = "ladder.csv"
LADDER_PNG = "ladder.png"
# A gain is called real when it is at least this many standard errors from zero.
NOISE_SE = 2.0


class SeedSpread:
    """Mean, sample sd and standard error of the mean over the seeds' `accuracies` (for a
    class that has them), as `gain` compares them."""

    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else None

    @property
    def standard_error(self) -> float | None:
        return None if self.sd is None else self.sd / math.sqrt(len(self.accuracies))


@dataclass(frozen=True)
class Rung(SeedSpread):
    """One rung over its finished seeds.

    Attributes:
        experiment: the zoo experiment.
        runs: its finished runs (or, see `trained_as`, those of the rung it trains as).
        accuracies: each seed's final test accuracy, with test-time augmentation where the
            rung's recipe has it (`metrics.json`'s `tta_test_accuracy`).
        minutes: each seed's training minutes: its epochs times its median epoch's wall clock
            (`run_minutes`).
        cpus: the CPU models the runs record.
        trained_as: the id of the rung whose runs these are, when the rung has none of its
            own and trains exactly as that one (`same_training`); None for its own runs.
    """

    experiment: ExperimentSpec
    runs: tuple
    accuracies: tuple[float, ...]
    minutes: tuple[float, ...]
    cpus: tuple[str, ...]
    trained_as: str | None = None


def final_accuracy(run: results.FinishedRun, tta: bool) -> float:
    """A run's final test accuracy: test-time augmented (`tta_test_accuracy`) when `tta`,
    else its last epoch's plain test accuracy."""
    if tta and "tta_test_accuracy" in run.metrics:
        return float(run.metrics["tta_test_accuracy"])
    return float(run.final_accuracy)


def _training_settings(experiment: ExperimentSpec) -> tuple:
    """What an experiment's training computes: its network, SGD numbers and recipe settings
    but for test-time augmentation, which only changes the final evaluation."""
    t = experiment.train
    recipe = (json.loads(experiment.recipe_settings) if experiment.recipe_settings is not None
              else Recipe().settings())
    recipe.pop("tta", None)
    return (experiment.network, t.lr, t.momentum, t.epochs, t.batch_size,
            json.dumps(recipe, sort_keys=True))


def same_training(zoo: Zoo, a: ExperimentSpec, b: ExperimentSpec) -> bool:
    """Whether runs of `b` are runs of `a` too, evaluated `a`'s way: both train the same
    network with the same settings and recipe, and `a` either uses no test-time augmentation
    (every run records its plain test accuracy) or the same as `b`."""
    tta = zoo.recipe(a.recipe).tta
    return (_training_settings(a) == _training_settings(b)
            and tta in ("none", zoo.recipe(b.recipe).tta))


def ladder_rungs(zoo: Zoo, out_dir) -> list[Rung]:
    """The ladder's rungs with at least one finished seed in `out_dir`, in zoo order; a rung
    with none of its own reads those in `out_dir` of an experiment it trains exactly as
    (`same_training`): another rung first, else any of the zoo's (rung (a) is the report's
    `cnn3`)."""
    experiments = zoo.experiments_in(LADDER_GROUP)
    others = [e for e in zoo.experiments.values() if e.group != LADDER_GROUP]
    runs_of = {e.id: results.finished_runs(out_dir, e) for e in experiments}
    rungs = []
    for experiment in experiments:
        runs, trained_as = runs_of[experiment.id], None
        if not runs:
            twin = next((other for other in experiments + others if other.id != experiment.id
                         and same_training(zoo, experiment, other)
                         and _finished(runs_of, out_dir, other)), None)
            if twin is None:
                continue
            runs, trained_as = runs_of[twin.id], twin.id
        tta = zoo.recipe(experiment.recipe).tta != "none"
        rungs.append(Rung(
            experiment=experiment, runs=tuple(runs),
            accuracies=tuple(final_accuracy(r, tta) for r in runs),
            minutes=tuple(run_minutes(r) for r in runs),
            cpus=results.recorded_cpus(runs),
            trained_as=trained_as,
        ))
    return rungs


def _finished(runs_of: dict, out_dir, experiment: ExperimentSpec) -> list:
    """`experiment`'s finished runs in `out_dir`, read once into `runs_of`."""
    if experiment.id not in runs_of:
        runs_of[experiment.id] = results.finished_runs(out_dir, experiment)
    return runs_of[experiment.id]


def run_minutes(run: results.FinishedRun) -> float:
    """A run's training minutes as its epochs times its median epoch: an epoch stretched by
    the machine being paused or shared for a while (a benchmark timed beside the ladder)
    does not count, the first epoch's tracing barely does."""
    seconds = [row.get("seconds", 0.0) for row in run.history]
    return len(seconds) * statistics.median(seconds) / 60 if seconds else 0.0


def gain(previous: SeedSpread, rung: SeedSpread) -> tuple[float, float | None]:
    """(mean difference, its standard error sqrt(se1^2 + se2^2)); None where a side has one
    seed."""
    difference = rung.mean - previous.mean
    if previous.standard_error is None or rung.standard_error is None:
        return difference, None
    return difference, math.hypot(previous.standard_error, rung.standard_error)


def rung_gain(previous: Rung, rung: Rung) -> tuple[float, float | None]:
    """`gain` between two rungs; over the same runs (a rung evaluated two ways) the seeds
    pair up, and the standard error is that of the per-seed differences (None for one)."""
    if [r.run_dir for r in previous.runs] != [r.run_dir for r in rung.runs]:
        return gain(previous, rung)
    differences = [b - a for a, b in zip(previous.accuracies, rung.accuracies)]
    se = (statistics.stdev(differences) / math.sqrt(len(differences))
          if len(differences) > 1 else None)
    return statistics.fmean(differences), se


def gain_words(difference: float, se: float | None) -> str:
    """`+3.1 +- 0.4 points`, and whether it is within seed noise (NOISE_SE standard errors)."""
    text = f"{100 * difference:+.2f}"
    if se is None:
        return text + " (one seed: noise unknown)"
    text += f" +- {100 * se:.2f}"
    if abs(difference) < NOISE_SE * se:
        return text + " (within seed noise)"
    return text


def ladder_markdown(zoo: Zoo, rungs: list[Rung]) -> str:
    """LADDER.md: the table, then the notes on what each rung changes."""
    lines = [
        "# The ladder: from the report's CNN 3 to airbench93",
        "",
        "Each rung changes one thing (the zoo's `ladder` experiments; `keras-cifar reproduce "
        "run --group ladder`). Accuracy: the final test accuracy, mean +- sample sd over "
        "seeds, with test-time augmentation only where the rung's recipe has it (h). Minutes: "
        "mean training time per run on the CPU in its row (epochs x the run's median epoch; "
        "CPUs differ several-fold, so compare minutes within one CPU). Gain: the difference of "
        f"means from the rung above +- its standard error; within {NOISE_SE:g} standard errors "
        "it is called seed noise. A rung that trains exactly as another experiment, differing at "
        "most in test-time augmentation, reads that experiment's runs (seeds: `of <id>`; "
        "(a) is the report's `cnn3`), and a gain between two rungs over the same runs is "
        "paired seed by seed.",
        "",
        "| rung | network | recipe | seeds | epochs | accuracy | minutes | CPU | gain (points) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    previous = None
    for rung in rungs:
        e = rung.experiment
        accuracy = f"{rung.mean:.2%}" + (f" +- {100 * rung.sd:.2f}" if rung.sd is not None else "")
        gain_text = "" if previous is None else gain_words(*rung_gain(previous, rung))
        seeds = f"{len(rung.accuracies)}" + (f" of {rung.trained_as}" if rung.trained_as else "")
        lines.append(f"| {e.title or e.id} | {e.network} | {e.recipe} | {seeds} | "
                     f"{e.train.epochs} | {accuracy} | {statistics.fmean(rung.minutes):.1f} | "
                     f"{', '.join(rung.cpus) or 'not recorded'} | {gain_text} |")
        previous = rung
    lines += ["", "## The rungs", ""]
    for rung in rungs:
        e = rung.experiment
        recipe = zoo.recipe(e.recipe)
        t = e.train
        whose = ("" if rung.trained_as is None else
                 f"those of `{rung.trained_as}`, which trains exactly the same, evaluated "
                 + ("without test-time augmentation: " if recipe.tta == "none" else "the same way: "))
        lines.append(f"- **{e.title or e.id}** (`{e.id}`): {e.network}, recipe `{recipe.id}` "
                     f"({recipe.describe()}); lr {t.lr:g}, momentum {t.momentum:g}, batch "
                     f"{t.batch_size}, {t.epochs} epochs. Runs: {whose}"
                     + ", ".join(f"`{r.run_dir.parent.name}/{r.run_dir.name}` "
                                 f"{a:.2%}" for r, a in zip(rung.runs, rung.accuracies)) + ".")
        if e.original is not None and e.original.test_accuracy is not None:
            lines.append(f"  Published: {e.original.test_accuracy:.1%} ({e.original.source}).")
    return "\n".join(lines) + "\n"


def ladder_csv(rungs: list[Rung]) -> str:
    """One line per rung and seed: the numbers behind the table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["experiment", "seed", "accuracy", "minutes", "run_dir", "cpu"])
    for rung in rungs:
        for run, accuracy, minutes in zip(rung.runs, rung.accuracies, rung.minutes):
            writer.writerow([rung.experiment.id, run.seed, f"{accuracy:.4f}", f"{minutes:.2f}",
                             f"{run.run_dir.parent.name}/{run.run_dir.name}", run.cpu])
    return out.getvalue()


def ladder_figure(rungs: list[Rung]):
    """Test accuracy against training minutes: each rung's mean curve over its seeds, with
    its final (test-time-augmented) mean as a marker."""
    from keras_cifar.plots.figures import _figure

    fig, axes = _figure(1, 1, figsize=(8, 5), squeeze=False)
    ax = axes[0][0]
    several_cpus = len({cpu for rung in rungs for cpu in rung.cpus}) > 1
    for rung in rungs:
        epochs = min(len(r.history) for r in rung.runs)
        minutes, accuracy = [], []
        for epoch in range(epochs):
            minutes.append(statistics.fmean(
                sum(row.get("seconds", 0.0) for row in r.history[:epoch + 1]) / 60 for r in rung.runs))
            accuracy.append(statistics.fmean(r.history[epoch]["val_accuracy"] for r in rung.runs))
        label = rung.experiment.title or rung.experiment.id
        if several_cpus:  # minutes on different CPUs differ several-fold: say whose
            label += f" [{', '.join(rung.cpus) or 'CPU not recorded'}]"
        (line,) = ax.plot(minutes, accuracy, marker=".", label=label)
        ax.plot([minutes[-1]], [rung.mean], marker="*", markersize=10, color=line.get_color())
    ax.set_xlabel("training minutes (mean over seeds)")
    ax.set_ylabel("test accuracy")
    ax.set_title("The ladder: one change at a time (star: final, with TTA where used)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def write_ladder(zoo: Zoo, out_dir) -> Path | None:
    """Writes LADDER.md, ladder.csv and ladder.png into `out_dir` from its ladder runs;
    returns LADDER.md's path, or None when no rung has a finished run of its own there (a
    report's folder, whose cnn3 runs alone would make rung (a), gets no ladder)."""
    from keras_cifar.plots.figures import _save

    out_dir = Path(out_dir)
    rungs = ladder_rungs(zoo, out_dir)
    if all(rung.trained_as is not None for rung in rungs):
        return None
    _fs.atomic_write_text(out_dir / LADDER_CSV, ladder_csv(rungs))
    _save(ladder_figure(rungs), out_dir / LADDER_PNG)
    path = out_dir / LADDER_MD
    _fs.atomic_write_text(path, ladder_markdown(zoo, rungs))
    return path
