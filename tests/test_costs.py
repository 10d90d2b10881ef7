"""costs: the FLOP counts behind bench's '% of peak' and the floor, and the projection's
scheduling model."""

import math

import pytest

from keras_cifar.bench import costs
from keras_cifar.models.builder import build_model

from conftest import NETWORK_IDS, ZOO


@pytest.mark.parametrize("network_id", NETWORK_IDS)
def test_layer_macs_match_the_built_keras_model(network_id):
    model = build_model(ZOO.network(network_id))
    expected = []
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            spatial = layer.output.shape[1:-1]  # (h, w) for a conv, () for a dense layer
            expected.append(math.prod(spatial) * math.prod(layer.kernel.shape))
    assert costs.layer_macs(ZOO.network(network_id)) == expected


def test_cnn3_costs_what_the_speed_issue_says():
    # "cnn3 needs ~100 MFLOP per training image"
    assert costs.training_flops_per_image(ZOO.network("cnn3")) / 1e6 == pytest.approx(100, rel=0.01)


def test_reproduction_flops_count_each_experiment_once_and_skip_the_image_gradient():
    by_network = {}
    for experiment in ZOO.report_experiments:
        by_network[experiment.network] = by_network.get(experiment.network, 0) + experiment.train.epochs
    expected = 0
    for network_id, epochs in by_network.items():
        first, *rest = costs.layer_macs(ZOO.network(network_id))
        forward = 2 * (first + sum(rest))
        train = forward + 2 * (first + sum(rest)) + 2 * sum(rest)
        expected += epochs * (50_000 * train + 10_000 * forward)
    assert costs.reproduction_flops(ZOO) == pytest.approx(expected)
    # the exact count sits below the 3x-forward estimate, by the first layers' image gradients
    estimate = sum(e.train.epochs * 50_000 * costs.training_flops_per_image(ZOO.network(e.network))
                   for e in ZOO.report_experiments)
    assert costs.reproduction_flops(ZOO, test_images=0) < estimate


def test_makespan_hands_each_job_to_the_first_free_worker():
    assert costs.makespan([3, 2, 2], workers=1) == 7
    assert costs.makespan([3, 2, 2], workers=2) == 4
    assert costs.makespan([5, 1, 1, 1], workers=2) == 5


def test_projection_scales_the_measured_epoch_to_the_full_data():
    results = {network_id: {"ips": 50_000.0, "eval_ips": 10_000.0} for network_id in ZOO.networks}
    total_epochs = sum(e.train.epochs for e in ZOO.report_experiments)
    # 1 s of training + 1 s of evaluation per epoch
    assert costs.projected_seconds(ZOO, results, "ips", "eval_ips") == pytest.approx(2 * total_epochs)
    assert costs.projected_seconds(ZOO, {}, "ips", "eval_ips") == 0
