"""Figures drawn from saved files: curves from history.csv, kernels from a model, confusion
matrices from metrics.json. Nothing here trains, so every figure can be redrawn at any time."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.errors import ModelFileError

DPI = 110


class InlineFigure(Figure):
    """A `Figure` that Jupyter shows as a PNG when it is a cell's value.

    The figures here are drawn with matplotlib's object API, never pyplot, so they change no
    backend; a notebook only renders a figure inline by itself once pyplot's inline backend
    is active, hence `_repr_png_`, which IPython calls for any object.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        return buffer.getvalue()


def _figure(rows: int = 1, columns: int = 1, **options):
    """A figure and its axes from matplotlib's object API: no pyplot, no global backend, so
    drawing here never changes a notebook's or application's matplotlib state."""
    figure = InlineFigure(figsize=options.pop("figsize", None))
    return figure, figure.subplots(rows, columns, **options)


def _epochs(rows: list[dict]) -> np.ndarray:
    # history.csv counts epochs from 0, as Keras does; people count from 1.
    return np.array([row["epoch"] for row in rows]) + 1


def _save(fig, path: str | os.PathLike) -> Path:
    _fs.atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=DPI, bbox_inches="tight",
                                                    format="png"), suffix=".png")
    return Path(path)


def plot_curves(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Writes `curves_figure(rows, title)` as a PNG at `path`."""
    return _save(curves_figure(rows, title), path)


def curves_figure(rows: list[dict], title: str = "") -> Figure:
    """Returns loss and accuracy against epoch, train and test, as the report draws them.

    Args:
        rows: history rows (`rundir.read_history`).
        title: the figure's title.

    Returns:
        A `matplotlib.figure.Figure` (shown inline when it is a notebook cell's value).
    """
    fig, (ax_loss, ax_acc) = _figure(1, 2, figsize=(10, 3.8))
    x = _epochs(rows)
    for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(x, [r.get(key, np.nan) for r in rows], "o-", ms=3, label="train")
        ax.plot(x, [r.get(f"val_{key}", np.nan) for r in rows], "o-", ms=3, label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(histories: Sequence[tuple[str, list[dict]]], path: str | os.PathLike,
                    title: str = "") -> Path:
    """Draws test accuracy and test loss against epoch for several runs, one line each.

    Args:
        histories: (label, history rows) per run.
        path: the PNG to write.
        title: the figure's title.
    """
    fig = comparison_figure(histories, title)
    return _save(fig, path)


def comparison_figure(histories: Sequence[tuple[str, list[dict]]], title: str = "") -> Figure:
    """The figure of `plot_comparison`. One legend for both panels, below them, so that it
    never covers a curve however many runs there are or however long their labels."""
    fig, (ax_acc, ax_loss) = _figure(1, 2, figsize=(10, 3.8))
    for label, rows in histories:
        x = _epochs(rows)
        ax_acc.plot(x, [r.get("val_accuracy", np.nan) for r in rows], "o-", ms=2.5, label=label)
        ax_loss.plot(x, [r.get("val_loss", np.nan) for r in rows], "o-", ms=2.5, label=label)
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
               ncol=1 if max(map(len, labels), default=0) > 45 else min(len(labels), 3),
               frameon=False)
    _label_test_panels(fig, ax_acc, ax_loss, "test loss (mean cross-entropy)", title)
    return fig


def _finish_test_panels(fig, ax_acc, ax_loss, loss_label: str, title: str, path) -> Path:
    """Labels an accuracy and a loss panel against epoch, adds the title, saves the figure."""
    _label_test_panels(fig, ax_acc, ax_loss, loss_label, title)
    return _save(fig, path)


def _label_test_panels(fig, ax_acc, ax_loss, loss_label: str, title: str) -> None:
    """Labels an accuracy and a loss panel against epoch and adds the title."""
    ax_acc.set_ylabel("test accuracy")
    ax_loss.set_ylabel(loss_label)
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)


def _seed_band(histories: Sequence[list[dict]], key: str):
    """(epochs, mean, min, max) of `key` over runs, on the epochs every run has."""
    length = min(len(rows) for rows in histories)
    values = np.array([[r.get(key, np.nan) for r in rows[:length]] for rows in histories],
                      dtype=float)
    return (np.arange(length) + 1, values.mean(axis=0), values.min(axis=0), values.max(axis=0))


def plot_against_original(groups: Sequence[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Draws test accuracy and test loss (notebook scale) against epoch: ours against the
    original's, one colour per experiment.

    Args:
        groups: one dict per experiment: `label`; `ours`, a list of history rows per seed
            (drawn as the seed mean, with the seeds' min-max as a band); optionally
            `original`, the original notebook's curve (rows with `test_accuracy`,
            `test_loss`; dashed) and `reference`, PyTorch histories per seed (dotted).
        path: the PNG to write.
        title: the figure's title.
    """
    fig, (ax_acc, ax_loss) = _figure(1, 2, figsize=(11, 4))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, group in enumerate(groups):
        colour = colours[index % len(colours)]
        n = len(group["ours"])
        for ax, key in ((ax_acc, "val_accuracy"), (ax_loss, "val_notebook_loss")):
            x, mean, low, high = _seed_band(group["ours"], key)
            ax.plot(x, mean, "-", color=colour, lw=1.6,
                    label=f"{group['label']}: ours ({n} seed{'s' if n != 1 else ''})")
            if n > 1:
                ax.fill_between(x, low, high, color=colour, alpha=0.18, lw=0)
        if group.get("original"):
            x = _epochs(group["original"])
            ax_acc.plot(x, [r["test_accuracy"] for r in group["original"]], "--", color=colour,
                        lw=1.2, label=f"{group['label']}: original")
            ax_loss.plot(x, [r["test_loss"] for r in group["original"]], "--", color=colour, lw=1.2)
        if group.get("reference"):
            m = len(group["reference"])
            for ax, key in ((ax_acc, "val_accuracy"), (ax_loss, "val_notebook_loss")):
                x, mean, _, _ = _seed_band(group["reference"], key)
                ax.plot(x, mean, ":", color=colour, lw=1.6,
                        label=f"{group['label']}: PyTorch ({m} seed{'s' if m != 1 else ''})"
                        if ax is ax_acc else None)
    ax_acc.legend(fontsize=7)
    return _finish_test_panels(fig, ax_acc, ax_loss, "test loss (notebook scale, ~ mean CE / 64)",
                               title, path)


def first_layer_kernels(model) -> tuple[str, np.ndarray]:
    """Returns (kind, tiles): the first weighted layer's kernels as RGB images.

    For a convolution, each filter (kh, kw, 3); for a dense first layer, the weights of each
    unit reshaped to the 32x32x3 input. Each tile is min-max normalised to [0, 1] on its own,
    as the report's figure does.

    Raises:
        ModelFileError: the model has no conv or dense layer over RGB input.
    """
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kernel = weights[0]
        if kernel.ndim == 4 and kernel.shape[2] == 3:
            kind, tiles = "conv", np.moveaxis(kernel, -1, 0)
        elif kernel.ndim == 2 and kernel.shape[0] == 32 * 32 * 3:
            kind, tiles = "dense", np.moveaxis(kernel, -1, 0).reshape(-1, 32, 32, 3)
        else:
            break
        low = tiles.min(axis=(1, 2, 3), keepdims=True)
        high = tiles.max(axis=(1, 2, 3), keepdims=True)
        return kind, (tiles - low) / np.maximum(high - low, 1e-12)
    raise ModelFileError(f"Model '{model.name}' has no first conv or dense layer over 32x32x3 RGB "
                     "input whose kernels could be drawn.")


def plot_kernels(model, path: str | os.PathLike, max_tiles: int = 64) -> Path:
    """Writes `kernels_figure(model, max_tiles)` as a PNG at `path`."""
    return _save(kernels_figure(model, max_tiles), path)


def kernels_figure(model, max_tiles: int = 64) -> Figure:
    """Returns the first layer's kernels in a grid (conv filters, or first dense units).

    Args:
        model: a Keras model from the zoo (or any with such a first layer).
        max_tiles: draw at most this many filters or units.
    """
    kind, tiles = first_layer_kernels(model)
    tiles = tiles[: (max_tiles if kind == "conv" else min(max_tiles, 16))]
    columns = 8 if kind == "conv" else 4
    rows = -(-len(tiles) // columns)
    size = 1.0 if kind == "conv" else 1.8
    fig, axes = _figure(rows, columns, figsize=(columns * size, rows * size + 0.6),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(tiles):
            ax.imshow(tiles[index], interpolation="nearest")
            ax.set_title(str(index), fontsize=7)
    what = (f"{len(tiles)} first-layer {tiles.shape[1]}x{tiles.shape[2]} conv filters"
            if kind == "conv" else f"first dense layer: weights of units 0-{len(tiles) - 1}")
    fig.suptitle(f"{model.name}: {what} (each min-max normalised)", fontsize=9)
    return fig


def plot_confusion(matrix, class_names: Sequence[str], path: str | os.PathLike,
                   title: str = "") -> Path:
    """Writes `confusion_figure(matrix, class_names, title)` as a PNG at `path`."""
    return _save(confusion_figure(matrix, class_names, title), path)


def confusion_figure(matrix, class_names: Sequence[str], title: str = "") -> Figure:
    """Returns a confusion matrix (rows: true class, columns: predicted) with counts."""
    matrix = np.asarray(matrix)
    fig, ax = _figure(figsize=(6.4, 5.6))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    accuracy = matrix.trace() / max(matrix.sum(), 1)
    ax.set_title(title or f"test accuracy {accuracy:.1%}")
    return fig


def run_title(run: rundir.SavedRun) -> str:
    """A short title for a run: network, lr, momentum, epochs, and the data if not CIFAR-10."""
    t = run.train
    settings = (f"lr={t.lr:g}  momentum={t.momentum:g}  epochs={t.epochs}" if t is not None
                else "settings unknown")
    title = f"{run.network_id or '?'}  {settings}"
    if not run.is_cifar10:
        title += "  [synthetic data]"
    elif run.limit:
        title += f"  [limit {run.limit}]"
    return title


def run_figures(run_dir: str | os.PathLike, model=None, names: Sequence[str] | None = None
                ) -> dict[str, Figure]:
    """Returns a run's figures, drawn from its saved files, by file name.

    `curves.png` from history.csv, `kernels.png` from the model (`model`, or model.keras),
    `confusion.png` from metrics.json; each only when its source exists.

    Args:
        run_dir: the run directory.
        model: the run's trained model, if at hand (saves loading model.keras again).
        names: only these figures (file names such as `rundir.CURVES`); None for all.

    Raises:
        RunError: the directory has no config.json or history.csv.
    """
    run_dir = Path(run_dir)
    title = run_title(rundir.read_run(run_dir))
    wanted = set(names) if names is not None else {rundir.CURVES, rundir.KERNELS, rundir.CONFUSION}
    figures = {}
    if rundir.CURVES in wanted:
        figures[rundir.CURVES] = curves_figure(rundir.read_history(run_dir), title)
    if rundir.KERNELS in wanted and (model is not None or (run_dir / rundir.MODEL).exists()):
        from keras_cifar.serving.predict import load_model_file

        model = model if model is not None else load_model_file(run_dir / rundir.MODEL)
        figures[rundir.KERNELS] = kernels_figure(model)
    if rundir.CONFUSION in wanted and (run_dir / rundir.METRICS).exists():
        metrics = rundir.read_metrics(run_dir)
        figures[rundir.CONFUSION] = confusion_figure(metrics["confusion_matrix"],
                                                   metrics["class_names"], title)
    return figures


def draw_run(run_dir: str | os.PathLike, missing_only: bool = False, model=None) -> list[Path]:
    """Writes a run's figures (`run_figures`) as curves.png, kernels.png and confusion.png.

    Args:
        run_dir: the run directory.
        missing_only: draw only the figures that do not exist yet (finishing an interrupted
            run).
        model: the run's trained model, if at hand (saves loading model.keras again).

    Returns:
        The figures written.

    Raises:
        RunError: the directory has no config.json or history.csv.
    """
    run_dir = Path(run_dir)
    names = [name for name in (rundir.CURVES, rundir.KERNELS, rundir.CONFUSION)
             if not (missing_only and (run_dir / name).exists())]
    figures = run_figures(run_dir, model=model, names=names)
    return [_save(figure, run_dir / name) for name, figure in figures.items()]
