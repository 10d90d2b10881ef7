"""results: the table of seeds against the original notebooks, from hand-made run directories."""

import csv
import io

import pytest

from keras_cifar.reproduce import results
from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.zoo import parse_zoo

ISSUE_COLUMNS = ("id, network, lr, momentum, epochs, inputs, seeds, original_accuracy, "
                 "original_loss, our_mean, our_sd, our_min, our_max, gap, original_last5, "
                 "our_last5, our_loss_notebook_scale, our_loss, report_text_lr, report_words, "
                 "seconds").split(", ")

ZOO_NETWORKS = [{"id": "net", "preprocess": "symmetric", "layers": [
    {"kind": "flatten"}, {"kind": "dense", "units": 10}],
    "train": {"lr": 0.01, "momentum": 0.9, "epochs": 6}}]
ZOO = parse_zoo({
    "networks": ZOO_NETWORKS,
    "experiments": [
        {"id": "exp", "network": "net", "lr": 0.01, "momentum": 0.9, "epochs": 6,
         "original": {"test_accuracy": 0.70, "test_loss": 0.03},
         "report_text": {"lr": 0.1, "words": "almost 75%"}},
        {"id": "other", "network": "net", "lr": 0.02, "momentum": 0, "epochs": 6,
         "original": {"test_accuracy": 0.50, "test_loss": 0.02}},
    ],
})


def write_run(root, name, accuracies, *, lr=0.01, momentum=0.9, status=rundir.STATUS_FINISHED,
              **identity):
    run_dir = root / name
    _fs.atomic_write_json(run_dir / rundir.CONFIG, {
        "status": status, "identity": {"network": {"id": "net"}, "lr": lr, "momentum": momentum,
                                       "epochs": len(accuracies), **identity}})
    rows = "".join(f"{e},{a},2.0,{a / 10},1.5\n" for e, a in enumerate(accuracies))
    (run_dir / rundir.HISTORY).write_text("epoch,val_accuracy,val_loss,val_notebook_loss,seconds\n"
                                        + rows)
    _fs.atomic_write_json(run_dir / rundir.METRICS, {
        "test_accuracy": accuracies[-1], "test_loss": 1.0 + accuracies[-1],
        "test_loss_notebook": accuracies[-1] / 100, "seconds": 9.0})
    return run_dir


@pytest.fixture
def out(tmp_path):
    ours = tmp_path / "runs"
    write_run(ours, "exp", [0.1, 0.5, 0.6, 0.6, 0.6, 0.60])
    write_run(ours, "exp-s1", [0.1, 0.5, 0.6, 0.6, 0.6, 0.64])
    write_run(ours, "exp-s2", [0.1, 0.5, 0.6, 0.6, 0.6, 0.62])
    write_run(ours, "exp-s3", [0.1, 0.2], status=rundir.STATUS_RUNNING)  # unfinished: not counted
    write_run(ours, "exp-s4", [0.9] * 6, lr=0.1)  # other settings under the name: not counted
    write_run(ours, "exp-s5", [0.9] * 6, batch_size=512)  # nor another batch size
    write_run(ours, "exp-s6", [0.9] * 6, recipe={"label_smoothing": 0.2})  # nor another recipe
    write_run(ours, "exp-sx", [0.9] * 6)  # not a seed suffix
    return tmp_path


def test_finished_run_reads_final_best_loss_and_time_and_skips_unfinished(out):
    run = results.FinishedRun.read(out / "runs" / "exp-s1", seed=1)
    assert (run.seed, run.final_accuracy, run.best_accuracy) == (1, 0.64, 0.64)
    assert run.final_loss == pytest.approx(1.64) and run.notebook_loss == pytest.approx(0.0064)
    assert run.seconds == 9.0 and run.last_accuracy_mean == pytest.approx((0.5 + 0.6 * 3 + 0.64) / 5)
    assert results.FinishedRun.read(out / "runs" / "exp-s3") is None


def test_seeds_mean_sd_range_gap_and_last_epochs(out):
    (row,) = results.results_rows(ZOO, out, original_curves={
        "exp": [{"epoch": e, "test_accuracy": a, "test_loss": 0.0, "train_loss": 0.0}
                for e, a in enumerate([0, 0, 0.6, 0.7, 0.7, 0.7, 0.8])]})
    assert [r.seed for r in row.runs] == [0, 1, 2]
    assert row.seeds == 3 and row.our_mean == pytest.approx(0.62)
    assert row.our_sd == pytest.approx(0.02) and (row.our_min, row.our_max) == (0.60, 0.64)
    assert row.gap == pytest.approx(0.70 - 0.62)
    assert row.original_last5 == pytest.approx((0.7 * 3 + 0.8 + 0.6) / 5)
    assert row.our_last5 == pytest.approx((0.5 + 0.6 * 3 + 0.62) / 5)  # epochs 1-5, seed mean
    assert row.our_loss_notebook_scale == pytest.approx(0.0062)  # from metrics.json
    assert row.our_loss == pytest.approx(1.62)
    assert (row.inputs, row.report_text_lr, row.report_words) == ("[-1, 1]", 0.1,
                                                                          "almost 75%")
    assert row.verdict.startswith("open")


def test_csv_has_the_issues_columns_in_order(out):
    text = results.results_csv(results.results_rows(ZOO, out))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert list(row) == ISSUE_COLUMNS
    assert (row["our_mean"], row["our_sd"], row["gap"], row["seeds"]) == ("0.6200", "0.0200",
                                                                          "0.0800", "3")


@pytest.mark.parametrize("reference, verdict", [
    (None, "open"), ([0.61, 0.62, 0.63], "data"), ([0.66, 0.67, 0.68], "bug to find")])
def test_verdict_uses_the_pytorch_reference(out, reference, verdict):
    for seed, accuracy in enumerate(reference or []):
        write_run(out / results.TORCH_SUBDIR, rundir.run_dir_name("exp", seed), [accuracy] * 6)
    (row,) = results.results_rows(ZOO, out)
    assert row.verdict.startswith(verdict)
    markdown = results.results_markdown([row], "Data: test.", [])
    assert f"| {verdict} |" in markdown


def test_a_data_verdict_above_the_original_does_not_blame_the_jpeg_copy():
    ours = results.SeedSummary.of([0.52, 0.53, 0.54])
    below = results.verdict(0.05, ours, results.SeedSummary.of([0.52, 0.52, 0.53]))
    above = results.verdict(-0.05, ours, results.SeedSummary.of([0.52, 0.52, 0.53]))
    assert below.startswith("data") and "JPEG copy" in below
    assert above.startswith("data") and "JPEG" not in above and "above the original" in above


@pytest.mark.parametrize("reference, cell", [
    (None, "open: PyTorch reference not run yet"),
    ([0.61, 0.62, 0.63], "data; PyTorch 62.0 ± 1.0 (n=3)"),
    ([0.66], "bug to find (provisional, 1 of 3 seeds); PyTorch 66.0 (n=1)")])
def test_summary_row_has_mean_seeds_gap_losses_and_the_verdict_with_pytorch(out, reference, cell):
    for seed, accuracy in enumerate(reference or []):
        write_run(out / results.TORCH_SUBDIR, rundir.run_dir_name("exp", seed), [accuracy] * 6)
    rows = results.results_rows(ZOO, out, original_curves={})
    header, rule, line = results.summary_markdown(rows).splitlines()
    assert header.count("|") == rule.count("|") == line.count("|") == 11
    assert line == (f"| exp | 0.01 | 0.9 | 6 | 70.0 | 62.0 ± 2.0 (3) | +8.0 |  / 58.4 "
                    f"| 0.0300 / 0.0062 | {cell} |")


def test_pytorch_is_compared_with_our_runs_of_its_seeds_while_one_side_is_ahead(tmp_path):
    """Ours: seeds 0 and 1 (61% and 65%); PyTorch: seed 0 only (60%). Against our seed 0 it is
    1 point off (data); against our two-seed mean, 3 points (which would read as a bug)."""
    write_run(tmp_path / "runs", "exp", [0.5] * 5 + [0.61])
    write_run(tmp_path / "runs", "exp-s1", [0.5] * 5 + [0.65])
    write_run(tmp_path / results.TORCH_SUBDIR, "exp", [0.5] * 5 + [0.60])
    (row,) = results.results_rows(ZOO, tmp_path, original_curves={})
    assert row.our_mean == pytest.approx(0.63)
    assert row.verdict.startswith("data (provisional, 1 of 3 seeds):")


def test_within_three_points_of_the_original_is_reproduced(tmp_path):
    write_run(tmp_path / "runs", "other", [0.3] * 5 + [0.48], lr=0.02, momentum=0)
    (row,) = results.results_rows(ZOO, tmp_path)
    assert row.verdict.startswith("reproduced (provisional, 1 of 3 seeds):")


def test_the_packaged_original_curves_end_at_the_zoos_final_numbers(zoo):
    curves = results.read_original_curves()
    assert {e.id for e in zoo.report_experiments} <= set(curves)
    for experiment in zoo.report_experiments:
        curve = curves[experiment.id]
        assert len(curve) == experiment.train.epochs
        assert curve[-1]["test_accuracy"] == pytest.approx(experiment.original.test_accuracy,
                                                           abs=0.0006)
        assert curve[-1]["test_loss"] == pytest.approx(experiment.original.test_loss, rel=4e-4)


def test_a_result_row_is_a_dataclass_whose_leading_fields_are_the_csv_columns(out):
    (row,) = results.results_rows(ZOO, out)
    assert isinstance(row, results.ResultRow)
    assert list(results.RESULTS_COLUMNS) == ISSUE_COLUMNS
    assert list(row.to_dict()) == [*ISSUE_COLUMNS, "verdict"]
    assert row.to_dict()["our_mean"] == row.our_mean and isinstance(row.runs, tuple)


def test_a_recipes_experiment_counts_only_runs_of_that_recipe(tmp_path):
    zoo = parse_zoo({
        "recipes": [{"id": "smooth", "label_smoothing": 0.2}],
        "networks": ZOO_NETWORKS,
        "experiments": [{"id": "exp", "network": "net", "recipe": "smooth"}]})
    experiment = zoo.experiment("exp")
    settings = zoo.recipe("smooth").settings()
    write_run(tmp_path / "runs", "exp", [0.5] * 6, recipe=settings, batch_size=64)
    write_run(tmp_path / "runs", "exp-s1", [0.5] * 6, batch_size=64)  # plain SGD's identity
    write_run(tmp_path / "runs", "exp-s2", [0.5] * 6, batch_size=64,
              recipe={**settings, "label_smoothing": 0.1})
    assert [r.seed for r in results.finished_runs(tmp_path, experiment)] == [0]
