"""The backend table: the same experiments trained on TensorFlow, JAX and PyTorch.

`reproduce run ... --backend jax` puts its runs beside TensorFlow's in the same output folder
(`runs/<id>-jax[-s<seed>]`, `experiments.experiment_run_dir`). Where any experiment there has
finished runs on JAX or PyTorch, this writes BACKENDS.md and backends.csv: for each experiment
and backend, the final test accuracy (mean +- sample sd over seeds), its difference from
TensorFlow's mean +- the standard error of that difference, whether that is within seed noise
(`ladder.NOISE_SE` standard errors, the ladder's rule), and the minutes per run (epochs x the
median epoch, `ladder.run_minutes`). Like RESULTS.md it needs only the runs' config.json,
history.csv and metrics.json, so it redraws from a published folder.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from pathlib import Path

from keras_cifar import _fs
from keras_cifar.backends import BACKENDS, DEFAULT_BACKEND
from keras_cifar.reproduce import results
from keras_cifar.reproduce.ladder import NOISE_SE, SeedSpread, gain, gain_words, run_minutes
from keras_cifar.zoo import ExperimentSpec, Zoo

BACKENDS_MD = "BACKENDS.md"
BACKENDS_CSV = "backends.csv"
BACKENDS_CSV_COLUMNS = ("experiment", "backend", "version", "seeds", "mean_accuracy", "sd",
                        "difference", "difference_se", "within_noise", "minutes", "cpu", "runs")


@dataclass(frozen=True)
class BackendRuns(SeedSpread):
    """One experiment's finished runs on one backend."""

    backend: str
    runs: tuple

    @property
    def accuracies(self) -> tuple[float, ...]:
        return tuple(r.final_accuracy for r in self.runs)

    @property
    def versions(self) -> str:
        """The backend's versions the runs record, e.g. `0.10.2`."""
        return ", ".join(sorted({r.backend_version for r in self.runs if r.backend_version}))

    @property
    def minutes(self) -> float:
        return statistics.fmean(run_minutes(r) for r in self.runs)

    @property
    def cpus(self) -> str:
        """The CPU models the runs record, e.g. `AMD EPYC`; empty for runs from before
        config.json recorded one."""
        return ", ".join(results.recorded_cpus(self.runs))


def backend_rows(zoo: Zoo, out_dir) -> list[tuple[ExperimentSpec, dict[str, BackendRuns]]]:
    """(experiment, {backend: its runs}) for each experiment with finished runs on a backend
    other than TensorFlow in `out_dir`, in zoo order; TensorFlow's runs are included where
    there are any."""
    rows = []
    for experiment in zoo.experiments.values():
        found = {b: BackendRuns(b, tuple(runs)) for b in BACKENDS
                 if (runs := results.finished_runs(out_dir, experiment, backend=b))}
        if any(b != DEFAULT_BACKEND for b in found):
            rows.append((experiment, found))
    return rows


def _against_tensorflow(by_backend: dict[str, BackendRuns], backend: str):
    """(difference, its standard error, within noise) of `backend` against TensorFlow, or
    Nones without TensorFlow runs or for TensorFlow itself."""
    reference = by_backend.get(DEFAULT_BACKEND)
    if reference is None or backend == DEFAULT_BACKEND:
        return None, None, None
    difference, se = gain(reference, by_backend[backend])
    return difference, se, (None if se is None else abs(difference) < NOISE_SE * se)


def backend_markdown(rows) -> str:
    """BACKENDS.md: one line per experiment and backend."""
    lines = [
        "# The same experiments on each Keras backend",
        "",
        "keras-cifar's own training path (`reproduce run ... --backend B`) on the same data and "
        "seeds. Accuracy: the final-epoch test accuracy, mean +- sample sd over seeds. "
        "Against TensorFlow: the difference of means +- its standard error; within "
        f"{NOISE_SE:g} standard errors it is called seed noise. Minutes: mean training time "
        "per run (epochs x the run's median epoch) on the CPU in its row; CPUs differ "
        "several-fold, so minutes compare within one CPU only.",
        "",
        "| experiment | backend | version | seeds | accuracy | against TensorFlow (points) | minutes "
        "| CPU | runs |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for experiment, by_backend in rows:
        for backend, cell in by_backend.items():
            difference, se, _ = _against_tensorflow(by_backend, backend)
            against = "" if difference is None else gain_words(difference, se)
            sd = "" if cell.sd is None else f" +- {100 * cell.sd:.2f}"
            runs = ", ".join(f"`{r.run_dir.parent.name}/{r.run_dir.name}`" for r in cell.runs)
            lines.append(f"| {experiment.id} | {backend} | {cell.versions} | {len(cell.runs)} | "
                         f"{100 * cell.mean:.2f}%{sd} | {against} | {cell.minutes:.1f} | "
                         f"{cell.cpus or 'not recorded'} | {runs} |")
    return "\n".join(lines + [""])


def backend_csv(rows) -> str:
    """backends.csv: BACKENDS_CSV_COLUMNS, one row per experiment and backend."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BACKENDS_CSV_COLUMNS)
    for experiment, by_backend in rows:
        for backend, cell in by_backend.items():
            difference, se, within = _against_tensorflow(by_backend, backend)
            writer.writerow([experiment.id, backend, cell.versions, len(cell.runs),
                             f"{cell.mean:.6f}",
                             "" if cell.sd is None else f"{cell.sd:.6f}",
                             "" if difference is None else f"{difference:.6f}",
                             "" if se is None else f"{se:.6f}",
                             "" if within is None else str(within).lower(),
                             f"{cell.minutes:.2f}", cell.cpus,
                             " ".join(r.run_dir.name for r in cell.runs)])
    return out.getvalue()


def write_backend_table(zoo: Zoo, out_dir) -> Path | None:
    """Writes BACKENDS.md and backends.csv into `out_dir` when it holds runs on JAX or
    PyTorch; returns BACKENDS.md's path, or None (nothing written) when it holds none."""
    out_dir = Path(out_dir)
    rows = backend_rows(zoo, out_dir)
    if not rows:
        return None
    _fs.atomic_write_text(out_dir / BACKENDS_CSV, backend_csv(rows))
    _fs.atomic_write_text(out_dir / BACKENDS_MD, backend_markdown(rows))
    return out_dir / BACKENDS_MD
