"""inspect: the summary text and the report-style parameter dump."""

import numpy as np
import pytest

from keras_cifar.models.builder import build_model
from keras_cifar.models.inspection import parameter_dump, summary_text

from conftest import NETWORK_IDS


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_dump_lists_every_weight_with_its_shape(zoo, network_id):
    model = build_model(zoo.network(network_id), seed=0)
    dump = parameter_dump(model)
    for layer in model.layers:
        for weight in layer.weights:
            assert f"Layer: {layer.name}.{weight.name} | Size: {tuple(weight.shape)} |" in dump
    assert f"{model.count_params():,} parameters" in dump


def test_dump_shows_the_first_two_output_units(zoo):
    model = build_model(zoo.network("mlp2"), seed=0)
    bias = model.get_layer("dense1").get_weights()[1]
    dump = parameter_dump(model)
    block = dump.split("Layer: dense1.bias")[1].split("Layer:")[0]
    shown = [float(v) for v in block.split("Values:")[1].strip(" []\n").split(",")]
    np.testing.assert_allclose(shown, bias[:2], atol=6e-5)


def test_summary_text_is_complete(zoo):
    text = summary_text(build_model(zoo.network("cnn3"), seed=0))
    assert "Total params: 2,703,242" in text
    for name in ("conv1", "pool2", "flatten1", "dense3"):
        assert name in text
    assert "\x1b[" not in text  # no terminal colour codes in files


@pytest.mark.parametrize("network_id", NETWORK_IDS)
@pytest.mark.parametrize("columns", ["40", "80", None])
def test_the_summary_is_whole_at_any_terminal_width(zoo, network_id, columns, monkeypatch):
    import os

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    model = build_model(zoo.network(network_id), seed=0)
    text = summary_text(model)
    for layer in model.layers:
        assert f"{layer.count_params():,} │" in text, (layer.name, text)
    assert os.environ.get("COLUMNS") == columns  # restored


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_every_zoo_network_outputs_ten_logits(zoo, network_id):
    from keras_cifar.models.inspection import classifier_output

    assert classifier_output(build_model(zoo.network(network_id), seed=0)) == "logits"
