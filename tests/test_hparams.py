"""hparams: a sweep's or reproduction's runs appear in TensorBoard's HParams data, read back from
the event files."""

import json

import pytest

from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.reproduce.hparams import TENSORBOARD_SUBDIR, write_hparams_logs

from conftest import SWEEP_GRID


def write_run(root, name, *, network="net", lr=0.01, momentum=0.9, seed=0, accuracies=(0.3, 0.5),
              status=rundir.STATUS_FINISHED):
    run_dir = root / name
    _fs.atomic_write_json(run_dir / rundir.CONFIG, {"status": status, "identity": {
        "network": {"id": network}, "lr": lr, "momentum": momentum, "seed": seed}})
    rows = "".join(f"{e},{a},{2 - a}\n" for e, a in enumerate(accuracies))
    (run_dir / rundir.HISTORY).write_text("epoch,val_accuracy,val_loss\n" + rows)
    _fs.atomic_write_json(run_dir / rundir.METRICS, {"test_accuracy": accuracies[-1],
                                                    "test_loss": 2 - accuracies[-1]})
    return run_dir


def read_logs(log_dir):
    """{run: {"experiment" or "session": plugin data, tag: [(step, value)]}} from event files."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    found = {}
    for events in sorted(log_dir.rglob("events.out.tfevents.*")):
        run = events.parent.relative_to(log_dir).as_posix()
        entry = found.setdefault(run, {})
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content)
                    if value.tag == metadata.EXPERIMENT_TAG:
                        entry["experiment"] = data.experiment
                    elif value.tag == metadata.SESSION_START_INFO_TAG:
                        entry["session"] = data.session_start_info
                else:
                    number = tf.make_ndarray(value.tensor).item()
                    entry.setdefault(value.tag, []).append((event.step, number))
    return found


def test_every_finished_run_is_a_session_with_its_hparams_and_metrics(tmp_path):
    a = write_run(tmp_path / "runs", "net-a", lr=0.01, accuracies=(0.2, 0.6, 0.5))
    b = write_run(tmp_path / "runs", "net-b", lr=0.1, momentum=0, seed=2)
    unfinished = write_run(tmp_path / "runs", "net-c", status=rundir.STATUS_RUNNING)
    log_dir = write_hparams_logs(tmp_path, [a, b, unfinished], {"net-a": "exp-a", "net-b": "exp-b"})
    assert log_dir == tmp_path / TENSORBOARD_SUBDIR
    logs = read_logs(log_dir)
    assert set(logs) == {".", "net-a", "net-b"}
    experiment = logs["."]["experiment"]
    domains = {h.name: [getattr(v, v.WhichOneof("kind")) for v in h.domain_discrete.values]
               for h in experiment.hparam_infos}
    assert domains == {"network": ["net"], "lr": [0.01, 0.1], "momentum": [0.0, 0.9],
                       "seed": [0.0, 2.0], "status": ["finished"], "experiment": ["exp-a", "exp-b"]}
    assert [m.name.tag for m in experiment.metric_infos] == [
        "test_accuracy", "best_test_accuracy", "test_loss", "diverged_epoch"]
    session = logs["net-a"]["session"]
    assert session.hparams["lr"].number_value == pytest.approx(0.01)
    assert session.hparams["experiment"].string_value == "exp-a"
    assert logs["net-a"]["test_accuracy"] == [(2, pytest.approx(0.5))]
    assert logs["net-a"]["best_test_accuracy"] == [(2, pytest.approx(0.6))]
    assert [v for _, v in logs["net-a"]["epoch_test_accuracy"]] == pytest.approx([0.2, 0.6, 0.5])


def test_rewriting_replaces_the_logs(tmp_path):
    a = write_run(tmp_path / "runs", "net-a")
    write_hparams_logs(tmp_path, [a])
    write_hparams_logs(tmp_path, [])
    logs = read_logs(tmp_path / TENSORBOARD_SUBDIR)
    assert set(logs) == {"."} and not (tmp_path / f".{TENSORBOARD_SUBDIR}.tmp").exists()


@pytest.mark.slow
def test_a_sweeps_runs_appear_in_the_hparams_data(sweep_out):
    logs = read_logs(sweep_out / TENSORBOARD_SUBDIR)
    sessions = {run: entry["session"] for run, entry in logs.items() if "session" in entry}
    assert len(sessions) == 4
    grid = {(s.hparams["lr"].number_value, s.hparams["momentum"].number_value)
            for s in sessions.values()}
    assert grid == SWEEP_GRID
    for run, entry in logs.items():
        if run != ".":
            metrics = json.loads((sweep_out / "runs" / run / rundir.METRICS).read_text())
            assert entry["test_accuracy"][-1][1] == pytest.approx(metrics["test_accuracy"])
