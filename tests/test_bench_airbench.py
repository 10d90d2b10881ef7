"""scripts/bench_airbench.py's summary: medians over steady epochs, the ratio, a full run's
projection and the fraction of the matmul peak; the script refuses what it cannot measure."""

import subprocess
import sys
from pathlib import Path

import pytest

from keras_cifar.bench.airbench_speed import (FULL_EPOCHS, _peak_rss_mib, summarise, summary_table,
                                              training_flops_per_image)

from conftest import ZOO

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_airbench.py"


def _keras(epochs, rss=1000.0):
    return {"epoch_seconds": epochs, "whitening_seconds": 2.0, "tta_seconds": 10.0,
            "pipeline_images_per_s": 20_000.0, "train_images": 50_000,
            "matmul_gflops": 200.0, "peak_rss_mib": rss}


def _airbench(epochs):
    return {"epoch_seconds": epochs, "matmul_gflops": 250.0, "peak_rss_mib": 900.0}


def test_summary_uses_steady_epochs_and_projects_a_full_run():
    keras_runs = [_keras([100.0, 50.0, 52.0]), _keras([90.0, 48.0, 60.0], rss=1200.0)]
    airbench_runs = [_airbench([80.0, 75.0, 76.0]), _airbench([85.0, 77.0, 74.0])]
    s = summarise(keras_runs, airbench_runs, flops_per_epoch=1e13)
    assert s["keras_epoch_seconds"] == 51.0  # median of 50, 52, 48, 60
    assert s["airbench_epoch_seconds"] == 75.5
    assert s["speedup"] == pytest.approx(75.5 / 51.0)
    assert s["keras_full_run_minutes"] == pytest.approx((95.0 + (FULL_EPOCHS - 1) * 51.0 + 12.0) / 60)
    assert s["keras_fraction_of_peak"] == pytest.approx(1e13 / 51.0 / 1e9 / 200.0)
    assert s["keras_peak_rss_mib"] == 1200.0
    assert s["pipeline_images_per_s"] == 20_000.0 and s["training_images_per_s"] == 50_000 / 51.0


def test_training_flops_of_airbench93():
    # forward 2 x MACs, weight gradients 2 x MACs, input gradients but for the whitening layer
    flops = training_flops_per_image(ZOO.network("airbench93"))
    assert 0.3e9 < flops < 0.45e9  # ~64M multiply-adds forward


def test_peak_rss_is_read_from_time_v():
    assert _peak_rss_mib("\tMaximum resident set size (kbytes): 2097152\n") == 2048.0
    assert _peak_rss_mib("nothing") is None


def test_the_script_refuses_a_single_epoch():
    done = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(SCRIPT), "--epochs", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "at least 2" in done.stderr


def test_the_table_has_a_column_per_backend_against_the_same_airbench_runs():
    airbench_runs = [_airbench([80.0, 75.0, 76.0])]
    summaries = {"tensorflow": summarise([_keras([90.0, 50.0, 50.0])], airbench_runs, 1e13),
                 "torch": summarise([_keras([200.0, 150.0, 150.0])], airbench_runs, 1e13)}
    table = summary_table("Some CPU", 2, "float32", summaries)
    header, _, seconds, images = table.strip().splitlines()[1:5]
    assert header.count("keras-cifar on") == 2 and "PyTorch backend" in header
    assert seconds == "| seconds per epoch | 50.0 | 150.0 | 75.5 |"
    assert images == "| training images/s (x airbench's) | 1,000 (1.51x) | 333 (0.50x) | 662 |"
    assert "keras-cifar on PyTorch backend is 0.50x airbench's speed" in table


def test_the_script_refuses_an_unknown_backend():
    done = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(SCRIPT),
                           "--backends", "jax,tf"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Unknown Keras backend" in done.stderr and "backend='tf'" in done.stderr
