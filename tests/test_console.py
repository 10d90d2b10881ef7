"""console: a CLI train prints none of TensorFlow's start-up chatter; importing the package
changes no process globals."""

import os
import subprocess
import sys

import pytest

CHATTER = ("absl::InitializeLog", "oneDNN", "cuInit", "cudart_stub", "use_unbounded_threadpool",
           "I0000", "E0000", "W0000")


def run(args, tmp_path, **env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_CIFAR_VERBOSE")}
    environment.update(env, KERAS_CIFAR_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "keras_cifar", *args], capture_output=True,
                          text=True, env=environment, cwd=tmp_path, timeout=600)


@pytest.mark.slow
def test_a_cli_train_prints_no_tensorflow_chatter(tmp_path):
    done = run(["train", "mlp2", "--data", "synthetic", "--epochs", "2", "--limit", "300",
                "--out", str(tmp_path / "runs")], tmp_path)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert [line for line in output.splitlines() if any(c in line for c in CHATTER)] == []
    assert "Epoch 1/2" in done.stdout and "test accuracy" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "--verbose"])
def test_worker_processes_are_quiet_too_unless_verbose(tmp_path, zoo_file, verbose):
    """`reproduce run --workers 2` spawns processes that import TensorFlow themselves."""
    done = run([*(["--verbose"] if verbose else []), "--zoo", str(zoo_file), "reproduce", "run",
                "tiny-a", "--seeds", "0,1",
                "--data", "synthetic", "--limit", "100", "--workers", "2",
                "--out", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 0, done.stderr
    chatter = [line for line in (done.stdout + done.stderr).splitlines()
               if any(c in line for c in CHATTER)]
    assert bool(chatter) is verbose, chatter
    assert "[2/2] tiny-a-s1" in done.stdout


def test_importing_the_package_sets_no_environment_and_no_matplotlib_backend(tmp_path):
    code = ("import os, sys; before = dict(os.environ); import keras_cifar, keras_cifar.plots.figures, "
            "keras_cifar.reproduce; import matplotlib; "
            "print(dict(os.environ) == before, 'matplotlib.pyplot' in sys.modules, "
            "'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.split() == ["True", "False", "False"], done.stderr
