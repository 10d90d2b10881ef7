"""reproduce: runs a test zoo's experiments, skips finished ones, resumes, writes the table."""

import csv

import pytest

from keras_cifar.reproduce import experiments as rep
from keras_cifar.reproduce.results import RESULTS_COLUMNS
from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.cli import cli
from keras_cifar.zoo import load_zoo


def invoke(runner, zoo_file, subcommand, *args):
    seeds = ["--seeds", "0"] if subcommand in ("run", "list") else []
    return runner.invoke(cli, ["--zoo", str(zoo_file), "reproduce", subcommand, *seeds, *args])


@pytest.mark.slow
def test_runs_both_then_skips_and_writes_the_table(runner, zoo_file, tmp_path):
    out = tmp_path / "out"
    first = invoke(runner, zoo_file, "run", "--all", "--data", "synthetic", "--limit", "200", "--out", str(out))
    assert first.exit_code == 0, first.output
    with open(out / rep.RESULTS_CSV) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(RESULTS_COLUMNS)
    assert [r["id"] for r in rows] == ["tiny-a", "tiny-b"]
    a, b = rows
    assert a["original_accuracy"] == "0.5000" and b["original_accuracy"] == "" and b["gap"] == ""
    assert a["seeds"] == "1" and a["our_sd"] == "" and a["our_min"] == a["our_mean"] == a["our_max"]
    assert abs(float(a["gap"]) - (0.5 - float(a["our_mean"]))) < 1e-4
    assert (a["report_text_lr"], a["report_words"]) == ("0.1", "half")  # the text's, not the run's
    assert b["report_text_lr"] == "0.02"  # the text states nothing else: the lr as run
    history = rundir.read_history(out / "runs" / "tiny-b")
    metrics = rundir.read_metrics(out / "runs" / "tiny-b")
    assert len(history) == 3 and float(b["our_loss"]) == pytest.approx(metrics["test_loss"], abs=1e-6)
    assert float(b["our_loss_notebook_scale"]) == pytest.approx(history[-1]["val_notebook_loss"],
                                                                rel=1e-4)
    assert float(b["our_last5"]) == pytest.approx(
        sum(r["val_accuracy"] for r in history) / 3, abs=1e-4)  # fewer than 5 epochs: all
    markdown = (out / rep.RESULTS_MD).read_text()
    assert "synthetic data (not CIFAR-10)" in markdown
    assert "| tiny-a | 0.01 | 0.9 | 2 | 50.0 |" in markdown
    assert "open: more than 3 points off, PyTorch reference not run yet" in markdown
    assert (out / "curves" / "tiny-a.png").is_file()
    # TensorBoard HParams logs: the experiment's configuration, and one session per run
    runs_logged = {p.parent.name for p in (out / "tensorboard").rglob("events.out.tfevents.*")}
    assert runs_logged == {"tensorboard", "tiny-a", "tiny-b"}

    model = out / "runs" / "tiny-a" / rundir.MODEL
    before = model.stat().st_mtime_ns
    second = invoke(runner, zoo_file, "run", "--all", "--data", "synthetic", "--limit", "200", "--out", str(out))
    assert second.exit_code == 0
    assert model.stat().st_mtime_ns == before

    listed = invoke(runner, zoo_file, "list", "--out", str(out))
    assert listed.output.count(" done ") == 2 and "Would run" not in listed.output


@pytest.mark.slow
def test_interrupted_experiment_resumes(runner, zoo_file, tmp_path, monkeypatch):
    from keras_cifar.training import callbacks

    out = tmp_path / "out"
    original = callbacks.EpochClock.on_epoch_end

    def interrupt_at_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.EpochClock, "on_epoch_end", interrupt_at_second_epoch)
    stopped = invoke(runner, zoo_file, "run", "tiny-b", "--data", "synthetic", "--limit", "200",
                     "--out", str(out))
    assert stopped.exit_code == 130 and "--resume" in stopped.output
    listed = invoke(runner, zoo_file, "list", "--out", str(out))
    assert "interrupted 1/3" in listed.output and "not started" in listed.output

    monkeypatch.setattr(callbacks.EpochClock, "on_epoch_end", original)
    resumed = invoke(runner, zoo_file, "run", "tiny-b", "--data", "synthetic", "--limit", "200",
                     "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert [r["epoch"] for r in rundir.read_history(out / "runs" / "tiny-b")] == [0, 1, 2]


def test_dry_run_and_selection(runner, zoo_file, tmp_path):
    result = invoke(runner, zoo_file, "run", "--network", "tiny", "--dry-run", "--out", str(tmp_path))
    assert result.exit_code == 0 and "Would run 2 of 2" in result.output
    assert not (tmp_path / "runs").exists()
    nothing = invoke(runner, zoo_file, "run", "--out", str(tmp_path))
    assert nothing.exit_code == 2 and "--all" in nothing.output
    unknown = invoke(runner, zoo_file, "run", "tiny-z", "--dry-run")
    assert unknown.exit_code == 2 and "Did you mean 'tiny-" in unknown.output


def test_concurrent_workers_get_the_longest_experiment_first(zoo_file, tmp_path, monkeypatch):
    from keras_cifar.reproduce import executors
    from keras_cifar.data import DataSpec

    zoo = load_zoo(zoo_file)
    handed_out = {}

    def record(jobs, *, workers, **_):
        handed_out[workers] = [job.run_dir.split("/")[-1] for job in jobs]
        return []

    monkeypatch.setattr(executors, "run_jobs", record)
    for workers in (1, 2):
        rep.reproduce(zoo, zoo.experiments.values(), DataSpec(source="synthetic"), tmp_path,
                      workers=workers)
    # one at a time keeps the zoo's order; two at once take tiny-b (3 epochs) before tiny-a (2)
    assert handed_out == {1: ["tiny-a", "tiny-b"], 2: ["tiny-b", "tiny-a"]}

    # what is left counts, not the epochs: tiny-b with 2 of 3 epochs done now has the least left
    partial = rep.experiment_run_dir(tmp_path, "tiny-b")
    partial.mkdir(parents=True)
    _fs.atomic_write_json(partial / rundir.CONFIG, {"status": rundir.STATUS_INTERRUPTED})
    (partial / rundir.HISTORY).write_text("epoch,loss,seconds\n0,2.3,1.0\n1,2.2,1.0\n")
    statuses = rep.experiment_status(zoo, zoo.experiments.values(), tmp_path, seeds=(0, 1))
    assert [(st.experiment.id, st.seed) for st in rep.longest_first(statuses)] == [
        ("tiny-a", 0), ("tiny-b", 0), ("tiny-b", 1), ("tiny-a", 1)]


@pytest.mark.slow
def test_report_only_regenerates_the_published_results(runner, zoo_file, tmp_path):
    out, published = tmp_path / "out", tmp_path / "figures"
    assert invoke(runner, zoo_file, "run", "--all", "--data", "synthetic", "--limit", "200",
                  "--out", str(out)).exit_code == 0
    assert invoke(runner, zoo_file, "publish", str(published), "--out", str(out)).exit_code == 0
    assert sorted(p.name for p in (published / "runs" / "tiny-a").iterdir()) == sorted(
        rep.PUBLISHED_RUN_FILES)
    committed = (published / rep.RESULTS_CSV).read_text()
    (published / rep.RESULTS_CSV).unlink()
    assert invoke(runner, zoo_file, "report", "--out", str(published)).exit_code == 0
    assert (published / rep.RESULTS_CSV).read_text() == committed


@pytest.mark.slow
def test_a_reproduction_continues_from_published_runs_without_their_models(runner, zoo_file,
                                                                          tmp_path):
    """Published runs leave model.keras out; rerunning into them (as scripts/ladder.sh's notes
    say) counts them as finished instead of failing on the missing model or retraining."""
    out, published = tmp_path / "out", tmp_path / "figures"
    args = ("--data", "synthetic", "--limit", "200")
    assert invoke(runner, zoo_file, "run", "tiny-a", *args, "--out", str(out)).exit_code == 0
    assert invoke(runner, zoo_file, "publish", str(published), "--out", str(out)).exit_code == 0
    history = published / "runs" / "tiny-a" / rundir.HISTORY
    before = history.read_text()
    again = invoke(runner, zoo_file, "run", "--all", *args, "--out", str(published))
    assert again.exit_code == 0, again.output
    assert "2 finished" in again.output
    assert history.read_text() == before  # not retrained
    assert not (published / "runs" / "tiny-a" / rundir.MODEL).exists()
    assert (published / "runs" / "tiny-b" / rundir.MODEL).is_file()  # the one left, trained
    statuses = rep.experiment_status(load_zoo(zoo_file), load_zoo(zoo_file).experiments.values(),
                                     published)
    assert {st.status for st in statuses} == {rundir.RunStatus.FINISHED}


def test_committed_figures_regenerate_exactly():
    """figures/results.csv is what `reproduce report --out figures` writes."""
    from pathlib import Path

    figures = Path(__file__).resolve().parent.parent / "figures"
    if not (figures / rep.RESULTS_CSV).exists():
        pytest.skip("no committed reproduction yet")
    import csv

    with open(figures / rep.RESULTS_CSV, newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    missing = [i for i in ids if not (figures / "runs" / i / "history.csv").is_file()]
    assert not missing, (f"figures/results.csv lists runs that figures/runs/ lacks: {missing}; "
                         "are they committed (not git-ignored)?")
    from keras_cifar.reproduce import results

    # the table is computed from the committed runs, as `reproduce report` does, without drawing
    table = results.results_csv(results.results_rows(load_zoo(), figures))
    assert table == (figures / rep.RESULTS_CSV).read_text()


def test_time_left_comes_from_the_newest_run_of_the_network(tmp_path):
    """A run published from a slower machine (or trained with other kernels) must not set the
    estimate once this machine has trained the network."""
    def write(name, started, seconds):
        run_dir = tmp_path / rep.RUNS_SUBDIR / name
        _fs.atomic_write_json(run_dir / rundir.CONFIG, {
            "status": rundir.STATUS_FINISHED, "started": started,
            "identity": {"network": {"id": "lenet5"}}})
        (run_dir / rundir.HISTORY).write_text(
            "epoch,loss,seconds\n" + "".join(f"{e},2.0,{s}\n" for e, s in enumerate(seconds)))

    assert rep.epoch_estimate(tmp_path, "lenet5")[0] == rep.DEFAULT_EPOCH_SECONDS["lenet5"]
    write("lenet5-lr0.01", "2026-11-29T21:39:41+00:00", [60.0, 65.0, 70.0])
    assert rep.epoch_estimate(tmp_path, "lenet5")[0] == 65.0
    write("lenet5-lr0.01-s1", "2026-11-30T02:00:00+00:00", [25.0, 20.0])  # newer, running
    write("lenet5-lr0.1", "2026-11-28T10:00:00+00:00", [90.0])  # older than both
    assert rep.epoch_estimate(tmp_path, "lenet5")[0] == 22.5
    assert rep.epoch_estimate(tmp_path, "cnn3")[0] == rep.DEFAULT_EPOCH_SECONDS["cnn3"]
    assert rep.epoch_estimate(tmp_path, "lenet5")[1] == (
        "measured: the median of 2 epoch(s) of lenet5-lr0.01-s1")
    assert rep.epoch_estimate(tmp_path, "cnn3")[1].startswith("default")
    from click.testing import CliRunner

    from keras_cifar.cli import cli

    listed = CliRunner().invoke(cli, ["reproduce", "list", "--network", "lenet5", "--seeds", "0",
                                      "--out", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "  lenet5: measured: the median of 2 epoch(s) of lenet5-lr0.01-s1" in listed.output


def test_publishing_into_the_reproductions_own_folder_is_refused(runner, zoo_file, tmp_path):
    result = invoke(runner, zoo_file, "publish", str(tmp_path), "--out", str(tmp_path))
    assert result.exit_code == 2 and "the reproduction's own folder" in result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == [zoo_file]


@pytest.mark.faults
def test_a_diverging_experiment_is_listed_and_the_others_are_reproduced(runner, tmp_path):
    import json

    from conftest import TEST_ZOO

    zoo = json.loads(json.dumps(TEST_ZOO))
    zoo["experiments"].append({"id": "tiny-nan", "network": "tiny", "lr": 1e38, "momentum": 0.9,
                               "epochs": 2})
    zoo_file = tmp_path / "zoo.json"
    zoo_file.write_text(json.dumps(zoo))
    out = tmp_path / "out"
    result = invoke(runner, zoo_file, "run", "--all", "--data", "synthetic", "--limit", "200",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Runs: 2 finished, 1 diverged (tiny-nan: epoch 1)." in result.output
    with open(out / rep.RESULTS_CSV) as f:
        assert [row["id"] for row in csv.DictReader(f)] == ["tiny-a", "tiny-b"]
    assert "**tiny-nan**, seed 0: the loss became NaN in epoch 1" in (out / rep.RESULTS_MD).read_text()
    diverged = out / "runs" / "tiny-nan" / rundir.CONFIG
    before = diverged.stat().st_mtime_ns
    again = invoke(runner, zoo_file, "run", "--all", "--data", "synthetic", "--limit", "200",
                   "--out", str(out))
    assert again.exit_code == 0 and "Runs: 2 finished, 1 diverged" in again.output
    assert diverged.stat().st_mtime_ns == before  # kept as a result, not trained again
