"""Many runs: --workers N (spawned processes) and Ray tasks give the local executor's table;
a Ray task whose worker is killed is retried and resumes from its run directory."""

import csv
import dataclasses
import json
import os
import signal
import sys
import threading
import time

import pytest

from keras_cifar import errors
from keras_cifar.reproduce import experiments as rep
from keras_cifar.training import rundir
from keras_cifar.cli import cli
from keras_cifar.training.config import RunConfig
from keras_cifar.data import DataSpec
from keras_cifar.reproduce.executors import (Job, check_shared_dir, run_jobs,
                                  threads_per_worker)
from keras_cifar.zoo import load_zoo

from conftest import TEST_ZOO


def table(out):
    """results.csv without the timing column, which differs between executors."""
    with open(out / rep.RESULTS_CSV) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def reproduce(runner, zoo_file, out, *extra):
    result = runner.invoke(cli, ["--zoo", str(zoo_file), "reproduce", "run", "--all", "--seeds", "0", "--data", "synthetic",
                                 "--limit", "200", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return table(out)


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    from click.testing import CliRunner

    tmp = tmp_path_factory.mktemp("local")
    zoo_file = tmp / "zoo.json"
    zoo_file.write_text(json.dumps(TEST_ZOO))
    return reproduce(CliRunner(), zoo_file, tmp / "out")


@pytest.mark.slow
def test_workers_give_the_local_table(runner, zoo_file, tmp_path, local_table):
    assert reproduce(runner, zoo_file, tmp_path / "out", "--workers", "2") == local_table
    # each of the two worker processes got its share of the cores, as its config.json records
    for config in (tmp_path / "out" / "runs").glob("*/config.json"):
        assert json.loads(config.read_text())["speed"]["threads"] == threads_per_worker(2)


@pytest.mark.slow
def test_workers_on_the_pytorch_backend_share_out_pytorchs_threads_too(zoo_file, tmp_path):
    """PyTorch's busy-waiting OpenMP threads, one per core in each of two workers, slowed
    them many times over: each worker now runs its share, as config.json records."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (the torch extra)")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "keras_cifar", "--zoo", str(zoo_file), "reproduce", "run",
         "tiny-a", "tiny-b", "--seeds", "0", "--data", "synthetic", "--limit", "200",
         "--backend", "torch", "--workers", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    configs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/config.json")]
    assert len(configs) == 2
    for config in configs:
        assert config["identity"]["backend"] == "torch"
        assert config["speed"]["threads"] == threads_per_worker(2)


@pytest.mark.parametrize("workers, cores, threads", [(1, 8, 8), (2, 2, 1), (2, 8, 4), (3, 2, 1),
                                                     (3, 8, 2)])
def test_threads_per_worker_share_the_cores(workers, cores, threads):
    assert threads_per_worker(workers, cores) == threads


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_local_table(runner, zoo_file, tmp_path, local_table, ray_cluster):
    assert reproduce(runner, zoo_file, tmp_path / "out", "--executor", "ray") == local_table


@pytest.mark.slow
def test_ray_retries_a_killed_task_and_it_resumes(tmp_path, ray_cluster, zoo_file):
    out = tmp_path / "out"
    zoo = load_zoo(zoo_file)
    experiment = zoo.experiment("tiny-b")
    (status,) = rep.experiment_status(zoo, [experiment], out)
    jobs = rep.experiment_jobs(zoo, [status], DataSpec("synthetic"), out)
    jobs = [dataclasses.replace(jobs[0], config=jobs[0].config.replace(epochs=25))]
    run_dir = out / "runs" / "tiny-b"
    killed = []

    def kill_when_three_epochs_done():
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                if len(rundir.read_history(run_dir)) >= 3:
                    pid = rundir.read_config(run_dir)["pid"]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            except (errors.RunError, KeyError, ProcessLookupError):
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_when_three_epochs_done)
    watcher.start()
    (summary,) = run_jobs(jobs, executor="ray")
    watcher.join()
    assert killed, "the task finished before it could be killed"
    config = rundir.read_config(run_dir)
    assert config["status"] == "finished" and config["pid"] != killed[0]
    assert [int(r["epoch"]) for r in rundir.read_history(run_dir)] == list(range(25))
    assert summary["run_dir"] == str(run_dir)


def test_ray_missing_says_how_to_install(runner, zoo_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = runner.invoke(cli, ["--zoo", str(zoo_file), "reproduce", "run", "--all", "--seeds", "0", "--data", "synthetic",
                                 "--limit", "100", "--out", str(tmp_path), "--executor", "ray"])
    assert result.exit_code == 2
    assert 'pip install "keras-cifar[ray]"' in result.output and "--executor ray needs ray" in result.output


def test_worker_that_cannot_see_the_output_fails_with_that_message(tmp_path):
    job = Job(RunConfig.of(load_zoo().network("mlp2"), epochs=1),
              run_dir=str(tmp_path / "elsewhere" / "runs" / "x"),
              out_dir=str(tmp_path / "elsewhere"), marker="0123456789abcdef")
    with pytest.raises(errors.RunError, match="cannot see the output directory.*every node"):
        check_shared_dir(job)


@pytest.mark.slow
def test_sweep_table_sorted_by_accuracy(sweep_out):
    with open(sweep_out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    accuracies = [float(r["test_accuracy"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {(r["lr"], r["momentum"]) for r in rows} == {("0.01", "0"), ("0.01", "0.9"),
                                                        ("0.05", "0"), ("0.05", "0.9")}
    assert (sweep_out / "sweep.png").exists()


def test_sweep_bad_values_exit_2(runner, tmp_path):
    for args in (["--lr", "0.1,x"], ["--lr", "0.1", "--momentum", "1.2"], ["--lr", "-1"]):
        result = runner.invoke(cli, ["sweep", "mlp2", *args, "--data", "synthetic",
                                     "--out", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert "Received:" in result.output


@pytest.mark.faults
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_diverging_point_is_a_result_and_the_rest_of_the_sweep_runs(runner, tmp_path, workers):
    args = ["sweep", "mlp2", "--lr", "0.01,1e38,0.01", "--momentum", "0", "--epochs", "1",
            "--data", "synthetic", "--limit", "200", "--out", str(tmp_path), "--workers", workers]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 finished, 1 diverged (mlp2-lr1e+38-m0-e1: epoch 1)" in result.output
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["lr"], r["status"]) for r in rows] == [("0.01", "finished"),
                                                      ("1e+38", "diverged in epoch 1")]
    assert rows[1]["test_accuracy"] == "" and (tmp_path / "SWEEP.md").is_file()
    diverged = tmp_path / "runs" / "mlp2-lr1e+38-m0-e1"
    assert rundir.read_run(diverged).diverged_epoch == 1
    # a rerun keeps the divergence instead of training it again, unless asked
    before = (diverged / rundir.CONFIG).stat().st_mtime_ns
    assert runner.invoke(cli, args).exit_code == 0
    assert (diverged / rundir.CONFIG).stat().st_mtime_ns == before
    retried = runner.invoke(cli, [*args, "--retry-diverged"])
    assert retried.exit_code == 0 and "1 diverged" in retried.output
    assert (diverged / rundir.CONFIG).stat().st_mtime_ns != before


@pytest.mark.faults
def test_a_diverged_run_is_a_session_in_the_hparams_logs(runner, tmp_path):
    from keras_cifar.reproduce.hparams import TENSORBOARD_SUBDIR

    from test_hparams import read_logs

    result = runner.invoke(cli, ["sweep", "mlp2", "--lr", "0.01,1e38", "--epochs", "1", "--data",
                                 "synthetic", "--limit", "200", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    logs = read_logs(tmp_path / TENSORBOARD_SUBDIR)
    sessions = {run: entry["session"] for run, entry in logs.items() if "session" in entry}
    status = {run: s.hparams["status"].string_value for run, s in sessions.items()}
    assert status == {"mlp2-lr0.01-m0-e1": "finished", "mlp2-lr1e+38-m0-e1": "diverged"}
    assert logs["mlp2-lr1e+38-m0-e1"]["diverged_epoch"][-1][1] == 1.0


@pytest.mark.faults
@pytest.mark.slow
def test_under_ray_a_diverging_point_leaves_no_run_running_and_no_traceback(
        runner, tmp_path, ray_cluster):
    result = runner.invoke(cli, ["sweep", "mlp2", "--lr", "0.01,1e38", "--momentum", "0,0.9",
                                 "--epochs", "1", "--data", "synthetic", "--limit", "200",
                                 "--out", str(tmp_path), "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert "2 finished, 2 diverged" in result.output and "Traceback" not in result.output
    statuses = {p.name: rundir.run_status(p) for p in (tmp_path / "runs").iterdir()}
    assert rundir.RunStatus.RUNNING not in statuses.values(), statuses


@pytest.mark.slow
def test_a_second_sweep_into_the_same_folder_keeps_the_earlier_points(runner, tmp_path):
    base = ["sweep", "mlp2", "--momentum", "0", "--epochs", "1", "--data", "synthetic",
            "--limit", "100", "--out", str(tmp_path)]
    assert runner.invoke(cli, [*base, "--lr", "0.01"]).exit_code == 0
    second = runner.invoke(cli, [*base, "--lr", "0.05"])
    assert second.exit_code == 0 and "This sweep: 1 finished." in second.output
    with open(tmp_path / "sweep.csv") as f:
        assert sorted(r["lr"] for r in csv.DictReader(f)) == ["0.01", "0.05"]
