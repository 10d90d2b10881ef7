"""scripts/twin_run.py: keras-cifar's run and the PyTorch reference's loop, from the same initial
weights in the same order, stay together epoch after epoch. Skipped without PyTorch."""


import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_cifar.data import synthetic_data
from keras_cifar.zoo import parse_zoo

pytest.importorskip("torch")
from keras_cifar.reference import torch_trainer as torch_reference  # noqa: E402
from keras_cifar.reference import twin_run  # noqa: E402

ZOO = parse_zoo({
    "networks": [{"id": "tiny", "preprocess": "symmetric", "layers": [
        {"kind": "conv", "filters": 4, "activation": "relu"}, {"kind": "maxpool"},
        {"kind": "flatten"}, {"kind": "dense", "units": 16, "activation": "relu"},
        {"kind": "dense", "units": 10}],
        "train": {"lr": 0.05, "momentum": 0.9, "epochs": 3}}],
    "experiments": [{"id": "tiny-a", "network": "tiny", "lr": 0.05, "momentum": 0.9,
                     "epochs": 3, "original": {"test_accuracy": 0.9}}],
})
# 300 images: batches of 64 and a last one of 44, as the notebooks' last partial batch
DATA = synthetic_data(300, 100)


def twin(**kwargs):
    return twin_run.twin_run(ZOO.experiment("tiny-a"), ZOO.network("tiny"), DATA, threads=1,
                             **kwargs)


@pytest.mark.slow
def test_both_sides_take_the_same_steps_epoch_after_epoch():
    rows = twin()
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert r["weights"] < 1e-4
        assert r["keras_accuracy"] == pytest.approx(r["torch_accuracy"], abs=0.011)
        assert r["keras_train_loss"] == pytest.approx(r["torch_train_loss"], rel=1e-4)
        assert r["keras_test_loss"] == pytest.approx(r["torch_test_loss"], rel=1e-4)


@pytest.mark.slow
def test_a_different_order_shows_from_the_first_epoch(monkeypatch):
    original = torch_reference.TorchTrainer.train_epoch

    def reversed_order(self, order=None):
        return original(self, order=np.asarray(order)[::-1].copy())

    monkeypatch.setattr(torch_reference.TorchTrainer, "train_epoch", reversed_order)
    rows = twin(epochs=1)
    assert rows[0]["weights"] > 1e-3


def test_an_order_that_is_not_a_permutation_is_refused():
    trainer = torch_reference.TorchTrainer(ZOO.network("tiny"), DATA.train_images,
                                           DATA.train_labels, DATA.test_images, DATA.test_labels,
                                           lr=0.05, momentum=0.9, threads=1)
    with pytest.raises(ValueError, match="each of the 300 training images"):
        trainer.train_epoch(order=np.zeros(300, dtype=np.int64))


def test_the_command_line_refuses_zero_epochs():
    script = Path(__file__).resolve().parents[1] / "scripts" / "twin_run.py"
    done = subprocess.run([sys.executable, str(script), "mlp-lr0.005", "--data-dir", "unused",
                           "--epochs", "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--epochs must be at least 1" in done.stderr


def test_the_plot_draws_both_sides(tmp_path):
    rows = [{"epoch": e, "keras_accuracy": 0.3 + e / 10, "torch_accuracy": 0.31 + e / 10,
             "keras_test_loss": 2.0 - e / 10, "torch_test_loss": 2.01 - e / 10}
            for e in range(3)]
    path = twin_run.plot_twins(rows, tmp_path / "twins.png", "twins")
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 2 * image.shape[0]  # two panels side by side
