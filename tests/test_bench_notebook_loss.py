"""scripts/bench_notebook_loss.py: both variants are timed in their own processes, the ratio is
theirs, and the variant with the metric really computes it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_cifar.bench import notebook_loss_cost as bench

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_notebook_loss.py"


def _script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=900)


def test_one_epoch_is_refused_since_the_first_is_dropped():
    done = _script("--epochs", "1")
    assert done.returncode == 2 and "--epochs must be at least 2" in done.stderr


@pytest.mark.slow
def test_times_both_variants_and_their_ratio(tmp_path):
    out = tmp_path / "bench.json"
    done = _script("--networks", "mlp2", "--repeats", "1", "--epochs", "2",
                   "--train-images", "640", "--json", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())["networks"]["mlp2"]
    assert len(result["runs_with"]) == len(result["runs_without"]) == 1
    assert 0 < result["epoch_s_without"] and 0 < result["epoch_s_with"]
    assert result["ratio"] == pytest.approx(result["epoch_s_with"] / result["epoch_s_without"])
    assert "mlp2: epoch" in done.stdout


@pytest.mark.slow
def test_the_timed_fit_logs_the_notebook_loss_only_when_asked(monkeypatch):
    import keras

    logged = []
    original_fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        history = original_fit(self, *args, **kwargs)
        logged.append(set(history.history))
        return history

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    for with_loss in (False, True):
        assert bench.epoch_seconds("mlp2", with_loss, epochs=2, train_images=256) > 0
    assert "val_notebook_loss" not in logged[0] and "val_notebook_loss" in logged[1]
