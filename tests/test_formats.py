"""formats: every local layout written in its real format, read pixel for pixel; bad files refused
with the file named."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from keras_cifar.data import load_local
from keras_cifar.errors import DataError
from conftest import CLASS_NAMES, TRAIN, check_exact, tar_of, write_binary, write_folder, write_python


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
    with pytest.raises(DataError, match="does not exist.*`data_dir=PATH`"):
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
