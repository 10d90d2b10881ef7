"""The commands on one model: `inspect`, `evaluate`, `predict`, `plot`, `kernels`, `export`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from keras_cifar import _fs
from keras_cifar.cli.core import Command, rule
from keras_cifar.cli.options import MODEL_ARGUMENT, NETWORK, data_options, load_data, load_model
from keras_cifar.zoo import rules


@click.command(cls=Command)
@click.argument("target")
@click.option("--all", "all_values", is_flag=True, help="Print every value of every weight.")
@click.option("--init", type=click.Choice(rules.INITS), default=None,
              help="Initialisation for a network id (default: the network's).")
@click.option("--seed", type=int, callback=rule(rules.check_seed), default=0, show_default=True,
              help="Seed for a network id.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the text to this file instead of the terminal.")
@click.pass_context
def inspect(ctx, target, all_values, init, seed, output):
    """Print model.summary() and the report's "Parameters & Structure" dump.

    TARGET is a network id (freshly initialised weights), a trained model.keras, or a run
    directory (its model.keras, or an unfinished run's last checkpoint).

    \b
    Examples:
      keras-cifar inspect cnn3
      keras-cifar inspect runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras --all -o cnn3.txt
    """
    from keras_cifar.models.inspection import parameter_dump, summary_text

    if output is not None:
        _fs.check_output_file(output, "--output")

    if target.endswith(".keras") or Path(target).is_file() or Path(target).is_dir():
        model = load_model(target)
    else:
        network = NETWORK.convert(target, ctx.command.params[0], ctx)
        from keras_cifar.models.builder import build_model

        model = build_model(network, init=init, seed=seed)
    if all_values and output is None:
        # about 12 characters a value as numpy prints them
        click.echo(f"Printing all {model.count_params():,} values, about "
                   f"{model.count_params() * 12 / 2**20:.0f} MB of text; add -o FILE to write "
                   "them to a file instead.", err=True)
    text = (summary_text(model) + "\nParameters & Structure\n"
            + parameter_dump(model, all_values=all_values))
    if output is None:
        click.echo(text, nl=False)
    else:
        _fs.atomic_write_text(output, text)
        click.echo(f"Wrote {output} ({len(text.encode()) / 2**20:.1f} MiB)")


def _print_metrics(metrics: dict) -> None:
    click.echo(f"test loss {metrics['test_loss']:.4f} (mean cross-entropy), "
               f"test accuracy {metrics['test_accuracy']:.2%}")
    click.echo(f"{'class':<12}{'accuracy':>9}")
    for name, accuracy in zip(metrics["class_names"], metrics["per_class_accuracy"]):
        click.echo(f"{name:<12}{accuracy:>9.1%}")


@click.command(cls=Command)
@MODEL_ARGUMENT
@data_options
@click.option("--limit", type=int, callback=rule(rules.check_limit), default=None,
              help="Evaluate on a class-stratified subset of N test images.")
@click.option("--confusion", type=click.Path(path_type=Path), default=None,
              help="Also write the confusion-matrix figure to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path, data, limit, confusion, as_json):
    """Evaluate a trained model on the test split: loss, accuracy, per-class accuracy.

    \b
    Example:
      keras-cifar evaluate runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras --data-dir ~/data/cifar10
    """
    from keras_cifar.api import evaluate as evaluate_on

    model = load_model(model_path)
    d = load_data(data)
    metrics = evaluate_on(model, d, limit=limit)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
    else:
        _print_metrics(metrics)
    if confusion:
        from keras_cifar.plots.figures import plot_confusion

        plot_confusion(metrics["confusion_matrix"], d.class_names, confusion)
        if not as_json:
            click.echo(f"Confusion matrix: {confusion}")


@click.command(cls=Command)
@MODEL_ARGUMENT
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=click.IntRange(1, 10), default=3, show_default=True,
              help="How many classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(model_path, images, top, as_json):
    """Classify image files: the top classes with probabilities.

    Images of any size or mode are converted to 32x32 RGB, with a note (16-bit images are
    scaled to 8 bits); images over 4096x4096 pixels and unreadable files are reported, and the
    others still predicted (exit 1 if any failed).

    \b
    Example:
      keras-cifar predict runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras cat.png ship.jpg
    """
    from keras_cifar.serving.predict import predict_images

    model = load_model(model_path)
    results = predict_images(model, images, top=top)
    failed = [r for r in results if "error" in r]
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                click.echo(f"{r['image']}: error: {r['error']}", err=True)
                continue
            guesses = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top"])
            click.echo(f"{r['image']}: {guesses}")
            for note in r["notes"]:
                click.echo(f"  note: {note}")
    if failed:
        if len(failed) == len(results):
            raise click.ClickException("The image could not be read." if len(results) == 1 else
                                       f"None of the {len(results)} images could be read.")
        raise click.ClickException(f"{len(failed)} of {len(results)} images could not be read; "
                                   "the others were predicted.")


@click.command(cls=Command)
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR...")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write the figure. Default: RUN_DIR/curves.png for one run, "
              "comparison.png for several.")
def plot(run_dirs, output):
    """Redraw loss/accuracy curves from history.csv; several runs give one comparison figure.

    \b
    Examples:
      keras-cifar plot runs/lenet5-lr0.01-m0-e40-s0-1a2b3c4d
      keras-cifar plot runs/lenet5-lr0.001-* runs/lenet5-lr0.01-* -o lr.png
    """
    from keras_cifar import _fs
    from keras_cifar.training import rundir
    from keras_cifar.plots.figures import plot_comparison, plot_curves, run_title

    _fs.check_output_file(output or (run_dirs[0] / rundir.CURVES if len(run_dirs) == 1
                                      else Path("comparison.png")), "--output")
    if len(run_dirs) == 1:
        rows = rundir.read_history(run_dirs[0])
        path = plot_curves(rows, output or run_dirs[0] / rundir.CURVES,
                           run_title(rundir.read_run(run_dirs[0])))
    else:
        histories = [(run_title(rundir.read_run(r)), rundir.read_history(r)) for r in run_dirs]
        path = plot_comparison(histories, output or Path("comparison.png"))
    click.echo(f"Wrote {path}")


@click.command(cls=Command)
@MODEL_ARGUMENT
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The PNG to write.")
def kernels(model_path, output):
    """Draw the first layer's kernels of a saved model (conv filters or first dense units).

    \b
    Example:
      keras-cifar kernels runs/cnn3-lr0.1-m0.9-e20-s0-1a2b3c4d/model.keras -o cnn3-kernels.png
    """
    from keras_cifar.plots.figures import plot_kernels
    _fs.check_output_file(output, "--output")
    click.echo(f"Wrote {plot_kernels(load_model(model_path), output)}")


@click.command(cls=Command)
@MODEL_ARGUMENT
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["saved_model", "onnx", "litert"]),
              default=None, help="saved_model: a directory; onnx: an .onnx file; litert: a "
              ".tflite file. Default: what TARGET's suffix says (.onnx, .tflite, else a "
              "SavedModel directory).")
@click.option("--force", is_flag=True, help="Replace TARGET if it exists (a non-empty directory).")
def export(model_path, target, format_, force):
    """Export a model for serving: uint8 images (N, 32, 32, 3) in, probabilities (N, 10) out.

    ONNX needs the export extra: pip install -e ".[export]".

    \b
    Examples:
      keras-cifar export runs/cnn3-lr0.01-m0.9-e20-s0-1a2b3c4d/model.keras exported/cnn3
      keras-cifar export runs/cnn3-lr0.01-m0.9-e20-s0-1a2b3c4d/model.keras cnn3.onnx
      keras-cifar export runs/cnn3-lr0.01-m0.9-e20-s0-1a2b3c4d/model.keras cnn3.tflite
    """
    import keras

    from keras_cifar.serving.exports import (EXPORT_FORMATS, check_export_target, export_model,
                                             export_route, require_converter, resolve_format)

    format_ = resolve_format(target, format_)
    require_converter(format_)
    check_export_target(target, format_, force)
    path = export_model(load_model(model_path), target, format_, force=force)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
        else path.stat().st_size
    route = export_route(format_)
    click.echo(f"Wrote {EXPORT_FORMATS[format_][0]} {path} ({size / 2**20:.1f} MiB): uint8 "
               f"images (N, 32, 32, 3) in, probabilities (N, 10) out"
               + ("; endpoint `serve`" if format_ == "saved_model" else "; input `images`")
               + ("." if route == "keras" else
                  f"; exported by {route} (Keras cannot export {format_} on the "
                  f"{keras.backend.backend()} backend)."))
