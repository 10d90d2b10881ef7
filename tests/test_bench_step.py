"""scripts/bench_step.py: the variants measured (layer kinds taken out, GELU fused or not, in
both precisions), each in its own process, and the options it refuses."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_cifar.bench.step_cost import PRECISIONS, variants

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_step.py"


def _script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=900)


def test_each_precision_has_the_whole_network_both_ways_and_each_layer_kind_taken_out():
    found = variants("airbench93")
    assert len(found) == 10
    for precision in PRECISIONS:
        mine = [v for v in found if v["precision"] == precision]
        whole = [v for v in mine if not v["without"]]
        assert sorted(v["fused"] for v in whole) == [False, True]
        assert sorted(tuple(v["without"]) for v in mine if v["without"]) == [
            ("activation",), ("activation", "batchnorm"), ("batchnorm",)]
        # as train_run trains: fused only in mixed precision
        assert all(v["fused"] == (precision != "float32") for v in mine if v["without"])


@pytest.mark.parametrize("args,message", [
    (["--epochs", "1"], "--epochs must be at least 2"),
    (["--network", "resnet50"], "--network resnet50 is not in the zoo"),
])
def test_bad_options_are_refused_before_any_measurement(args, message):
    done = _script(*args)
    assert done.returncode == 2 and message in done.stderr


@pytest.mark.slow
def test_every_variant_is_timed_in_a_process_of_its_own(tmp_path):
    out = tmp_path / "step.json"
    done = _script("--network", "lenet5", "--repeats", "1", "--epochs", "2", "--json", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["network"] == "lenet5" and len(result["variants"]) == 10
    assert all(len(v["ms_per_step"]) == 1 and v["median_ms"] > 0 for v in result["variants"])
    assert "| mixed_bfloat16 | without activation, batchnorm | fused |" in done.stdout
