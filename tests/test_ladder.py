"""The ladder's table and figure from run directories: means, seeds, minutes, gains with their
standard errors, seed noise called by name, TTA only where the recipe has it."""

import pytest

from keras_cifar.reproduce import ladder
from keras_cifar.training import rundir

from conftest import ZOO, fake_finished_run as _fake_run


@pytest.fixture
def out(tmp_path):
    _fake_run(tmp_path, "ladder-a", 0, [0.6, 0.70])
    _fake_run(tmp_path, "ladder-a", 1, [0.6, 0.72])
    _fake_run(tmp_path, "ladder-b", 0, [0.7, 0.80])
    _fake_run(tmp_path, "ladder-b", 1, [0.7, 0.82])
    _fake_run(tmp_path, "ladder-g", 0, [0.8, 0.805], seconds=30.0)
    _fake_run(tmp_path, "ladder-g", 1, [0.8, 0.815], seconds=30.0)
    _fake_run(tmp_path, "ladder-h", 0, [0.8, 0.80], seconds=30.0, tta=0.81)
    _fake_run(tmp_path, "ladder-h", 1, [0.8, 0.82], seconds=30.0, tta=0.83)
    return tmp_path


def test_rungs_use_the_tta_accuracy_only_where_the_recipe_has_it(out):
    rungs = {r.experiment.id: r for r in ladder.ladder_rungs(ZOO, out)}
    assert list(rungs) == ["ladder-a", "ladder-b", "ladder-g", "ladder-h"]  # zoo order, run only
    assert rungs["ladder-a"].accuracies == (0.70, 0.72)
    assert rungs["ladder-h"].accuracies == (0.81, 0.83)
    assert rungs["ladder-g"].minutes == (1.0, 1.0) and rungs["ladder-a"].minutes == (2.0, 2.0)
    assert rungs["ladder-a"].cpus == ("Test CPU",)


def test_gain_and_its_standard_error(out):
    a, b, g, h = ladder.ladder_rungs(ZOO, out)
    difference, se = ladder.gain(a, b)
    assert difference == pytest.approx(0.10)
    # each side: sd 0.01414 over 2 seeds, se 0.01; the difference's se is sqrt(2) * 0.01
    assert se == pytest.approx(2 ** 0.5 * 0.01)
    assert "(within seed noise)" not in ladder.gain_words(difference, se)
    small, small_se = ladder.gain(g, h)
    assert ladder.gain_words(small, small_se).endswith("(within seed noise)")
    assert ladder.gain_words(0.01, None) == "+1.00 (one seed: noise unknown)"


def test_write_ladder_writes_table_csv_and_figure(out):
    path = ladder.write_ladder(ZOO, out)
    text = path.read_text()
    assert ("| (a) CNN 3, the report's recipe | cnn3 | report | 2 | 20 | 71.00% +- 1.41 | 2.0 "
            "| Test CPU |  |") in text
    assert "+10.00 +- 1.41" in text
    assert "Published: 93.0%" in text and "`runs/ladder-h-s1` 83.00%" in text
    assert (out / ladder.LADDER_PNG).stat().st_size > 10_000
    csv_lines = (out / ladder.LADDER_CSV).read_text().splitlines()
    assert csv_lines[0] == "experiment,seed,accuracy,minutes,run_dir,cpu" and len(csv_lines) == 9
    assert csv_lines[1] == "ladder-a,0,0.7000,2.00,runs/ladder-a,Test CPU"


def test_no_ladder_runs_writes_nothing(tmp_path):
    assert ladder.write_ladder(ZOO, tmp_path) is None
    assert not (tmp_path / ladder.LADDER_MD).exists()


def test_a_report_folder_gets_no_ladder_from_its_cnn3_runs_alone(tmp_path):
    _fake_run(tmp_path, "cnn3", 0, [0.6, 0.7])
    assert [r.trained_as for r in ladder.ladder_rungs(ZOO, tmp_path)] == ["cnn3"]
    assert ladder.write_ladder(ZOO, tmp_path) is None
    assert not (tmp_path / ladder.LADDER_MD).exists()
    _fake_run(tmp_path, "ladder-b", 0, [0.7, 0.8])
    assert ladder.write_ladder(ZOO, tmp_path) is not None


def test_minutes_ignore_one_stretched_epoch(tmp_path):
    _fake_run(tmp_path, "ladder-a", 0, [0.6, 0.7, 0.7])
    history = tmp_path / "runs" / "ladder-a" / rundir.HISTORY
    rows = history.read_text().splitlines()
    rows[2] = rows[2].replace(",60.0", ",960.0")  # a 15-minute pause inside epoch 2
    history.write_text("\n".join(rows) + "\n")
    (rung,) = ladder.ladder_rungs(ZOO, tmp_path)
    assert rung.minutes == (3.0,)


def test_a_rung_that_differs_only_in_tta_reads_the_other_rungs_runs(tmp_path):
    """(g) trains exactly as (h), TTA aside: without runs of its own it reads (h)'s plain
    accuracies, and (h)'s gain over it pairs the seeds."""
    _fake_run(tmp_path, "ladder-h", 0, [0.8, 0.80], tta=0.812)
    _fake_run(tmp_path, "ladder-h", 1, [0.8, 0.82], tta=0.830)
    _fake_run(tmp_path, "ladder-h", 2, [0.8, 0.84], tta=0.851)
    g, h = ladder.ladder_rungs(ZOO, tmp_path)
    assert (g.experiment.id, g.trained_as, h.trained_as) == ("ladder-g", "ladder-h", None)
    assert g.accuracies == (0.80, 0.82, 0.84) and h.accuracies == (0.812, 0.830, 0.851)
    difference, se = ladder.rung_gain(g, h)
    assert difference == pytest.approx(0.011)
    # paired: the sd of the differences (0.012, 0.010, 0.011) is 0.001, not the seeds' 0.02
    assert se == pytest.approx(0.001 / 3 ** 0.5)
    text = ladder.ladder_markdown(ZOO, [g, h])
    assert "| airbench93 | modern-lookahead | 3 of ladder-h |" in text
    assert "Runs: those of `ladder-h`, which trains exactly the same, evaluated without" in text


def test_rung_a_reads_the_reports_cnn3_runs_which_train_the_same(tmp_path):
    """(a) is CNN 3 with the report's recipe: the report's `cnn3` experiment, run for run;
    its runs in the same folder are (a)'s, and (b)'s gain over them is not paired."""
    for seed, accuracy in enumerate((0.70, 0.71, 0.72)):
        _fake_run(tmp_path, "cnn3", seed, [0.6, accuracy])
    _fake_run(tmp_path, "lenet5-lr0.01", 0, [0.5, 0.6])  # trains otherwise: read by no rung
    _fake_run(tmp_path, "ladder-b", 0, [0.7, 0.80])
    _fake_run(tmp_path, "ladder-b", 1, [0.7, 0.82])
    a, b = ladder.ladder_rungs(ZOO, tmp_path)
    assert (a.experiment.id, a.trained_as, a.accuracies) == ("ladder-a", "cnn3", (0.70, 0.71, 0.72))
    assert [r.run_dir.name for r in a.runs] == ["cnn3", "cnn3-s1", "cnn3-s2"]
    difference, se = ladder.rung_gain(a, b)
    assert difference == pytest.approx(0.10)
    assert se == pytest.approx((0.01 ** 2 / 3 + 0.01414213 ** 2 / 2) ** 0.5, rel=1e-4)
    text = ladder.ladder_markdown(ZOO, [a, b])
    assert "| cnn3 | report | 3 of cnn3 | 20 | 71.00% +- 1.00 |" in text
    assert "Runs: those of `cnn3`, which trains exactly the same, evaluated without" in text
    _fake_run(tmp_path, "ladder-a", 0, [0.6, 0.69])
    assert ladder.ladder_rungs(ZOO, tmp_path)[0].accuracies == (0.69,)  # its own win


def test_own_runs_win_and_only_tta_may_differ(tmp_path):
    _fake_run(tmp_path, "ladder-h", 0, [0.8, 0.80], tta=0.81)
    _fake_run(tmp_path, "ladder-g", 0, [0.8, 0.79])
    _fake_run(tmp_path, "ladder-f", 1, [0.8, 0.78])
    rungs = {r.experiment.id: r for r in ladder.ladder_rungs(ZOO, tmp_path)}
    assert rungs["ladder-g"].trained_as is None and rungs["ladder-g"].accuracies == (0.79,)
    # (e) and (f) differ in whitening and BatchNorm lr, (h) keeps its own TTA: none borrows
    assert "ladder-e" not in rungs and rungs["ladder-h"].accuracies == (0.81,)
    e, f, g, h = (ZOO.experiment(f"ladder-{x}") for x in "efgh")
    assert ladder.same_training(ZOO, g, h) and not ladder.same_training(ZOO, h, g)
    assert not ladder.same_training(ZOO, e, f)


def test_figure_names_the_cpu_only_when_rungs_ran_on_several(out):
    def labels():
        figure = ladder.ladder_figure(ladder.ladder_rungs(ZOO, out))
        return [t.get_text() for t in figure.axes[0].get_legend().get_texts()]

    assert labels()[0] == "(a) CNN 3, the report's recipe"
    for seed_dir in ("ladder-a", "ladder-a-s1"):
        config = out / "runs" / seed_dir / rundir.CONFIG
        config.write_text(config.read_text().replace("Test CPU", "Other CPU"))
    assert labels()[:2] == ["(a) CNN 3, the report's recipe [Other CPU]",
                            "(b) + flip and translate [Test CPU]"]
