"""bench/step_timing.py: what the train-step benchmarks share."""

import json

import keras
import pytest

from keras_cifar.bench.step_timing import fit_ms_per_step, measure_in_subprocess, write_json


def test_a_fit_is_timed_once_per_epoch_per_step():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ms = fit_ms_per_step(model, batch_size=8, steps=3, epochs=2)
    assert len(ms) == 2 and all(m > 0 for m in ms)
    assert model.optimizer.iterations.numpy() == 6


def test_a_worker_answers_with_its_last_line_as_json_and_a_failure_names_its_label(tmp_path):
    (tmp_path / "echo_worker.py").write_text(
        "import json, os, sys\nprint('warming up')\n"
        "print(json.dumps({**json.loads(sys.argv[1]), 'env': os.environ['MARK']}))\n")
    env = {"PYTHONPATH": str(tmp_path), "MARK": "seen"}
    assert measure_in_subprocess("echo_worker", {"a": [1, 2]}, "echo", env) == {
        "a": [1, 2], "env": "seen"}
    with pytest.raises(RuntimeError, match="no-such-module failed"):
        measure_in_subprocess("keras_cifar.no_such_module", {}, "no-such-module")


def test_the_json_names_the_machine_and_keeps_the_fields(tmp_path):
    path = tmp_path / "deep" / "bench.json"
    write_json(path, repeats=3, variants=[{"ms": 1.5}])
    written = json.loads(path.read_text())
    assert written["repeats"] == 3 and written["variants"] == [{"ms": 1.5}]
    assert written["cpu"] and written["cores"] >= 1 and written["finished"][:2] == "20"


@pytest.mark.parametrize("argv,message", [(["--epochs", "1"], "--epochs must be at least 2"),
                                          (["--repeats", "0"], "--repeats must be at least 1")])
def test_the_shared_options_refuse_what_cannot_be_measured(argv, message, capsys):
    import argparse

    from keras_cifar.bench.step_timing import add_step_arguments, parse_step_arguments

    parser = argparse.ArgumentParser()
    add_step_arguments(parser)
    assert parse_step_arguments(parser, []).epochs == 3
    with pytest.raises(SystemExit) as exit_:
        parse_step_arguments(parser, argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
