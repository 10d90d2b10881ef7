"""scripts/bench_notebook_loss.py: both variants are timed in their own processes, the ratio is
theirs, and the variant with the metric really computes it."""

import json

import pytest

from keras_cifar.bench import notebook_loss_cost as bench


def test_one_epoch_is_refused_since_the_first_is_dropped(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--epochs", "1"])
    assert "--epochs must be at least 2" in capsys.readouterr().err


@pytest.mark.slow
def test_times_both_variants_and_their_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--networks", "mlp2", "--repeats", "1", "--epochs", "2",
                       "--train-images", "640", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["networks"]["mlp2"]
    assert len(result["runs_with"]) == len(result["runs_without"]) == 1
    assert 0 < result["epoch_s_without"] and 0 < result["epoch_s_with"]
    assert result["ratio"] == pytest.approx(result["epoch_s_with"] / result["epoch_s_without"])
    assert "mlp2: epoch" in capsys.readouterr().out


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
