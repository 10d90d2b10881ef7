"""zoo.json: the report's networks and experiments, and validation of bad zoo files."""

import copy
import json
import math

import pytest

from keras_cifar.zoo import BUILTIN_ZOO_PATH, ZooError, load_zoo, parse_zoo

from conftest import REPORT_NETWORK_IDS, EXPECTED_PARAMS, NETWORK_IDS

# (network, lr, momentum, epochs, original accuracy, original notebook-scale loss), as the
# original notebooks ran them (shared/report/ORIGINAL.md).
EXPECTED_EXPERIMENTS = [
    ("mlp-baseline", 0.001, 0, 40, 0.4437, 0.024635), ("mlp-baseline", 0.005, 0, 40, 0.4849, 0.02726),
    ("mlp-baseline", 0.1, 0, 40, 0.5395, 0.060942), ("mlp-baseline", 0.005, 0.2, 20, 0.5269, 0.021188),
    ("mlp-baseline", 0.005, 0.5, 20, 0.5305, 0.021868), ("mlp1", 0.005, 0.9, 10, 0.5487, 0.021026),
    ("mlp2", 0.005, 0.9, 10, 0.5447, 0.020943), ("lenet5", 0.001, 0, 40, 0.4355, 0.024666),
    ("lenet5", 0.01, 0, 40, 0.6725, 0.022959), ("lenet5", 0.1, 0, 40, 0.7049, 0.044835),
    ("lenet5", 0.01, 0.2, 40, 0.6805, 0.029203), ("lenet5", 0.01, 0.5, 40, 0.6943, 0.037025),
    ("cnn1", 0.01, 0.9, 20, 0.7116, 0.031536), ("cnn2", 0.01, 0.9, 20, 0.7391, 0.029397),
    ("cnn3", 0.01, 0.9, 20, 0.7423, 0.029853),
]
# Where the report's text states another learning rate than the notebooks ran.
REPORT_TEXT_LR = {"mlp-m0.5": 0.001, "lenet5-m0.2": 0.1, "lenet5-m0.5": 0.1, "cnn1": 0.1,
                  "cnn2": 0.1, "cnn3": 0.1}


def test_seven_networks_in_report_order(zoo):
    assert list(zoo.networks) == list(EXPECTED_PARAMS)


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_parameter_count_matches_report(zoo, network_id):
    assert zoo.network(network_id).params == EXPECTED_PARAMS[network_id]


@pytest.mark.parametrize("network_id", REPORT_NETWORK_IDS)
def test_relu_after_every_hidden_layer_and_logits_out(zoo, network_id):
    weighted = [l for l in zoo.network(network_id).layers if l.kind in ("conv", "dense")]
    assert all(l.options["activation"] == "relu" for l in weighted[:-1])
    assert weighted[-1].to_dict() == {"kind": "dense", "units": 10, "activation": "linear"}


def test_experiments_as_pinned(zoo):
    got = [(e.network, e.train.lr, e.train.momentum, e.train.epochs, e.original.test_accuracy,
            e.original.test_loss) for e in zoo.report_experiments]
    assert got == EXPECTED_EXPERIMENTS
    assert all(e.train.batch_size == 64 and e.recipe == "report" for e in zoo.report_experiments)


def test_every_experiment_cites_its_notebook_and_keeps_the_reports_words(zoo):
    for e in zoo.report_experiments:
        assert e.original.repository == "VangelisTsiatouras/machine-learning-msc"
        assert len(e.original.commit) == 40
        expected = "nn.ipynb" if e.network.startswith("mlp") else "cnn.ipynb"
        assert e.original.notebook == f"deep_neural_networks/{expected}"
    assert {i: e.report_text.lr for i, e in zoo.experiments.items()
            if e.report_text.lr is not None} == REPORT_TEXT_LR
    cnn3 = zoo.experiment("cnn3").report_text
    assert (cnn3.test_accuracy, cnn3.test_loss) == (0.75, 0.029) and "75%" in cnn3.words


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_inputs_scaled_as_the_notebooks_did(zoo, network_id):
    expected = "symmetric" if network_id in REPORT_NETWORK_IDS else "standardize"  # airbench's
    assert zoo.network(network_id).preprocess == expected


def test_training_defaults(zoo):
    for network_id in ("mlp1", "mlp2", "cnn1", "cnn2", "cnn3"):
        (experiment,) = [e for e in zoo.experiments_of(network_id) if e.group is None]
        assert zoo.network(network_id).train == experiment.train
    assert (zoo.network("mlp-baseline").train.lr, zoo.network("mlp-baseline").train.momentum,
            zoo.network("mlp-baseline").train.epochs) == (0.005, 0.5, 20)
    assert (zoo.network("lenet5").train.lr, zoo.network("lenet5").train.momentum,
            zoo.network("lenet5").train.epochs) == (0.01, 0.0, 40)
    assert zoo.network("cnn3").train == zoo.experiment("cnn3").train
    assert (zoo.network("cnn3").train.lr, zoo.network("cnn3").train.momentum) == (0.01, 0.9)


def test_original_best_accuracy(zoo):
    assert zoo.original_best_accuracy("cnn3") == 0.7423
    assert zoo.original_best_accuracy("lenet5") == 0.7049
    assert zoo.original_best_accuracy("mlp-baseline") == 0.5395


def test_unknown_network_suggests_nearest(zoo):
    with pytest.raises(ZooError, match="Did you mean 'cnn3'") as info:
        zoo.network("cnn4")
    assert "mlp-baseline" in str(info.value)


def _raw():
    return json.loads(BUILTIN_ZOO_PATH.read_text())


def _set(raw, network, path, value):
    entry = next(n for n in raw["networks"] if n["id"] == network)
    target = entry
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


_DELETE = object()

BAD_NETWORKS = [
    # (mutation, entry, key in message)
    (lambda r: _set(r, "cnn3", ["layers", 0, "kind"], "conv3d"), "cnn3", "layers[0].kind"),
    (lambda r: _set(r, "cnn3", ["layers", 0, "filters"], -4), "cnn3", "layers[0].filters"),
    (lambda r: _set(r, "mlp1", ["layers", 1, "units"], 0), "mlp1", "layers[1].units"),
    (lambda r: _set(r, "mlp2", ["layers", 1, "units"], "256"), "mlp2", "layers[1].units"),
    (lambda r: _set(r, "lenet5", ["layers", 0, "filters"], _DELETE), "lenet5", "layers[0].filters"),
    (lambda r: _set(r, "mlp2", ["layers", 4, "units"], 9), "mlp2", "layers[4]"),
    (lambda r: _set(r, "cnn1", ["layers", 2, "kernel_size"], 16), "cnn1", "layers[2].kernel_size"),
    (lambda r: _set(r, "cnn2", ["train", "momentum"], 1.5), "cnn2", "train.momentum"),
    (lambda r: _set(r, "cnn2", ["train", "lr"], 0), "cnn2", "train.lr"),
    (lambda r: _set(r, "cnn2", ["train", "epochs"], _DELETE), "cnn2", "train.epochs"),
    (lambda r: _set(r, "mlp1", ["layers", 1, "unit"], 5), "mlp1", "layers[1].unit"),
    (lambda r: _set(r, "lenet5", ["preprocess"], "imagenet"), "lenet5", "preprocess"),
    (lambda r: _set(r, "mlp1", ["layers", 0], {"kind": "dense", "units": 10}), "mlp1", "layers[0].kind"),
    (lambda r: _set(r, "mlp1", ["layers", 2, "activation"], "swishy"), "mlp1", "layers[2].activation"),
]


@pytest.mark.parametrize("mutate, entry, key", BAD_NETWORKS)
def test_bad_network_names_file_entry_and_key(tmp_path, mutate, entry, key):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(mutate(_raw())))
    with pytest.raises(ZooError) as info:
        load_zoo(path)
    message = str(info.value)
    assert str(path) in message
    assert f"'{entry}'" in message
    assert f"'{key}'" in message
    assert "Received:" in message


def test_duplicate_network_id(tmp_path):
    raw = _raw()
    raw["networks"].append(copy.deepcopy(raw["networks"][0]))
    with pytest.raises(ZooError, match=r"network 'mlp-baseline'.*key 'id'.*duplicate"):
        parse_zoo(raw, tmp_path / "z.json")


def test_experiment_with_unknown_network(tmp_path):
    raw = _raw()
    raw["experiments"][0]["network"] = "mlp9"
    with pytest.raises(ZooError, match=r"experiment 'mlp-lr0.001', key 'network'.*Received: network='mlp9'"):
        parse_zoo(raw, tmp_path / "z.json")


def test_duplicate_experiment_id(tmp_path):
    raw = _raw()
    raw["experiments"].append(copy.deepcopy(raw["experiments"][-1]))
    with pytest.raises(ZooError, match=r"experiment 'airbench94'.*duplicate"):
        parse_zoo(raw)


def test_malformed_json_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "networks": [\n    {"id": "x",}\n  ]\n}\n')
    with pytest.raises(ZooError, match=r"broken.json: not valid JSON at line 3, column"):
        load_zoo(path)


def test_missing_file(tmp_path):
    with pytest.raises(ZooError, match="Cannot read the zoo file"):
        load_zoo(tmp_path / "nope.json")


def test_env_var_replaces_builtin_zoo(tmp_path, monkeypatch):
    raw = _raw()
    raw["networks"] = raw["networks"][:1]
    raw["experiments"] = raw["experiments"][:1]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(raw))
    monkeypatch.setenv("KERAS_CIFAR_ZOO", str(path))
    assert list(load_zoo().networks) == ["mlp-baseline"]


def test_user_network_with_dropout_batchnorm_and_symmetric_input(tmp_path):
    raw = {"networks": [{
        "id": "mine", "preprocess": "symmetric",
        "layers": [{"kind": "conv", "filters": 8, "padding": "same", "activation": "relu"},
                   {"kind": "batchnorm"}, {"kind": "maxpool"}, {"kind": "flatten"},
                   {"kind": "dropout", "rate": 0.5}, {"kind": "dense", "units": 10}],
        "train": {"lr": 0.1, "momentum": 0, "epochs": 1}}]}
    spec = parse_zoo(raw).network("mine")
    assert [l.output_shape for l in spec.layers] == [(32, 32, 8), (32, 32, 8), (16, 16, 8),
                                                     (2048,), (2048,), (10,)]
    assert spec.params == (27 * 8 + 8) + 4 * 8 + (2048 * 10 + 10)
    assert spec.train.batch_size == 64


# airbench's trainable weights as PyTorch counts them (`requires_grad` at the start of
# training): the whitening kernel and BatchNorm's (frozen) scales excluded.
AIRBENCH_TRAINABLE = {"airbench93": 568_728, "airbench94": 1_971_352}


@pytest.mark.parametrize("network_id", list(AIRBENCH_TRAINABLE))
def test_airbench_trainable_weights_match_airbench(zoo, network_id):
    from keras_cifar.models.builder import build_model

    spec = zoo.network(network_id)
    assert spec.trainable_params == AIRBENCH_TRAINABLE[network_id]
    model = build_model(spec, seed=0)
    assert sum(math.prod(w.shape) for w in model.trainable_weights) == spec.trainable_params
    assert model.count_params() == spec.params == EXPECTED_PARAMS[network_id]
    assert [layer.kind for layer in spec.layers[:2]] == ["whiten", "activation"]
    assert spec.layers[0].output_shape == (31, 31, 24)  # 2 * 2x2x3 eigenvectors and negatives


def _airbench_with(index, layer):
    raw = _raw()
    net = next(n for n in raw["networks"] if n["id"] == "airbench93")
    net["layers"][index] = layer
    return raw


BAD_LAYERS = [
    # a whitening layer after a weighted layer
    (lambda r: _airbench_with(1, {"kind": "whiten"}), "layers[1].kind", "first weighted layer"),
    (lambda r: _airbench_with(5, {"kind": "batchnorm", "momentum": 1.0}), "layers[5].momentum",
     "momentum"),
    (lambda r: _airbench_with(5, {"kind": "batchnorm", "scale": "no"}), "layers[5].scale",
     "true or false"),
    (lambda r: _airbench_with(0, {"kind": "whiten", "epsilon": 0}), "layers[0].epsilon", "epsilon"),
    (lambda r: _airbench_with(2, {"kind": "conv", "filters": 8, "init": "dirac",
                                  "padding": "same"}), "layers[2].init", "at least as many"),
    (lambda r: _airbench_with(2, {"kind": "conv", "filters": 64, "init": "orthogonal"}),
     "layers[2].init", "one of"),
    (lambda r: _airbench_with(1, {"kind": "activation", "activation": "swish"}),
     "layers[1].activation", "one of"),
    (lambda r: _airbench_with(1, {"kind": "activation"}), "layers[1].activation", "missing"),
    (lambda r: _airbench_with(-1, {"kind": "scale", "factor": "1/9"}), "layers[26].factor",
     "finite"),
]


@pytest.mark.parametrize("mutate, key, words", BAD_LAYERS)
def test_bad_new_layer_kinds_name_the_entry_and_key(mutate, key, words):
    with pytest.raises(ZooError) as info:
        parse_zoo(mutate(None), "zoo.json")
    message = str(info.value)
    assert "network 'airbench93'" in message and f"key '{key}'" in message
    assert words in message and "Received:" in message


def test_new_options_at_their_defaults_leave_the_serialised_network_unchanged(zoo):
    # the report's networks serialise as before the options existed, so run identities hold
    cnn3 = zoo.network("cnn3").to_dict()
    assert cnn3["layers"][0] == {"kind": "conv", "filters": 64, "kernel_size": 3, "strides": 1,
                                 "padding": "valid", "activation": "relu"}
    assert "recipe" not in cnn3
    airbench = zoo.network("airbench93").to_dict()
    assert airbench["recipe"] == "airbench93"
    assert airbench["layers"][2]["use_bias"] is False and airbench["layers"][2]["init"] == "dirac"


def test_groups_keep_the_report_experiments_apart(zoo):
    assert zoo.groups == ["ladder", "airbench"]
    assert [e.id[-1] for e in zoo.experiments_in("ladder")] == list("abcdefgh")
    assert len(zoo.report_experiments) == 15
    assert zoo.experiment("ladder-h").original.test_accuracy == 0.93
