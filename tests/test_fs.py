"""_fs: file digests read in blocks equal hashlib's digest of the whole file."""

import hashlib

import pytest

from keras_cifar import _fs


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_file_digest_is_hashlibs_over_several_blocks(tmp_path, algorithm):
    data = bytes(range(256)) * 9000  # 2.3 MB: three blocks of 1 MiB
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert _fs.file_digest(path, algorithm) == hashlib.new(algorithm, data).hexdigest()
