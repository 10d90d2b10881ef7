"""keras-cifar from Python: what each CLI command does, one call each, on the same code path.

    import keras_cifar as kc

    kc.list_networks()                       # zoo list
    model = kc.build_model("cnn3")           # a keras.Sequential; model.summary()
    data = kc.load_data("synthetic")         # or load_data(data_dir="cifar10.tar.gz"), load_data()
    run = kc.train_network("cnn3", data, epochs=2, limit=500)   # train: a RunResult
    run.history, run.metrics, run.model, run.run_dir
    kc.run_figures(run)["curves.png"]         # a matplotlib Figure, inline in Jupyter
    kc.evaluate(run.model, data)             # evaluate
    kc.predict(run.model, data.test_images[:4])    # class probabilities
    kc.export_model(run.model, "cnn3.onnx", "onnx")  # export --format onnx
    kc.reproduce_experiments(["cnn3"], data="synthetic", seeds=[0], limit=500)  # reproduce run
    kc.read_results("figures")               # the published table, one dict per experiment

Nothing here changes global state: no matplotlib backend, no environment variable, no Keras
policy. TensorFlow is imported when a call needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from keras_cifar.zoo import NetworkSpec, get_network, load_zoo


def _network(network: str | NetworkSpec) -> NetworkSpec:
    return get_network(network) if isinstance(network, str) else network


def _model(model):
    """A keras model as given, or loaded from a `.keras` path or a run directory (its model.keras,
    or an unfinished run's last checkpoint)."""
    if isinstance(model, (str, os.PathLike)):
        from keras_cifar.serving.predict import load_trained_model

        return load_trained_model(model)[0]
    return model


def train_network(network: str | NetworkSpec, data=None, *, out_dir: str | os.PathLike = "runs",
                  name: str | None = None, resume: bool = False, force: bool = False,
                  tensorboard: bool = False, verbose: int | str = 1, callbacks: list | None = None,
                  **settings):
    """Trains a zoo network with SGD(momentum), as `keras-cifar train NETWORK` does.

    Args:
        network: a zoo id (`"cnn3"`) or a `NetworkSpec`.
        data: a `CifarData` (`load_data(...)`), or a source to load: `"tfds"`,
            `"synthetic"`, a local copy's path or a `DataSpec` (`DataSpec.of`); None is tfds.
        out_dir, name, resume, force, tensorboard, callbacks: as `train_run`.
        verbose: Keras' verbosity; 1 (the default) is Keras' own progress bar, in a terminal
            and in Jupyter alike.
        **settings: `RunConfig` settings: lr, momentum, epochs, batch_size, seed, init, limit,
            xla, mixed_precision, ...; the network's (the notebook's) values where omitted.

    The run directory gets what `keras-cifar train` writes, its figures (curves.png,
    kernels.png, confusion.png) included. A finished run of the same settings in `out_dir` is
    returned as it is, its model loaded from model.keras (`already_finished` is True), so a
    notebook cell can be run again; pass `force=True` to train it again.

    Returns:
        A `RunResult`: `run_dir`, `model`, `history` (one dict per epoch), `metrics`, `config`.

    Raises:
        ConfigError: a bad setting, before any work.
    """
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.train import train_run

    from keras_cifar.data import CifarData, DataSpec

    if data is not None and not isinstance(data, CifarData):
        settings["data"], data = DataSpec.of(data), None
    config = RunConfig.of(_network(network), **settings)
    result = train_run(config, data, out_dir=out_dir, name=name, resume=resume, force=force,
                       tensorboard=tensorboard, verbose=verbose, callbacks=callbacks,
                       reuse_finished=True)
    from keras_cifar.plots.figures import draw_run

    draw_run(result.run_dir, missing_only=True, model=result.model)  # as `keras-cifar train`
    return result


def run_figures(run, model=None) -> dict:
    """Returns a run's figures as `matplotlib.figure.Figure`s by file name (`curves.png`,
    `kernels.png`, `confusion.png`), drawn from its saved files; a notebook shows one inline
    when it is a cell's value.

    Args:
        run: a `RunResult` or a run directory.
        model: the run's model, if at hand (a `RunResult` carries it).
    """
    from keras_cifar.plots.figures import run_figures as figures_of

    run_dir = getattr(run, "run_dir", run)
    return figures_of(run_dir, model=model if model is not None else getattr(run, "model", None))


def evaluate(model, data=None, limit: int | None = None) -> dict:
    """Evaluates a model on the test split, as `keras-cifar evaluate` does.

    Args:
        model: a Keras model or a `.keras` path.
        data: a `CifarData`, or a source to load (`"tfds"`, `"synthetic"`, a local copy's path,
            a `DataSpec`); None loads tfds' CIFAR-10.
        limit: a class-stratified subset of this many test images (an integer >= 1), or None
            for all of them.

    Returns:
        test loss (both scales), accuracy, per-class accuracy, the confusion matrix and the
        class names.

    Raises:
        ConfigError: `limit` is not None or an integer >= 1 (as `train` refuses it).
    """
    from keras_cifar.data import CifarData, DataSpec, limit_data
    from keras_cifar.training.evaluation import evaluate_model
    from keras_cifar.zoo import rules

    limit = rules.check_limit(limit)
    data = data if isinstance(data, CifarData) else DataSpec.of(data).load()
    if limit is not None:
        data = limit_data(data, limit)
    metrics = evaluate_model(_model(model), data.test_images, data.test_labels)
    metrics["class_names"] = list(data.class_names)
    return metrics


def predict(model, images):
    """Predicts images: class probabilities for images in memory, the top classes per file
    for image files, as `keras-cifar predict` prints them.

    Args:
        model: a Keras model or a `.keras` path.
        images: in memory, an array (N, 32, 32, 3), (32, 32, 3), greyscale (N, 32, 32) or
            (32, 32), a PIL image, or a list of these (uint8; floats in [0, 1] are scaled by
            255, as for files; see `serving.predict.as_pixel_batch`); or an image file's path,
            or a list of paths (any size and mode, converted as the CLI does).

    Returns:
        For images in memory, probabilities (N, 10). For paths, one dict per file: `image`,
        `notes`, and `top` (classes with probabilities) or `error`.

    Raises:
        ImageError: images in memory of another shape or range, or an empty list.
    """
    from keras_cifar.serving.predict import (as_pixel_batch, predict_images,
                                             predict_probabilities)

    model = _model(model)
    if isinstance(images, (str, os.PathLike)):
        return predict_images(model, [images])
    if isinstance(images, (list, tuple)) and images and all(
            isinstance(i, (str, os.PathLike)) for i in images):
        return predict_images(model, list(images))
    return predict_probabilities(model, as_pixel_batch(images))


def export_model(model, target: str | os.PathLike, format: str | None = None,
                 force: bool = False) -> Path:
    """Exports a model as uint8 images in, probabilities out (`keras-cifar export`).

    Args:
        model: a Keras model or a `.keras` path.
        target: a directory (`saved_model`) or a file (`onnx`, `litert`).
        format: `saved_model`, `onnx` or `litert`; None: what `target`'s suffix says
            (`.onnx`, `.tflite`, else a SavedModel directory).
        force: replace an existing target.
    """
    from keras_cifar.serving.exports import export_model as export

    return export(_model(model), target, format, force)


def reproduce_experiments(experiments: Iterable[str] = (), *, data=None, seeds: Sequence[int] = (0, 1, 2),
                          out_dir: str | os.PathLike = "report", workers: int = 1,
                          init: str | None = None, limit: int | None = None,
                          zoo_path: str | os.PathLike | None = None,
                          retry_diverged: bool = False) -> list[dict]:
    """Runs the report's experiments (all when none are named) with every seed, skipping
    finished runs and resuming interrupted ones, then writes the report; as
    `keras-cifar reproduce run` does.

    Args:
        experiments: experiment ids, e.g. `["cnn3", "lenet5-lr0.01"]`; empty for all.
        data: `"tfds"`, `"synthetic"`, a local copy's path, or a `DataSpec`; None is tfds.
        seeds: the seeds each experiment runs with.
        out_dir: the output directory (runs/, RESULTS.md, results.csv, figures).
        workers: local processes training at once.
        init, limit: as `train_network`.
        zoo_path: another zoo.json.
        retry_diverged: train runs whose loss diverged before again; by default a divergence
            is a result (listed in RESULTS.md) and the other runs go on.

    Returns:
        The results table (`read_results(out_dir)`).
    """
    from keras_cifar.data import DataSpec
    from keras_cifar.reproduce import experiments as rep

    zoo = load_zoo(zoo_path)
    ids = list(experiments)
    chosen = rep.select_experiments(zoo, ids, all_=not ids)
    rep.reproduce(zoo, chosen, DataSpec.of(data), out_dir, seeds=tuple(seeds), init=init,
                  limit=limit, workers=workers, retry_diverged=retry_diverged)
    return read_results(out_dir, zoo_path=zoo_path)


def read_results(out_dir: str | os.PathLike = "figures",
                 zoo_path: str | os.PathLike | None = None) -> list[dict]:
    """Returns the results table of a reproduction's output (or the published `figures/`):
    one dict per experiment with a finished seed, the `results.csv` columns plus `verdict`.

    Raises:
        RunError: `out_dir` holds no reproduction (no `runs/` folder); an empty list means
            one that has no finished run yet.
    """
    from keras_cifar.errors import RunError
    from keras_cifar.reproduce.results import RUNS_SUBDIR, results_rows

    if not (Path(out_dir) / RUNS_SUBDIR).is_dir():
        where = Path(out_dir).resolve()
        raise RunError(f"{where} holds no reproduction: there is no {RUNS_SUBDIR}/ folder in it. "
                       "Pass the `out_dir` of a reproduction, or the published figures/ from the "
                       f"project's root. Received: out_dir={str(out_dir)!r}")
    return [row.to_dict() for row in results_rows(load_zoo(zoo_path), out_dir)]
