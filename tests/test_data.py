"""data: every source written by the tests in its real format, loaded pixel for pixel; bad input."""

import io
import os
import pickle
import re
import tarfile

import numpy as np
import pytest
from PIL import Image

from keras_cifar import data as data_module
from keras_cifar.cli import cli
from keras_cifar.data import (CLASS_NAMES, DataError, limit_data, load_data, load_local,
                              load_tfds, stratified_indices, synthetic_data)

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


def test_python_release(tmp_path):
    d = load_local(write_python(tmp_path / "cifar-10-batches-py"))
    check_exact(d)
    assert d.format == "python"


def test_python_release_found_inside_a_parent_folder(tmp_path):
    write_python(tmp_path / "lab" / "cifar-10-batches-py")
    check_exact(load_local(tmp_path / "lab"))


def test_binary_release(tmp_path):
    d = load_local(write_binary(tmp_path / "cifar-10-batches-bin"))
    check_exact(d)
    assert d.format == "binary"


@pytest.mark.parametrize("fmt", ["png", "bmp"])
def test_image_folder(tmp_path, fmt):
    d = load_local(write_folder(tmp_path / "cifar", fmt))
    check_exact(d, folder=True)
    assert d.format == "image-folder"


def test_jpeg_folder_decodes_with_pillow(tmp_path):
    d = load_local(write_folder(tmp_path / "cifar", "jpg"))
    path = tmp_path / "cifar" / "train" / "airplane" / "0001.jpg"
    np.testing.assert_array_equal(d.train_images[0], np.asarray(Image.open(path)))


@pytest.mark.parametrize("writer, name, arcname", [
    (write_python, "cifar-py.tar.gz", "cifar-10-batches-py"),
    (write_binary, "cifar-bin.tar.gz", "cifar-10-batches-bin"),
    (write_folder, "folder.tar.gz", "cifar10"),
    (write_folder, "flat.tgz", "."),
])
def test_archives(tmp_path, writer, name, arcname):
    archive = tar_of(writer(tmp_path / "src"), tmp_path / name, arcname)
    check_exact(load_local(archive), folder=writer is write_folder)


def test_archive_with_parent_member_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DataError, match=r"'../escape.txt' points outside the archive"):
        load_local(archive)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_official_archive_name_checks_md5(tmp_path):
    archive = tar_of(write_python(tmp_path / "src"), tmp_path / "cifar-10-python.tar.gz",
                     "cifar-10-batches-py")
    with pytest.raises(DataError, match="MD5 checksum mismatch.*Expected md5=c58f30108f718f92721af3b95e74349a"):
        load_local(archive)


def test_class_folders_map_by_name_not_position(tmp_path):
    root = write_folder(tmp_path / "cifar")
    # Rename every class folder through a temporary name: on-disk order changes, names do not.
    for split in ("train", "test"):
        for name in CLASS_NAMES:
            os.rename(root / split / name, root / split / f"tmp-{name}")
        for name in reversed(CLASS_NAMES):
            os.rename(root / split / f"tmp-{name}", root / split / name)
    check_exact(load_local(root), folder=True)


def test_binary_meta_in_other_order_remaps_labels(tmp_path):
    root = write_binary(tmp_path / "b")
    (root / "batches.meta.txt").write_text("\n".join(reversed(CLASS_NAMES)))
    d = load_local(root)
    np.testing.assert_array_equal(d.train_labels, 9 - TRAIN[1])


# ---- bad input ----------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist.*--data-dir"):
        load_local(tmp_path / "nope")


def test_unknown_layout_names_the_layouts(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="not a CIFAR-10 layout. Looked for: an image-folder tree"):
        load_local(tmp_path / "x")


def test_missing_split(tmp_path):
    root = write_folder(tmp_path / "cifar")
    import shutil

    shutil.rmtree(root / "test")
    with pytest.raises(DataError, match="no 'test' split"):
        load_local(root)


def test_missing_class(tmp_path):
    root = write_folder(tmp_path / "cifar", classes=CLASS_NAMES[:9])
    with pytest.raises(DataError, match="missing the class folder\\(s\\) truck"):
        load_local(root)


def test_wrong_image_size_names_the_file(tmp_path):
    root = write_folder(tmp_path / "cifar")
    bad = root / "train" / "cat" / "0001.png"
    Image.new("RGB", (31, 32)).save(bad)
    with pytest.raises(DataError, match=r"train/cat/0001.png' is not 32x32 RGB.*size=31x32"):
        load_local(root)


def test_greyscale_image_is_refused(tmp_path):
    root = write_folder(tmp_path / "cifar")
    Image.new("L", (32, 32)).save(root / "test" / "dog" / "0001.png")
    with pytest.raises(DataError, match="mode=L"):
        load_local(root)


def test_unreadable_image(tmp_path):
    root = write_folder(tmp_path / "cifar")
    (root / "train" / "ship" / "0002.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"Pillow cannot read the image 'train/ship/0002.png'"):
        load_local(root)


def test_truncated_pickle(tmp_path):
    root = write_python(tmp_path / "p")
    raw = (root / "data_batch_3").read_bytes()
    (root / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cannot unpickle 'data_batch_3'.*truncated"):
        load_local(root)


def test_pickle_with_foreign_objects_is_refused(tmp_path):
    root = write_python(tmp_path / "p")
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": os.getcwd}))
    with pytest.raises(DataError, match="refusing to load"):
        load_local(root)


def test_truncated_binary(tmp_path):
    root = write_binary(tmp_path / "b")
    raw = (root / "data_batch_2.bin").read_bytes()
    (root / "data_batch_2.bin").write_bytes(raw[:-100])
    with pytest.raises(DataError, match="data_batch_2.bin' is .* not a whole number"):
        load_local(root)


def test_missing_batch(tmp_path):
    root = write_binary(tmp_path / "b")
    (root / "data_batch_4.bin").unlink()
    with pytest.raises(DataError, match="missing data_batch_4.bin"):
        load_local(root)


def test_labels_out_of_range(tmp_path):
    labels = TRAIN[1].copy()
    labels[5] = 12
    with pytest.raises(DataError, match="labels out of range.*Received: label=12"):
        load_local(write_binary(tmp_path / "b", train_labels=labels))


def test_truncated_archive(tmp_path):
    archive = tar_of(write_binary(tmp_path / "src"), tmp_path / "c.tar.gz", "cifar-10-batches-bin")
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cannot read the archive.*truncated"):
        load_local(archive)


# ---- cache --------------------------------------------------------------------------------


def test_second_load_comes_from_the_cache_and_a_change_invalidates_it(tmp_path):
    root = write_binary(tmp_path / "b")
    first = load_local(root)
    assert len(data_module.cache_entries()) == 1

    # Blank a source file's pixels but keep its size and times: the cache key is unchanged,
    # so the second load must come from the cache (the original pixels), not from the file.
    batch = root / "test_batch.bin"
    stat = batch.stat()
    raw = bytearray(batch.read_bytes())
    for start in range(0, len(raw), 1 + 3072):
        raw[start + 1:start + 1 + 3072] = bytes(3072)
    batch.write_bytes(bytes(raw))
    os.utime(batch, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_local(root)
    np.testing.assert_array_equal(first.test_images, second.test_images)
    assert second.fingerprint == first.fingerprint

    os.utime(batch, ns=(1, 1))  # a change the key sees: decoded again, blank pixels now
    third = load_local(root)
    assert not third.test_images.any() and third.fingerprint != first.fingerprint


def test_read_only_cache_warns_and_still_loads(tmp_path, monkeypatch):
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o500)
    monkeypatch.setenv("KERAS_CIFAR_CACHE_DIR", str(cache))
    if os.access(cache, os.W_OK):  # root ignores permissions: make the cache path a file instead
        cache.chmod(0o700)
        cache.rmdir()
        cache.write_text("a file, not a directory")
    with pytest.warns(UserWarning, match="Could not write the data cache"):
        d = load_local(write_binary(tmp_path / "b"))
    check_exact(d)


def test_failed_load_leaves_no_cache_entry(tmp_path):
    root = write_folder(tmp_path / "cifar")
    (root / "train" / "ship" / "0002.png").write_bytes(b"junk")
    with pytest.raises(DataError):
        load_local(root)
    assert data_module.cache_entries() == []
    cache = data_module.cache_dir()
    assert (list(cache.iterdir()) if cache.exists() else []) == []  # no temporary file either


# ---- tfds, synthetic, subsets ----------------------------------------------------------------


def test_tfds_under_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data_module, "network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=12):
        d = load_tfds(tmp_path / "tfds")
    assert d.source == "tfds" and d.train_images.shape == (12, 32, 32, 3)
    assert d.train_images.dtype == np.uint8 and d.train_labels.max() <= 9


def test_tfds_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "network_reachable", lambda *a, **k: False)
    with pytest.raises(DataError) as info:
        load_data("tfds", tfds_dir=tmp_path / "tfds")
    message = str(info.value)
    assert "unreachable" in message and "--data-dir" in message and "--data synthetic" in message


def test_tfds_download_failure_becomes_data_error(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data_module, "network_reachable", lambda *a, **k: True)

    def broken(self, *args, **kwargs):
        raise OSError("checksum mismatch for cifar-10-binary.tar.gz")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", broken)
    with pytest.raises(DataError, match="OSError: checksum mismatch"):
        load_tfds(tmp_path / "tfds")


def test_synthetic_is_deterministic_balanced_and_not_cifar():
    a, b = synthetic_data(100, 50), synthetic_data(100, 50)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    assert a.fingerprint == b.fingerprint and not a.is_cifar10
    assert np.bincount(a.train_labels).tolist() == [10] * 10


def test_stratified_limit():
    d = synthetic_data(1000, 200)
    small = limit_data(d, 30, seed=3)
    assert np.bincount(small.train_labels).tolist() == [3] * 10
    assert len(small.test_labels) == 30
    assert small.fingerprint != d.fingerprint
    np.testing.assert_array_equal(stratified_indices(d.train_labels, 30, 3),
                                  stratified_indices(d.train_labels, 30, 3))


def test_train_pipeline_order_depends_only_on_seed_and_epoch():
    from keras_cifar.data import train_pipeline

    d = synthetic_data(100, 10)

    def labels_seen(first_epoch):
        dataset, first, steps = train_pipeline(d.train_images, d.train_labels, 32, seed=5, epochs=3)
        first.assign(first_epoch)
        return np.concatenate([y for _, y in dataset.as_numpy_iterator()]), steps

    full, steps = labels_seen(0)
    resumed, _ = labels_seen(2)
    assert steps == 4 and len(full) == 300
    np.testing.assert_array_equal(full[200:], resumed)
    assert not np.array_equal(full[:100], full[100:200])
    assert sorted(full[:100]) == sorted(d.train_labels)


# ---- CLI ----------------------------------------------------------------------------------


def test_data_info_on_folder_and_archive(runner, tmp_path):
    root = write_folder(tmp_path / "cifar")
    archive = tar_of(root, tmp_path / "cifar.tar.gz", "cifar")
    for path in (root, archive):
        result = runner.invoke(cli, ["data", "info", "--data-dir", str(path)])
        assert result.exit_code == 0, result.output
        assert "image-folder" in result.output
        assert re.search(r"airplane\s+15\s+2\n", result.output)
        assert re.search(r"total\s+150\s+20\n", result.output)


def test_data_info_bad_path_exits_without_traceback(runner, tmp_path):
    result = runner.invoke(cli, ["data", "info", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_data_prepare_synthetic(runner):
    result = runner.invoke(cli, ["data", "prepare", "--data", "synthetic"])
    assert result.exit_code == 0 and "Ready: synthetic" in result.output
