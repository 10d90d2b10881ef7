"""plots: figures redrawn from saved files, kernels for CNNs and MLPs, comparisons."""

import numpy as np
import pytest
from PIL import Image

from keras_cifar.training import rundir
from keras_cifar.models.builder import build_model
from keras_cifar.cli import cli
from keras_cifar.plots.figures import first_layer_kernels, plot_kernels

from conftest import NETWORK_IDS


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_first_layer_kernels(zoo, network_id):
    model = build_model(zoo.network(network_id), seed=0)
    kind, tiles = first_layer_kernels(model)
    spec = zoo.network(network_id)
    if spec.is_convolutional:
        first = spec.layers[0]  # a conv, or airbench's whitening conv
        k = first.options["kernel_size"]
        assert kind == "conv" and tiles.shape == (first.output_shape[-1], k, k, 3)
    else:
        assert kind == "dense" and tiles.shape[1:] == (32, 32, 3)
    # each tile min-max normalised on its own
    np.testing.assert_allclose(tiles.min(axis=(1, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(tiles.max(axis=(1, 2, 3)), 1, atol=1e-6)


def test_kernel_tile_is_the_filter(zoo):
    model = build_model(zoo.network("lenet5"), seed=0)
    kernel = model.get_layer("conv1").get_weights()[0]
    _, tiles = first_layer_kernels(model)
    f = kernel[..., 5]
    np.testing.assert_allclose(tiles[5], (f - f.min()) / (f.max() - f.min()), rtol=1e-5)


def test_plot_kernels_writes_png(zoo, tmp_path):
    path = plot_kernels(build_model(zoo.network("cnn3"), seed=0), tmp_path / "k.png")
    assert Image.open(path).size[0] > 300


def test_plot_redraws_curves_and_compares_runs(runner, trained_run, tmp_path):
    run_dir = trained_run.run_dir
    (run_dir / rundir.CURVES).unlink()
    result = runner.invoke(cli, ["plot", str(run_dir)])
    assert result.exit_code == 0 and (run_dir / rundir.CURVES).exists()
    out = tmp_path / "both.png"
    result = runner.invoke(cli, ["plot", str(run_dir), str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 500


def test_plot_without_history_is_a_clean_error(runner, tmp_path):
    result = runner.invoke(cli, ["plot", str(tmp_path)])
    assert result.exit_code == 2
    assert "no history.csv" in result.output and "Traceback" not in result.output


def test_kernels_command(runner, trained_run, tmp_path):
    out = tmp_path / "k.png"
    result = runner.invoke(cli, ["kernels", str(trained_run.run_dir / rundir.MODEL), "-o", str(out)])
    assert result.exit_code == 0 and out.exists()


def test_a_comparisons_legend_lies_below_the_panels_never_over_a_curve():
    from keras_cifar.plots.figures import comparison_figure

    rows = [{"epoch": e, "val_accuracy": 0.3 + e / 20, "val_loss": 2 - e / 10} for e in range(8)]
    labels = ["cnn3  lr=0.01  momentum=0.9  epochs=8  [synthetic data]",
              "cnn3  lr=0.1  momentum=0.9  epochs=8  [synthetic data]"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = comparison_figure([(label, rows) for label in labels], "two runs")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == labels
    renderer = canvas.get_renderer()
    below = legend.get_window_extent(renderer).y1
    for ax in fig.axes:
        assert ax.get_legend() is None
        assert below <= ax.get_window_extent(renderer).y0  # under the panels, labels included
