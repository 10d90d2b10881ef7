"""The README's "From Python" code block runs as written; its Results table is the published one."""

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


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_from_python_block_runs_on_the_other_backends(tmp_path, backend):
    """The same block with `KERAS_BACKEND` set, in a fresh process (Keras reads it once)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (the {backend} extra)")
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    (tmp_path / "figures").symlink_to(README.parent / "figures")
    code += ("\nimport keras, json\nprint(json.dumps([keras.backend.backend(), "
             "run.config['identity'].get('backend'), list(probabilities.shape)]))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f'["{backend}", "{backend}", [4, 10]]'
    assert (tmp_path / "cnn3.tflite").stat().st_size > 1_000_000  # via a TensorFlow process


def test_the_results_table_is_the_published_reproduction():
    """The table between the README's markers is `summary_markdown` of figures/ (a hand edit
    or a publish without `scripts/sync_readme_results.py` fails here)."""
    from keras_cifar.reproduce import readme as sync

    table = sync.readme_table(README.read_text(encoding="utf-8"), README)
    assert table.count("\n") >= 3, "the README's Results table has no rows"
    assert table == sync.published_table(README.parent / "figures"), (
        "README.md's Results table is stale: run python scripts/sync_readme_results.py")


def test_sync_refuses_a_readme_without_markers_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    done = subprocess.run([sys.executable, str(README.parent / "scripts" / "sync_readme_results.py"),
                           "--readme", str(readme)], capture_output=True, text=True)
    assert done.returncode != 0 and "must hold the markers" in done.stderr
    assert readme.read_text() == "# no table here\n"


def _documented_commands():
    """Every `keras-cifar ...`, `python scripts/...` and `scripts/...` line of the README's and docs/' code
    blocks (indented by 4 spaces), continuation lines joined, comments dropped."""
    import shlex

    commands = []
    for path in [README, *sorted((README.parent / "docs").glob("*.md"))]:
        text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
        for line in text.splitlines():
            if not line.startswith("    "):
                continue
            for part in line.split("&&"):
                part = part.split("  #", 1)[0].strip()
                if not part.startswith(("keras-cifar ", "$ keras-cifar ", ".venv/bin/keras-cifar ",
                                        "python scripts/", "scripts/")):
                    continue
                words = shlex.split(part)
                if words[:1] == ["$"]:
                    words = words[1:]
                if words and words[0].endswith("keras-cifar"):
                    commands.append((path.name, words[1:]))
                elif words[:1] == ["python"] and words[1:2] and words[1].startswith("scripts/"):
                    commands.append((path.name, words[1:]))
                elif words[0].startswith("scripts/"):  # a shell script, run as it is
                    commands.append((path.name, words))
    return commands


def test_the_docs_name_commands_that_exist():
    assert len(_documented_commands()) >= 10


@pytest.mark.parametrize("where, words", _documented_commands(),
                         ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60])
def test_every_documented_command_parses(where, words):
    """Each documented command line parses as written: its command exists and its options and
    arguments are accepted (click's own parsing, no command body runs)."""
    import click

    from keras_cifar.cli import cli

    if words[0].startswith("scripts/"):
        assert (README.parent / words[0]).is_file(), f"{where}: {words[0]} does not exist"
        return
    ctx = cli.make_context("keras-cifar", list(words), resilient_parsing=False)
    command = cli
    while isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            break
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
