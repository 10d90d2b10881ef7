"""scripts/step_parity.py: with PyTorch's weights copied in, keras-cifar's SGD steps are PyTorch's,
for every zoo network at every setting its report experiments use; a wrong loss reduction shows."""

import argparse
import functools
import subprocess
import sys
import json
from pathlib import Path

import pytest

from keras_cifar.zoo import load_zoo

torch = pytest.importorskip("torch")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "step_parity.py"

from keras_cifar.reference import step_parity  # noqa: E402 (after the skip)

ZOO = load_zoo()
SETTINGS = [(network_id, lr, momentum) for network_id in ZOO.networks
            for lr, momentum in step_parity.experiment_settings(ZOO, network_id)]
STEPS = 5  # 4 batches of 64, then one of 16
# Float rounding alone keeps the two within 1e-6, until a hidden unit's pre-activation lands
# within rounding of zero and its ReLU opens on one side only: one unit's gradient then differs,
# and momentum carries it on (cnn3 at lr 0.01, momentum 0.9: 5e-4 after 5 steps, a flip at step 3
# of a pre-activation of 4e-8). A wrong loss reduction or update is 1e-2 or more in one step.
AFTER_STEPS = 3e-3


def test_every_network_is_covered_at_every_experiment_setting():
    report_networks = {e.network for e in ZOO.report_experiments}
    assert {network_id for network_id, _, _ in SETTINGS} == report_networks
    assert len(SETTINGS) == len({(e.network, e.train.lr, e.train.momentum)
                                 for e in ZOO.report_experiments})


def test_airbench_networks_are_refused_by_the_torch_reference_with_a_pointer():
    from keras_cifar.reference.torch_trainer import torch_model

    with pytest.raises(ValueError, match="airbench_reference.py"):
        torch_model(ZOO.network("airbench93"))


@pytest.mark.slow
@pytest.mark.parametrize("network_id, lr, momentum", SETTINGS)
def test_keras_steps_are_pytorchs(network_id, lr, momentum):
    result = step_parity.compare(network_id, STEPS, lr, momentum)
    assert result["steps_per_execution"] == STEPS  # fit ran the run's compiled train step
    assert result["logits_before"] < 1e-5  # weights and forward pass (flatten order included)
    assert result["logits_after"] < AFTER_STEPS  # loss reduction, gradients, update, last batch
    assert result["weights_after"] < AFTER_STEPS


@pytest.mark.slow
def test_every_installed_backend_takes_pytorchs_steps_and_the_others(tmp_path):
    import importlib.util

    backends = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
    results = step_parity.backend_parity(["lenet5"], backends, steps=(1, 3))
    (row,) = results.values()
    assert sorted(row["steps"]) == ["1", "3"]
    for by in row["steps"].values():
        assert all(by[b]["backend"] == b and by[b]["logits_after"] < 1e-5 for b in backends)
        assert by["between_backends"] < 1e-5
    assert row["steps"]["3"]["tensorflow"]["steps_per_execution"] == 3
    assert row["steps"]["3"]["torch"]["steps_per_execution"] == 1


@pytest.mark.slow
def test_a_summed_loss_on_one_side_is_caught(monkeypatch):
    monkeypatch.setattr(torch.nn, "CrossEntropyLoss",
                        functools.partial(torch.nn.CrossEntropyLoss, reduction="sum"))
    result = step_parity.compare("lenet5", STEPS, 0.01, 0.0)
    assert result["logits_before"] < 1e-5 and result["logits_after"] > 1e-2 > AFTER_STEPS


@pytest.mark.slow
def test_run_writes_one_row_per_setting(tmp_path, capsys):
    out = tmp_path / "parity.json"
    args = argparse.Namespace(networks="mlp2", steps=2, lr=None, momentum=None, json=out)
    assert step_parity.run(args) == 0
    rows = json.loads(out.read_text())["networks"]
    assert list(rows) == ["mlp2 lr=0.005 momentum=0.9"]
    assert "mlp2 lr=0.005 momentum=0.9: relative difference" in capsys.readouterr().out


def test_lr_without_momentum_is_refused():
    done = subprocess.run([sys.executable, str(SCRIPT), "--lr", "0.1"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "--lr and --momentum go together" in done.stderr
