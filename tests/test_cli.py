"""The CLI: help everywhere, zoo list/show, inspect, completion, clean errors."""

import json
import re

import click
import pytest

from keras_cifar.cli import cli

from conftest import ZOO


def all_commands(group=cli, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


COMMANDS = list(all_commands())


def test_expected_commands_exist():
    assert {("zoo", "list"), ("zoo", "show"), ("inspect",), ("data", "info"), ("train",),
            ("evaluate",), ("predict",), ("plot",), ("kernels",), ("export",),
            ("reproduce", "run"), ("reproduce", "list"), ("reproduce", "report"),
            ("reproduce", "publish")} <= set(COMMANDS)


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "keras-cifar")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help_with_an_example(runner, command, flag):
    result = runner.invoke(cli, [*command, flag])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "keras-cifar " in result.output.split("Usage:", 1)[1]  # an example line


def test_zoo_list_prints_every_network_with_the_originals_numbers(runner, zoo):
    result = runner.invoke(cli, ["zoo", "list"])
    assert result.exit_code == 0
    for network_id, params in [("mlp-baseline", "1,969,930"), ("cnn3", "2,703,242"),
                               ("lenet5", "729,322")]:
        assert network_id in result.output and params in result.output
    assert "original best" in result.output
    assert "53.9%" in result.output and "74.2%" in result.output  # MLP baseline, CNN 3
    cnn3_line = next(line for line in result.output.splitlines() if line.startswith("cnn3 "))
    assert cnn3_line.split()[2:5] == ["0.01", "0.9", "20"]  # lr 0.01 as run, not the text's 0.1


def test_zoo_list_json(runner):
    result = runner.invoke(cli, ["zoo", "list", "--json"])
    rows = json.loads(result.output)
    assert len(rows) == len(ZOO.networks) == 9  # the report's 7 and airbench's 2
    assert {"id", "title", "layers", "params"} <= set(rows[0])
    assert {r["id"]: r["params"] for r in rows}["mlp2"] == 920_842


def test_zoo_show(runner):
    result = runner.invoke(cli, ["zoo", "show", "lenet5"])
    assert result.exit_code == 0, result.output
    assert "lenet5-lr0.01" in result.output and "original accuracy 67.2%" in result.output
    assert "the report's text says lr=0.1" in result.output  # lenet5-m0.2 and m0.5 ran 0.01
    assert "Total params: 729,322" in result.output
    assert "(6, 6, 32)" in result.output


@pytest.mark.parametrize("args", [["zoo", "show", "cnn9"], ["inspect", "mlp3"], ["train", "MLP2"]])
def test_unknown_network_exits_2_with_suggestion(runner, args):
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "Known networks:" in result.output and "Did you mean" in result.output


def test_inspect_network_prints_summary_and_dump(runner):
    result = runner.invoke(cli, ["inspect", "cnn3"])
    assert result.exit_code == 0, result.output
    assert "Total params: 2,703,242" in result.output
    assert "Parameters & Structure" in result.output
    assert "Layer: conv1.kernel | Size: (3, 3, 3, 64) |" in result.output
    assert "Layer: dense3.bias | Size: (10,) |" in result.output
    assert "..." in result.output


def values_of(output, weight):
    """The numbers printed for one weight by `inspect`."""
    block = output.split(f"Layer: {weight} |", 1)[1].split("Layer:", 1)[0]
    return [float(x) for x in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", block.split("Values:", 1)[1])]


@pytest.mark.slow
def test_inspect_all_prints_every_value(runner):
    short = runner.invoke(cli, ["inspect", "mlp2"]).output
    full = runner.invoke(cli, ["inspect", "mlp2", "--all"]).output
    assert "..." in short and "..." not in full
    every = values_of(full, "dense3.bias")
    assert len(every) == 256 and every[:2] == values_of(short, "dense3.bias")
    assert len(values_of(full, "dense4.kernel")) == 256 * 10


def test_completion_offers_network_ids(runner):
    from click.shell_completion import ShellComplete

    completer = ShellComplete(cli, {}, "keras-cifar", "_KERAS_CIFAR_COMPLETE")
    items = [c.value for c in completer.get_completions(["train"], "cn")]
    assert items == ["cnn1", "cnn2", "cnn3"]


def test_bad_zoo_file_is_a_clean_usage_error(runner, tmp_path):
    bad = tmp_path / "zoo.json"
    bad.write_text('{"networks": [')
    result = runner.invoke(cli, ["--zoo", str(bad), "zoo", "list"])
    assert result.exit_code == 2
    assert "not valid JSON at line 1" in result.output and "Traceback" not in result.output


def test_zoo_option_replaces_builtin(runner, tmp_path, zoo):
    raw = json.loads(zoo.path.read_text())
    raw["networks"] = raw["networks"][2:3]
    raw["experiments"] = [e for e in raw["experiments"] if e["network"] == "mlp2"]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(raw))
    rows = json.loads(runner.invoke(cli, ["--zoo", str(path), "zoo", "list", "--json"]).output)
    assert [r["id"] for r in rows] == ["mlp2"]


def test_module_entry_point_runs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "keras_cifar", "zoo", "list", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and len(json.loads(done.stdout)) == len(ZOO.networks)


# Each case parses (or fails to parse) before any command body runs; none may start TensorFlow.
PARSE_ONLY = [["train", "--help"], ["predict", "--help"], ["reproduce", "run", "--help"],
              ["sweep", "--help"], ["kernels", "model.keras"], ["train", "no-such-net"],
              ["train", "cnn3", "--lr", "-1"], ["export", "--help"], ["zoo", "list"]]


@pytest.mark.slow
def test_help_and_usage_errors_answer_without_tensorflow_in_a_fresh_process():
    """`keras-cifar CMD --help` and usage errors: no TensorFlow import, under 1 s of CPU."""
    import subprocess
    import sys

    code = ("import resource, sys\n"
            "from keras_cifar.cli import cli\n"
            "try:\n"
            "    cli(sys.argv[1:], prog_name='keras-cifar')\n"
            "except SystemExit as e:\n"
            "    code = e.code\n"
            "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
            "print('RESULT', code, 'tensorflow' in sys.modules, 'keras' in sys.modules,\n"
            "      usage.ru_utime + usage.ru_stime, file=sys.stderr)\n")
    for args in PARSE_ONLY:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=120)
        result = done.stderr.strip().splitlines()[-1].split()
        assert result[0] == "RESULT", done.stderr
        exit_code, tensorflow, keras, cpu = result[1:]
        assert exit_code in ("0", "2"), (args, done.stderr)
        assert (tensorflow, keras) == ("False", "False"), args
        assert float(cpu) < 1.0, (args, cpu)


def test_a_usage_error_in_a_command_shows_that_commands_usage(runner, trained_run, tmp_path):
    target = tmp_path / "taken.onnx"
    target.write_text("something")
    result = runner.invoke(cli, ["export", str(trained_run.run_dir / "model.keras"), str(target),
                                 "--format", "onnx"])
    assert result.exit_code == 2
    assert "Usage: cli export [OPTIONS] MODEL TARGET" in result.output
    assert "--force" in result.output and target.read_text() == "something"


def test_predict_names_a_folder_and_counts_failures_in_words(runner, trained_run, tmp_path):
    model = str(trained_run.run_dir / "model.keras")
    folder = runner.invoke(cli, ["predict", model, str(tmp_path)])
    assert folder.exit_code == 1 and "is a folder, not an image file" in folder.output
    assert "Errno" not in folder.output and "The image could not be read." in folder.output
    two = runner.invoke(cli, ["predict", model, str(tmp_path), str(tmp_path / "none.png")])
    assert "None of the 2 images could be read." in two.output


@pytest.mark.slow
def test_inspect_all_says_its_size_and_o_writes_the_same_text_to_a_file(runner, tmp_path):
    printed = runner.invoke(cli, ["inspect", "mlp2", "--all"])
    assert printed.exit_code == 0
    assert "Printing all 920,842 values, about 11 MB of text; add -o FILE" in printed.stderr
    written = runner.invoke(cli, ["inspect", "mlp2", "--all", "-o", str(tmp_path / "mlp2.txt")])
    assert written.exit_code == 0 and "Wrote" in written.output
    assert (tmp_path / "mlp2.txt").read_text() == printed.stdout
    missing = runner.invoke(cli, ["inspect", "mlp2", "-o", str(tmp_path / "no" / "x.txt")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


@pytest.mark.slow
def test_plot_draws_an_unfinished_run(runner, tmp_path):
    import keras

    from keras_cifar.data import synthetic_data
    from keras_cifar.errors import TrainingInterrupted
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.train import train_run
    from keras_cifar.zoo import get_network

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train_run(RunConfig.of(get_network("mlp2"), epochs=5), synthetic_data(200, 100),
                  out_dir=tmp_path, name="r", verbose=0, callbacks=[Stop()])
    result = runner.invoke(cli, ["plot", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "curves.png").stat().st_size > 1000
