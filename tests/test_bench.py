"""scripts/bench.py: the FLOP counts behind '% of peak' and the floor, the projection, one
measurement of the real training path."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_cifar.builder import build_model
from keras_cifar.data import synthetic_data

from conftest import NETWORK_IDS, ZOO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench  # noqa: E402


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_layer_macs_match_the_built_keras_model(network_id):
    model = build_model(ZOO.network(network_id))
    expected = []
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            spatial = layer.output.shape[1:-1]  # (h, w) for a conv, () for a dense layer
            expected.append(math.prod(spatial) * math.prod(layer.kernel.shape))
    assert bench.layer_macs(ZOO.network(network_id)) == expected


def test_cnn3_costs_what_the_speed_issue_says():
    # "cnn3 needs ~100 MFLOP per training image"
    assert bench.training_flops_per_image(ZOO.network("cnn3")) / 1e6 == pytest.approx(100, rel=0.01)


def test_reproduction_flops_count_each_experiment_once_and_skip_the_image_gradient():
    by_network = {}
    for experiment in ZOO.experiments.values():
        by_network[experiment.network] = by_network.get(experiment.network, 0) + experiment.train.epochs
    expected = 0
    for network_id, epochs in by_network.items():
        first, *rest = bench.layer_macs(ZOO.network(network_id))
        forward = 2 * (first + sum(rest))
        train = forward + 2 * (first + sum(rest)) + 2 * sum(rest)
        expected += epochs * (50_000 * train + 10_000 * forward)
    assert bench.reproduction_flops(ZOO) == pytest.approx(expected)
    # the exact count sits below the 3x-forward estimate, by the first layers' image gradients
    estimate = sum(e.train.epochs * 50_000 * bench.training_flops_per_image(ZOO.network(e.network))
                   for e in ZOO.experiments.values())
    assert bench.reproduction_flops(ZOO, test_images=0) < estimate


def test_makespan_hands_each_job_to_the_first_free_worker():
    assert bench.makespan([3, 2, 2], workers=1) == 7
    assert bench.makespan([3, 2, 2], workers=2) == 4
    assert bench.makespan([5, 1, 1, 1], workers=2) == 5


def test_projection_scales_the_measured_epoch_to_the_full_data():
    results = {network_id: {"ips": 50_000.0, "eval_ips": 10_000.0} for network_id in ZOO.networks}
    total_epochs = sum(e.train.epochs for e in ZOO.experiments.values())
    # 1 s of training + 1 s of evaluation per epoch
    assert bench.projected_seconds(ZOO, results, "ips", "eval_ips") == pytest.approx(2 * total_epochs)
    assert bench.projected_seconds(ZOO, {}, "ips", "eval_ips") == 0


@pytest.mark.slow
def test_keras_measure_times_the_training_path_and_its_epoch_tail():
    data = synthetic_data(640, 200)
    row = bench.keras_measure(ZOO.network("mlp2"), data, epochs=2)
    assert row["images_per_s"] == pytest.approx(640 / row["epoch_train_s"])
    assert row["epoch_wall_s"] > row["epoch_train_s"] > 0
    assert 0 <= row["tail_ms"] < 1e3 * row["epoch_train_s"]
    assert np.isfinite(row["stall_ratio"]) and row["stall_ratio"] > 0
