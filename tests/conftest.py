"""Shared fixtures: an isolated cache, the zoo, small synthetic data, a click runner; and CIFAR-10
writers that put known pixels into each real on-disk format."""

import json
import os
import pickle
import tarfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from keras_cifar._env import prefer_onednn  # noqa: E402

prefer_onednn()  # as the CLI does, so the tests train with the kernels the CLI uses

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from keras_cifar.data.cifar import CLASS_NAMES  # noqa: E402
from keras_cifar.zoo import load_zoo  # noqa: E402

ZOO = load_zoo()
# A tiny zoo of one MLP and two experiments, for the reproduce and executor tests.
TEST_ZOO = {
    "networks": [{"id": "tiny", "title": "tiny MLP", "layers": [
        {"kind": "flatten"}, {"kind": "dense", "units": 16, "activation": "relu"},
        {"kind": "dense", "units": 10}], "train": {"lr": 0.01, "momentum": 0.9, "epochs": 2}}],
    "experiments": [
        {"id": "tiny-a", "network": "tiny", "lr": 0.01, "momentum": 0.9, "epochs": 2,
         "original": {"test_accuracy": 0.5, "test_loss": 0.02},
         "report_text": {"lr": 0.1, "words": "half"}},
        {"id": "tiny-b", "network": "tiny", "lr": 0.02, "momentum": 0, "epochs": 3},
    ],
}
NETWORK_IDS = list(ZOO.networks)
# The report's seven networks (the others, airbench's, come with their own recipe).
REPORT_NETWORK_IDS = [n for n, spec in ZOO.networks.items() if spec.recipe == "report"]
# The report's tables: parameter counts and the layer widths of each network.
EXPECTED_PARAMS = {
    "mlp-baseline": 1_969_930, "mlp1": 2_103_818, "mlp2": 920_842, "lenet5": 729_322,
    "cnn1": 1_333_450, "cnn2": 2_569_354, "cnn3": 2_703_242,
    # airbench's nets: all weights; the trainable ones are test_zoo's AIRBENCH_TRAINABLE
    "airbench93": 570_296, "airbench94": 1_973_944,
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own decode cache and no user-set data or zoo paths."""
    monkeypatch.setenv("KERAS_CIFAR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    for var in ("KERAS_CIFAR_DATA_DIR", "KERAS_CIFAR_ZOO", "TFDS_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def zoo():
    return ZOO


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_data():
    """200 train and 100 test synthetic images: enough for a smoke run."""
    from keras_cifar.data import synthetic_data

    return synthetic_data(200, 100)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One finished mlp2 run on synthetic data, shared by the tests of trained-model commands."""
    from keras_cifar.training.config import RunConfig
    from keras_cifar.data import synthetic_data
    from keras_cifar.plots.figures import draw_run
    from keras_cifar.training.train import train_run

    out = tmp_path_factory.mktemp("runs")
    result = train_run(RunConfig.of(ZOO.network("mlp2"), epochs=2), synthetic_data(600, 200),
                       out_dir=out, verbose=0)
    draw_run(result.run_dir)
    return result


# ---- CIFAR-10 files in each real format, with known pixels -----------------------------

PER_CLASS_TRAIN, PER_CLASS_TEST = 3, 2


def make_split(per_class, seed):
    """Random images with every class; pixel planes differ so a channel mix-up shows."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    images[..., 0] |= 1  # R odd
    images[..., 1] &= 0xFE  # G even
    return images, labels


TRAIN = make_split(PER_CLASS_TRAIN * 5, 1)
TEST = make_split(PER_CLASS_TEST, 2)


def planes(images):
    """(N, 32, 32, 3) -> (N, 3072): planes R, G, B, each row-major, as the official releases."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def write_python(root):
    root.mkdir(parents=True)
    chunks = np.array_split(np.arange(len(TRAIN[1])), 5)
    for i, idx in enumerate(chunks, 1):
        batch = {b"batch_label": f"training batch {i} of 5".encode(), b"labels": TRAIN[1][idx].tolist(),
                 b"data": planes(TRAIN[0][idx]), b"filenames": [b"x.png"] * len(idx)}
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    (root / "test_batch").write_bytes(pickle.dumps(
        {b"batch_label": b"testing batch 1 of 1", b"labels": TEST[1].tolist(), b"data": planes(TEST[0])},
        protocol=2))
    (root / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_cases_per_batch": 10000,
         b"num_vis": 3072}, protocol=2))
    return root


def write_binary(root, train_labels=None):
    root.mkdir(parents=True)

    def records(images, labels):
        return b"".join(bytes([int(l)]) + row.tobytes() for row, l in zip(planes(images), labels))

    labels = TRAIN[1] if train_labels is None else train_labels
    for i, idx in enumerate(np.array_split(np.arange(len(labels)), 5), 1):
        (root / f"data_batch_{i}.bin").write_bytes(records(TRAIN[0][idx], labels[idx]))
    (root / "test_batch.bin").write_bytes(records(*TEST))
    (root / "batches.meta.txt").write_text("\n".join(CLASS_NAMES) + "\n\n")
    return root


def write_folder(root, fmt="png", classes=CLASS_NAMES):
    for split, (images, labels) in (("train", TRAIN), ("test", TEST)):
        counters = {}
        for image, label in zip(images, labels):
            name = CLASS_NAMES[label]
            if name not in classes:
                continue
            counters[name] = counters.get(name, 0) + 1
            path = root / split / name / f"{counters[name]:04d}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
    (root / "README.txt").write_text("stray file beside the splits")
    return root


def folder_order(images, labels):
    """The order a folder tree is read in: by class, then by file name (= write order)."""
    order = np.concatenate([np.flatnonzero(labels == c) for c in range(10)])
    return images[order], labels[order]


def tar_of(directory, archive, arcname):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(directory, arcname=arcname)
    return archive


def check_exact(d, folder=False):
    train, test = (folder_order(*TRAIN), folder_order(*TEST)) if folder else (TRAIN, TEST)
    np.testing.assert_array_equal(d.train_images, train[0])
    np.testing.assert_array_equal(d.train_labels, train[1])
    np.testing.assert_array_equal(d.test_images, test[0])
    np.testing.assert_array_equal(d.test_labels, test[1])
    assert d.train_images.dtype == np.uint8 and d.class_names == CLASS_NAMES


SWEEP_GRID = {(0.01, 0.0), (0.01, 0.9), (0.05, 0.0), (0.05, 0.9)}


@pytest.fixture(scope="session")
def sweep_out(tmp_path_factory):
    """One 2x2 sweep of mlp2 on synthetic data (2 epochs), trained once for every test that
    reads a sweep's outputs (table, figure, TensorBoard HParams)."""
    from click.testing import CliRunner

    from keras_cifar.cli import cli

    out = tmp_path_factory.mktemp("sweep")
    result = CliRunner().invoke(cli, ["sweep", "mlp2", "--lr", "0.01,0.05", "--momentum", "0,0.9",
                                      "--epochs", "2", "--data", "synthetic", "--limit", "200",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def zoo_file(tmp_path):
    """TEST_ZOO written as a zoo.json: one tiny MLP, two experiments of 2 and 3 epochs."""
    import json

    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(TEST_ZOO))
    return path


def stop_after_epoch(epoch: int):
    """A Keras callback that presses Ctrl-C at the end of `epoch`, after keras-cifar's backup
    of it (its callbacks run first)."""
    import keras

    class StopAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index == epoch:
                raise KeyboardInterrupt

    return StopAfterEpoch()


def fake_finished_run(out, experiment_id, seed, accuracies, seconds=60.0, tta=None,
                      backend="tensorflow"):
    """A finished run's config.json, history.csv and metrics.json, as a reproduction writes
    them (`runs/<id>[-<backend>][-s<seed>]`), with the given per-epoch test accuracies."""
    from keras_cifar.reproduce.experiments import experiment_run_dir
    from keras_cifar.training import rundir

    e = ZOO.experiment(experiment_id)
    run_dir = experiment_run_dir(out, experiment_id, seed, backend)
    run_dir.mkdir(parents=True)
    identity = {"network": {"id": e.network}, "lr": e.train.lr, "momentum": e.train.momentum,
                "epochs": e.train.epochs, "batch_size": e.train.batch_size, "seed": seed}
    if backend != "tensorflow":
        identity["backend"] = backend
    if e.recipe_settings is not None:
        identity["recipe"] = json.loads(e.recipe_settings)
    (run_dir / rundir.CONFIG).write_text(json.dumps(
        {"identity": identity, "status": "finished", "cpu": "Test CPU"}))
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss,seconds"]
    rows += [f"{i},0.5,1.0,{a},1.0,{seconds}" for i, a in enumerate(accuracies)]
    (run_dir / rundir.HISTORY).write_text("\n".join(rows) + "\n")
    metrics = {"test_accuracy": accuracies[-1], "seconds": seconds * len(accuracies)}
    if tta is not None:
        metrics.update(tta="mirror_translate", tta_test_accuracy=tta)
    (run_dir / rundir.METRICS).write_text(json.dumps(metrics))
    return run_dir
