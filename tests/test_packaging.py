"""Packaging: the wheel carries zoo.json, identical to the top-level one; the console script."""

import pytest
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_the_zoo(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "report", "build", "*.egg-info", "__pycache__", ".pytest_cache"),
        symlinks=True)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source),
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("keras_cifar-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("keras_cifar/zoo/zoo.json") == (ROOT / "zoo.json").read_bytes()
        assert z.read("keras_cifar/reproduce/original_curves.csv") == (
            ROOT / "keras_cifar/reproduce/original_curves.csv").read_bytes()
        assert "keras_cifar/reference/torch_trainer.py" in z.namelist()
        entry_points = next(n for n in z.namelist() if n.endswith("entry_points.txt"))
        assert "keras-cifar = keras_cifar.cli:main" in z.read(entry_points).decode()
