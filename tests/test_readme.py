"""The README's "From Python" code block runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_from_python_block_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8")
    section = text.split("## From Python", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    (tmp_path / "figures").symlink_to(README.parent / "figures")  # the published table it reads
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["run"].run_dir.parent == Path("runs")
    assert set(namespace["figures"]) == {"curves.png", "kernels.png", "confusion.png"}
    assert namespace["probabilities"].shape == (4, 10)
    assert (tmp_path / "cnn3.tflite").stat().st_size > 1_000_000
    assert "cnn3" in {row["id"] for row in namespace["table"]}
    out = capsys.readouterr().out
    assert "'mlp-baseline'" in out and "%" in out
