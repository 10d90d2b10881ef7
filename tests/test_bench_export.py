"""scripts/bench_export.py: every format is exported, checked against Keras, sized and timed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_export.py"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sizes_and_latencies_of_every_runtime(tmp_path):
    out = tmp_path / "bench_export.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--network", "mlp2", "--repeats", "2",
                           "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    runtimes = {"keras", "saved_model", "onnx", "litert"}
    assert set(result["sizes_bytes"]) == runtimes == set(result["seconds_per_batch"])
    # mlp2 holds 920,842 float32 parameters: each file carries them once (3.5 MiB)
    assert all(size > 920_842 * 4 for size in result["sizes_bytes"].values())
    for seconds in result["seconds_per_batch"].values():
        # no order asserted between the two: a timing, not a test (a busy machine reverses it)
        assert set(seconds) == {"1", "256"} and all(v > 0 for v in seconds.values())
    table = done.stdout
    rows = [line.split(" | ")[0].strip("| ") for line in table.splitlines()[3:]]
    assert rows == ["keras", "saved_model", "onnx", "litert"]
