"""scripts/bench_export.py: every format is exported, checked against Keras, sized and timed."""

import json

import pytest

from keras_cifar.bench import export_speed as bench_export


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sizes_and_latencies_of_every_runtime(tmp_path, capsys):
    out = tmp_path / "bench_export.json"
    assert bench_export.main(["--network", "mlp2", "--repeats", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    runtimes = {"keras", "saved_model", "onnx", "litert"}
    assert set(result["sizes_bytes"]) == runtimes == set(result["seconds_per_batch"])
    # mlp2 holds 920,842 float32 parameters: each file carries them once (3.5 MiB)
    assert all(size > 920_842 * 4 for size in result["sizes_bytes"].values())
    for seconds in result["seconds_per_batch"].values():
        assert set(seconds) == {"1", "256"} and 0 < seconds["1"] < seconds["256"]
    table = capsys.readouterr().out
    rows = [line.split(" | ")[0].strip("| ") for line in table.splitlines()[3:]]
    assert rows == ["keras", "saved_model", "onnx", "litert"]
