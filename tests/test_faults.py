"""Faults: two writers, interrupts while finishing, full disks, damaged caches, bad output
paths, stopping a pool of workers, hostile zoo entries, odd and huge images.

Each test fails on the code before the reliability issue and passes after it.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_cifar import errors
from keras_cifar.training import rundir
from keras_cifar.cli import cli
from keras_cifar.data import CLASS_NAMES, load_local, synthetic_data
from keras_cifar.training.config import RunConfig
from keras_cifar.training.train import TrainingInterrupted, train_run
from keras_cifar.zoo import ZooError, parse_zoo

pytestmark = pytest.mark.faults
SYNTHETIC = ["--data", "synthetic", "--limit", "300"]


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process that holds the run directory's lock until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from keras_cifar import _fs
        from keras_cifar.training import rundir
        with _fs.lock_run_dir({str(run_dir)!r}):
            print("locked", flush=True)
            time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


# ---- two writers -----------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_blocks_nothing(
        runner, tmp_path):
    run_dir = tmp_path / "r"
    holder = hold_lock(run_dir)
    try:
        args = ["train", "mlp2", *SYNTHETIC, "--epochs", "1", "--out", str(tmp_path), "--name", "r"]
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert "in use by another keras-cifar process" in result.output
        assert f"pid {holder.pid}" in result.output and "--resume" in result.output
        assert not (run_dir / rundir.HISTORY).exists()
    finally:
        holder.kill()
        holder.wait()
    # the OS lock died with its process: the same command now trains
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert len(rundir.read_history(run_dir)) == 1


def test_a_second_reproduce_into_the_same_output_is_refused(runner, tmp_path):
    holder = hold_lock(tmp_path / "out")
    try:
        result = runner.invoke(cli, ["reproduce", "run", "mlp2", "--seeds", "0", *SYNTHETIC,
                                     "--out", str(tmp_path / "out")])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1 and f"pid {holder.pid}" in result.output
    assert not (tmp_path / "out" / "runs").exists()


# ---- interrupted while finishing ------------------------------------------------------------


class InterruptWhenFitReturns(keras.callbacks.Callback):
    """Ctrl-C in the finishing window: after the last epoch, before the final files."""

    def on_train_end(self, logs=None):
        raise KeyboardInterrupt


def test_an_interrupt_while_finishing_resumes_by_finishing_without_training(runner, tmp_path):
    data = synthetic_data()  # what the CLI's --data synthetic loads
    from keras_cifar.zoo import get_network

    with pytest.raises(TrainingInterrupted, match="`resume=True`"):
        train_run(RunConfig.of(get_network("mlp2"), epochs=2), data, out_dir=tmp_path, name="r", verbose=0, callbacks=[InterruptWhenFitReturns()])
    run_dir = tmp_path / "r"
    assert rundir.run_status(run_dir) == rundir.STATUS_INTERRUPTED
    assert (run_dir / rundir.BACKUP_DIR).is_dir()  # the last epoch's state survived fit's end
    history = (run_dir / rundir.HISTORY).read_text()
    result = runner.invoke(cli, ["train", "mlp2", "--data", "synthetic", "--epochs", "2",
                                 "--out", str(tmp_path), "--name", "r", "--resume"])
    assert result.exit_code == 0, result.output
    assert (run_dir / rundir.HISTORY).read_text() == history  # no epoch trained again
    assert rundir.run_status(run_dir) == rundir.STATUS_FINISHED
    for name in (rundir.MODEL, rundir.METRICS, rundir.CURVES, rundir.KERNELS, rundir.CONFUSION):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / rundir.BACKUP_DIR).exists()


def test_missing_figures_of_a_finished_run_are_drawn_on_resume(runner, tmp_path):
    args = ["train", "mlp2", *SYNTHETIC, "--epochs", "1", "--out", str(tmp_path), "--name", "r"]
    assert runner.invoke(cli, args).exit_code == 0
    (tmp_path / "r" / rundir.CURVES).unlink()
    result = runner.invoke(cli, [*args, "--resume"])
    assert result.exit_code == 0 and "already finished" in result.output
    assert (tmp_path / "r" / rundir.CURVES).is_file()


def test_ctrl_c_outside_training_exits_130_with_the_hint(runner, monkeypatch):
    from keras_cifar.data import spec as data

    def interrupted_load(self, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(data.DataSpec, "load", interrupted_load)
    result = runner.invoke(cli, ["train", "mlp2", "--data", "synthetic"])
    assert result.exit_code == 130 and "--resume" in result.output


# ---- full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 40 MiB (root only; skipped where it cannot be mounted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_too_little_space_is_refused_before_training(runner, small_disk):
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (30 << 20))
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--out", str(small_disk / "runs")])
    assert result.exit_code == 1, result.output
    assert "Not enough free space" in result.output and "MiB" in result.output
    assert list((small_disk / "runs").glob("*")) == []  # no run directory left behind


class FillTheDiskAfterEpoch(keras.callbacks.Callback):
    def __init__(self, ballast: Path, epoch: int):
        super().__init__()
        self.ballast, self.epoch = ballast, epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            free = os.statvfs(self.ballast.parent).f_bavail * os.statvfs(self.ballast.parent).f_frsize
            self.ballast.write_bytes(b"\0" * max(free - (256 << 10), 0))


def test_a_full_disk_mid_run_ends_cleanly_and_resumes_from_the_last_good_epoch(small_disk):
    from keras_cifar.zoo import get_network

    data = synthetic_data(300, 100)
    ballast = small_disk / "ballast"
    with pytest.raises(errors.DiskError, match="free some space") as info:
        train_run(RunConfig.of(get_network("mlp2"), epochs=3), data, out_dir=small_disk, name="r", verbose=0, callbacks=[FillTheDiskAfterEpoch(ballast, 1)])
    assert "`resume=True`" in str(info.value)
    run_dir = small_disk / "r"
    assert rundir.run_status(run_dir) == rundir.STATUS_INTERRUPTED
    ballast.unlink()
    result = train_run(RunConfig.of(get_network("mlp2"), epochs=3), data, out_dir=small_disk, name="r", verbose=0, resume=True)
    assert rundir.run_status(run_dir) == rundir.STATUS_FINISHED
    assert [r["epoch"] for r in rundir.read_history(run_dir)] == [0, 1, 2]
    assert result.metrics["test_accuracy"] > 0


def test_a_torn_checkpoint_falls_back_to_the_previous_one(tmp_path):
    from keras_cifar.zoo import get_network

    data = synthetic_data(300, 100)

    class StopAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train_run(RunConfig.of(get_network("mlp2"), epochs=4), data, out_dir=tmp_path, name="r", verbose=0, callbacks=[StopAfter()])
    backup = tmp_path / "r" / rundir.BACKUP_DIR
    latest = json.loads((backup / "training_metadata.json").read_text())
    weights = backup / latest["weights"]
    weights.write_bytes(weights.read_bytes()[:1000])  # torn by a full disk or a crash
    with pytest.warns(UserWarning, match="trying the previous one"):
        train_run(RunConfig.of(get_network("mlp2"), epochs=4), data, out_dir=tmp_path, name="r", verbose=0, resume=True)
    assert [r["epoch"] for r in rundir.read_history(tmp_path / "r")] == [0, 1, 2, 3]


# ---- damaged decode cache -------------------------------------------------------------------


def write_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 2), ("test", 1)):
        for name in CLASS_NAMES:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / name / f"{i}.png")
    return root


@pytest.mark.parametrize("damage", ["wrong labels, same fingerprint", "truncated", "bit flip"])
def test_a_damaged_cache_is_discarded_with_a_warning_and_rebuilt(tmp_path, damage):
    from keras_cifar.data import cache

    source = write_folder(tmp_path / "cifar")
    original = load_local(source)
    (entry,) = cache.cache_entries()
    if damage == "wrong labels, same fingerprint":
        with np.load(entry) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["train_labels"] = (arrays["train_labels"] + 1) % 10
        arrays["train_images"][..., 0] = 0
        with open(entry, "wb") as f:
            np.savez(f, **arrays)
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    else:
        raw = bytearray(entry.read_bytes())
        raw[len(raw) // 3] ^= 0xFF
        entry.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="Discarding the damaged data cache"):
        again = load_local(source)
    assert again.fingerprint == original.fingerprint
    np.testing.assert_array_equal(again.train_labels, original.train_labels)
    np.testing.assert_array_equal(again.train_images, original.train_images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_local(source)  # rebuilt: the next load is clean


# ---- output paths ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from keras_cifar.zoo import get_network

    result = train_run(RunConfig.of(get_network("mlp2"), epochs=1), synthetic_data(300, 100), verbose=0, out_dir=tmp_path_factory.mktemp("runs"))
    return result.run_dir / rundir.MODEL


def test_output_paths_are_checked_before_any_work(runner, tmp_path, model_file):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (["train", "mlp2", *SYNTHETIC, "--out", str(a_file)], "must be a directory"),
        (["reproduce", "run", "mlp2", "--seeds", "0", *SYNTHETIC, "--out", str(a_file)],
         "must be a directory"),
        (["kernels", str(model_file), "-o", str(tmp_path / "missing" / "dir" / "x.png")],
         "does not exist"),
        (["export", str(model_file), str(a_file)], "is an existing file"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert a_file.read_text() == "x"


def test_export_refuses_a_non_empty_directory_without_force(runner, tmp_path, model_file):
    target = tmp_path / "export"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = runner.invoke(cli, ["export", str(model_file), str(target)])
    assert result.exit_code == 2 and "--force" in result.output
    assert (target / "keep.txt").read_text() == "mine"
    result = runner.invoke(cli, ["export", str(model_file), str(target), "--force"])
    assert result.exit_code == 0, result.output
    assert (target / "saved_model.pb").is_file() and not (target / "keep.txt").exists()


def test_a_read_only_filesystem_is_a_clean_error(runner, tmp_path, model_file):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        for args in (["kernels", str(model_file), "-o", str(mount / "k.png")],
                     ["export", str(model_file), str(mount / "export")],
                     ["plot", str(model_file.parent), "-o", str(mount / "c.png")]):
            result = runner.invoke(cli, args)
            assert result.exit_code == 2, (args, result.output)
            assert "read-only" in result.output and "Traceback" not in result.output
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# ---- stopping a pool of workers ----------------------------------------------------------------


def test_sigterm_stops_reproduce_workers_and_nothing_outlives_it(tmp_path):
    psutil = pytest.importorskip("psutil")
    zoo = tmp_path / "zoo.json"
    zoo.write_text(json.dumps({
        "networks": [{"id": "tiny", "layers": [{"kind": "flatten"},
                                               {"kind": "dense", "units": 64, "activation": "relu"},
                                               {"kind": "dense", "units": 10}],
                      "train": {"lr": 0.01, "momentum": 0.9, "epochs": 400}}],
        "experiments": [{"id": f"long-{i}", "network": "tiny", "lr": 0.01, "momentum": 0.9,
                         "epochs": 400} for i in range(4)]}))
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "keras_cifar", "--zoo", str(zoo), "reproduce", "run", "--all", "--seeds",
         "0", "--workers", "2", "--data", "synthetic", "--limit", "200", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.glob("runs/*/history.csv"))) < 2:
        time.sleep(0.5)
    assert len(list(out.glob("runs/*/history.csv"))) >= 2, "the workers never started training"
    family = psutil.Process(driver.pid).children(recursive=True)
    assert len(family) >= 2
    started = time.time()
    driver.send_signal(signal.SIGTERM)
    output, _ = driver.communicate(timeout=60)
    assert driver.returncode == 143, output
    assert time.time() - started < 30
    assert "Stopped by SIGTERM" in output
    time.sleep(1)
    survivors = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == []
    # nothing queued was started, and what ran is resumable
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["long-0", "long-1"]
    for run_dir in (out / "runs").iterdir():
        assert rundir.run_status(run_dir) in (rundir.STATUS_RUNNING, rundir.STATUS_INTERRUPTED)


# ---- hostile or huge zoo entries -------------------------------------------------------------


def network(network_id="ok", units=10):
    return {"id": network_id, "layers": [{"kind": "flatten"}, {"kind": "dense", "units": units},
                                         {"kind": "dense", "units": 10}],
            "train": {"lr": 0.1, "momentum": 0, "epochs": 1}}


@pytest.mark.parametrize("bad_id", ["../../escape", "café", "UPPER", ".hidden", "a/b", ""])
def test_ids_that_are_not_safe_names_are_refused_by_the_zoo(bad_id):
    with pytest.raises(ZooError, match="key 'id'"):
        parse_zoo({"networks": [network(bad_id)]}, "mine.json")
    with pytest.raises(ZooError, match="experiment .*key 'id'"):
        parse_zoo({"networks": [network()], "experiments": [
            {"id": bad_id, "network": "ok", "lr": 0.1, "momentum": 0, "epochs": 1}]}, "mine.json")


def test_a_network_over_the_parameter_limit_is_refused_at_once():
    started = time.perf_counter()
    with pytest.raises(ZooError, match="at most 100,000,000 parameters"):
        parse_zoo({"networks": [network(units=2_000_000_000)]}, "mine.json")
    assert time.perf_counter() - started < 1


def test_a_run_name_cannot_leave_the_output_directory(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--out", str(tmp_path / "out"),
                                 "--name", "../escape"])
    assert result.exit_code == 2 and "must stay inside" in result.output
    assert not (tmp_path / "escape").exists()


# ---- images ----------------------------------------------------------------------------------


def write_png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    import struct
    import zlib

    height, width, _ = pixels.shape
    raw = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "RGB;16"])
def test_high_bit_depth_images_predict_as_their_8_bit_version(runner, tmp_path, model_file, mode):
    rgb = synthetic_data(10, 10).test_images[3]
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    Image.fromarray(grey).save(tmp_path / "8bit.png")
    if mode == "RGB;16":  # Pillow reads it as exact 8-bit RGB (high bytes): compare with rgb
        Image.fromarray(rgb).save(tmp_path / "8bit.png")
        write_png_rgb16(tmp_path / "deep.png", rgb.astype(np.uint16) * 257)
        deep = tmp_path / "deep.png"
    elif mode == "I;16":
        Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")
        deep = tmp_path / "deep.png"
    elif mode == "I":
        Image.fromarray(grey.astype(np.int32) * 257, mode="I").save(tmp_path / "deep.tif")
        deep = tmp_path / "deep.tif"
    else:
        Image.fromarray(grey.astype(np.float32) / 255, mode="F").save(tmp_path / "deep.tif")
        deep = tmp_path / "deep.tif"
    result = runner.invoke(cli, ["predict", str(model_file), str(tmp_path / "8bit.png"),
                                 str(deep), "--json"])
    assert result.exit_code == 0, result.output
    eight, sixteen = json.loads(result.output)
    assert eight["top"] == sixteen["top"]
    assert mode == "RGB;16" or any("8-bit" in note for note in sixteen["notes"])


def test_pixels_with_no_known_range_are_refused(model_file, tmp_path):
    from keras_cifar.errors import ImageError
    from keras_cifar.serving.predict import read_image

    Image.fromarray(np.full((32, 32), 300.0, dtype=np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(ImageError, match="no known range"):
        read_image(tmp_path / "f.tif")


def test_huge_and_bad_files_are_reported_each_and_the_rest_still_predicted(runner, tmp_path,
                                                                            model_file):
    Image.new("L", (5000, 5000)).save(tmp_path / "huge.png")
    Image.fromarray(synthetic_data(10, 10).test_images[0]).save(tmp_path / "fine.png")
    result = runner.invoke(cli, ["predict", str(model_file), str(tmp_path / "huge.png"),
                                 "https://example.com/cat.png", str(tmp_path / "fine.png")])
    assert result.exit_code == 1
    assert "5000x5000 pixels, over the limit" in result.output
    assert "URL" in result.output and "does not fetch" in result.output
    assert f"{tmp_path / 'fine.png'}: " in result.output and "2 of 3 images" in result.output


# ---- smaller ones ----------------------------------------------------------------------------


def test_a_bad_seed_names_the_option_and_leaves_no_run_directory(runner, tmp_path):
    result = runner.invoke(cli, ["train", "mlp2", *SYNTHETIC, "--seed", "-1",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--seed" in result.output and "-1" in result.output
    assert not (tmp_path / "out").exists()
    from keras_cifar.zoo import get_network

    with pytest.raises(ValueError, match="seed=-1"):
        train_run(RunConfig.of(get_network("mlp2"), seed=-1), synthetic_data(100, 50), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_limit_that_drops_classes_warns_and_names_them():
    from keras_cifar.data import limit_data

    with pytest.warns(UserWarning, match="lacks the class"):
        limit_data(synthetic_data(200, 100), 5)


def test_a_truncated_model_file_is_reported_as_damaged(runner, tmp_path, model_file):
    truncated = tmp_path / "model.keras"
    truncated.write_bytes(model_file.read_bytes()[:2000])
    result = runner.invoke(cli, ["evaluate", str(truncated), "--data", "synthetic"])
    assert result.exit_code == 1 and "damaged" in result.output


@pytest.mark.faults
def test_a_busy_sweep_folder_advises_a_rerun_not_a_resume_flag(runner, tmp_path):
    from keras_cifar import _fs
    from keras_cifar.cli import cli

    with _fs.lock_run_dir(tmp_path, what="sweep's output directory", then=_fs.RERUN_HINT):
        result = runner.invoke(cli, ["sweep", "mlp2", "--lr", "0.01", "--epochs", "1", "--data",
                                     "synthetic", "--limit", "100", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "run the same command again" in result.output
    assert "--resume" not in result.output


@pytest.mark.faults
def test_a_sweep_into_a_folder_of_other_settings_advises_another_out(runner, tmp_path):
    from keras_cifar.cli import cli

    args = ["sweep", "mlp2", "--lr", "0.01", "--epochs", "1", "--data", "synthetic", "--limit",
            "100", "--out", str(tmp_path)]
    assert runner.invoke(cli, args).exit_code == 0
    other = runner.invoke(cli, [*args, "--batch-size", "32"])
    assert other.exit_code == 2 and "batch_size differ" in other.output
    assert "Use another --out" in other.output and "--name" not in other.output


@pytest.mark.faults
def test_a_run_whose_config_json_was_deleted_keeps_its_checkpoints_and_says_why(tmp_path):
    import keras

    from keras_cifar.data import synthetic_data
    from keras_cifar.errors import RunError, TrainingInterrupted
    from keras_cifar.training import rundir
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.train import train_run
    from keras_cifar.zoo import get_network

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    config = RunConfig.of(get_network("mlp2"), epochs=4)
    data = synthetic_data(200, 100)
    with pytest.raises(TrainingInterrupted):
        train_run(config, data, out_dir=tmp_path, name="r", verbose=0, callbacks=[Stop()])
    (tmp_path / "r" / rundir.CONFIG).unlink()
    with pytest.raises(RunError, match="holds checkpoints.*Restore its config.json.*deletes"):
        train_run(config, data, out_dir=tmp_path, name="r", verbose=0, resume=True)
    assert any((tmp_path / "r" / rundir.BACKUP_DIR).iterdir())
