"""scripts/bench.py: one measurement of the real training path (the cost model is
keras_cifar.costs, tested in test_costs.py)."""


import numpy as np
import pytest

from keras_cifar.data import synthetic_data

from conftest import ZOO

from keras_cifar.bench import speed as bench


@pytest.mark.slow
def test_keras_measure_times_the_training_path_and_its_epoch_tail():
    data = synthetic_data(640, 200)
    row = bench.keras_measure(ZOO.network("mlp2"), data, epochs=2)
    assert row["images_per_s"] == pytest.approx(640 / row["epoch_train_s"])
    assert row["epoch_wall_s"] > row["epoch_train_s"] > 0
    assert 0 <= row["tail_ms"] < 1e3 * row["epoch_train_s"]
    assert np.isfinite(row["stall_ratio"]) and row["stall_ratio"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_backend_measurement_runs_train_run_on_that_backend(backend):
    import argparse
    import importlib.util

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    args = argparse.Namespace(epochs=2, train_images=640, data=None, workers=1)
    row = bench.measure_in_subprocess("keras", "mlp2", args, backend)
    assert row["backend"] == backend
    assert row["images_per_s"] == pytest.approx(640 / row["epoch_train_s"])
