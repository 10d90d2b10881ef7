"""scripts/bench_jax_kernels.py: Keras' layers against the reshape-and-matmul kernels on JAX,
each variant in its own process, and the options it refuses."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_cifar.bench.jax_kernels_cost import VARIANTS

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_jax_kernels.py"
HAS_JAX = importlib.util.find_spec("jax") is not None


def _script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=900)


def test_the_variants_are_keras_each_kernel_alone_and_both():
    assert VARIANTS == {"keras": (), "max_pooling": ("max_pooling",),
                        "convolution": ("convolution",), "both": ("max_pooling", "convolution")}


@pytest.mark.parametrize("args,message", [
    (["--epochs", "1"], "--epochs must be at least 2"),
    (["--networks", "lenet5,resnet50"], "resnet50 is not in the zoo"),
    (["--networks", "mlp2"], "mlp2 has no convolution or max-pooling to compare"),
])
def test_bad_options_are_refused_before_any_measurement(args, message):
    if not HAS_JAX and "--networks" in args:
        pytest.skip("jax is not installed (the jax extra): the script refuses that first")
    done = _script(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (the jax extra)")
def test_every_variant_is_timed_and_the_json_has_its_speedup(tmp_path):
    out = tmp_path / "kernels.json"
    done = _script("--networks", "lenet5", "--repeats", "1", "--epochs", "2", "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["variant"]: row for row in json.loads(out.read_text())["variants"]}
    assert set(rows) == set(VARIANTS)
    assert all(len(r["ms_per_step"]) == 1 and r["median_ms"] > 0 for r in rows.values())
    assert rows["keras"]["speedup"] == 1
    assert rows["both"]["speedup"] == pytest.approx(
        rows["keras"]["median_ms"] / rows["both"]["median_ms"])
    assert "| lenet5 |" in done.stdout
