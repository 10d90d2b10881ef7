"""scripts/torch_reference.py: the notebooks' protocol in plain PyTorch, resumable, in the run
layout the results table reads. Skipped where PyTorch is not installed (it is the `bench` extra)."""


import pytest

from keras_cifar.reproduce import results
from keras_cifar.training import rundir
from keras_cifar.data import synthetic_data
from keras_cifar.training.notebook_loss import notebook_scale_loss
from keras_cifar.zoo import parse_zoo

pytest.importorskip("torch")
from keras_cifar.reference import torch_trainer as torch_reference  # noqa: E402 (after the skip)

ZOO = parse_zoo({
    "networks": [{"id": "tiny", "preprocess": "symmetric", "layers": [
        {"kind": "conv", "filters": 4, "activation": "relu"}, {"kind": "maxpool"},
        {"kind": "flatten"}, {"kind": "dense", "units": 10}],
        "train": {"lr": 0.01, "momentum": 0.9, "epochs": 3}}],
    "experiments": [{"id": "tiny-a", "network": "tiny", "lr": 0.01, "momentum": 0.9,
                     "epochs": 3, "original": {"test_accuracy": 0.9}}],
})
DATA = synthetic_data(300, 100)


def run(out, seed=0):
    experiment = ZOO.experiment("tiny-a")
    return torch_reference.run_experiment(experiment, ZOO.network("tiny"), DATA, seed, out,
                                          threads=1)


def test_writes_a_finished_run_the_results_table_reads(tmp_path):
    run_dir = run(tmp_path)
    assert run_dir == tmp_path / "torch" / "tiny-a"
    history = rundir.read_history(run_dir)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    # 100 test images: a batch of 64 and one of 36, so the notebook scale is not mean / 64
    last = history[-1]
    assert last["val_notebook_loss"] != pytest.approx(last["val_loss"] / 64, rel=1e-3)
    assert rundir.read_metrics(run_dir)["test_loss_notebook"] == last["val_notebook_loss"]
    assert not (run_dir / torch_reference.CHECKPOINT).exists()
    reference = results.finished_runs(tmp_path, ZOO.experiment("tiny-a"), results.TORCH_SUBDIR)
    assert [r.seed for r in reference] == [0]


def test_the_notebook_test_pass_matches_the_numpy_definition():
    trainer = torch_reference.TorchTrainer(ZOO.network("tiny"), DATA.train_images,
                                           DATA.train_labels, DATA.test_images, DATA.test_labels,
                                           lr=0.01, momentum=0.9, threads=1)
    import torch

    with torch.no_grad():
        x = trainer._scale(trainer.test_x)
        per_example = torch.nn.functional.cross_entropy(trainer.model(x).double(), trainer.test_y,
                                                        reduction="none").numpy()
    got = trainer.evaluate_notebook()
    assert got["val_notebook_loss"] == pytest.approx(notebook_scale_loss(per_example), rel=1e-9)
    assert x.min() < -0.5 and x.max() <= 1.0  # [-1, 1] inputs, as the notebooks


def test_an_interrupted_run_resumes_to_the_same_history(tmp_path, monkeypatch):
    straight = rundir.read_history(run(tmp_path / "straight"))
    original_epoch = torch_reference.TorchTrainer.train_epoch
    calls = []

    def interrupted_epoch(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original_epoch(self)

    monkeypatch.setattr(torch_reference.TorchTrainer, "train_epoch", interrupted_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(torch_reference.TorchTrainer, "train_epoch", original_epoch)
    resumed = rundir.read_history(run(tmp_path / "resumed"))
    for a, b in zip(straight, resumed):
        assert a["val_accuracy"] == b["val_accuracy"]
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-9)
