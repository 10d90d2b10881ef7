"""cache: a second load comes from the cache, a source change invalidates it, a failed load or an
unwritable cache leaves nothing behind. Damaged entries are in test_faults.py."""

import os

import numpy as np
import pytest

from keras_cifar.data import cache
from keras_cifar.data import load_local
from keras_cifar.errors import DataError
from conftest import check_exact, write_binary, write_folder


def test_second_load_comes_from_the_cache_and_a_change_invalidates_it(tmp_path):
    root = write_binary(tmp_path / "b")
    first = load_local(root)
    assert len(cache.cache_entries()) == 1

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
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    monkeypatch.setenv("KERAS_CIFAR_CACHE_DIR", str(read_only))
    if os.access(read_only, os.W_OK):  # root ignores permissions: make the cache path a file instead
        read_only.chmod(0o700)
        read_only.rmdir()
        read_only.write_text("a file, not a directory")
    with pytest.warns(UserWarning, match="Could not write the data cache"):
        d = load_local(write_binary(tmp_path / "b"))
    check_exact(d)


def test_failed_load_leaves_no_cache_entry(tmp_path):
    root = write_folder(tmp_path / "cifar")
    (root / "train" / "ship" / "0002.png").write_bytes(b"junk")
    with pytest.raises(DataError):
        load_local(root)
    assert cache.cache_entries() == []
    directory = cache.cache_dir()
    assert (list(directory.iterdir()) if directory.exists() else []) == []  # no temporary file either


@pytest.mark.faults
def test_a_killed_cache_writes_temporary_file_is_removed_by_the_next_write(tmp_path):
    import os
    import time

    from keras_cifar.data import synthetic_data

    directory = cache.cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stale = directory / ".cifar10-abc.npz.x1y2z3.npz"
    stale.write_bytes(b"half a file")
    old = time.time() - cache.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    fresh = directory / ".cifar10-def.npz.q9w8e7.npz"  # a write still in progress
    fresh.write_bytes(b"being written")
    cache.write_cache("k" * 24, synthetic_data(20, 10))
    assert not stale.exists() and fresh.exists()
    assert cache.read_cache("k" * 24) is not None
