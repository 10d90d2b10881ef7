"""cifar: every source's arrays pass one check (shapes, lengths, label range, no empty split), and
the fingerprint tells any two datasets apart."""

import numpy as np
import pytest

from keras_cifar.data.cifar import CLASS_NAMES, fingerprint_arrays, make_data
from keras_cifar.errors import DataError


def arrays(n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), np.arange(n_train) % 10,
            rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), np.arange(n_test) % 10)


def make(*a):
    return make_data(*a, source="local", format="python", location="here")


def test_valid_arrays_become_cifar_data():
    d = make(*arrays())
    assert d.train_images.dtype == np.uint8 and d.train_labels.dtype == np.int32
    assert d.class_names == CLASS_NAMES and d.describe()["train"] == 20
    assert d.fingerprint == fingerprint_arrays(d.train_images, d.train_labels, d.test_images,
                                               d.test_labels)


@pytest.mark.parametrize("change, message", [
    (lambda a: (a[0][:, :16], *a[1:]), r"train images have shape \(20, 16, 32, 3\)"),
    (lambda a: (a[0], a[1][:5], *a[2:]), "20 train images but 5 labels"),
    (lambda a: (*a[:3], a[3] + 5), "label=10"),
    (lambda a: (*a[:2], a[2][:0], a[3][:0]), "the test split holds no images"),
])
def test_bad_arrays_are_refused_with_the_split_named(change, message):
    with pytest.raises(DataError, match=message):
        make(*change(arrays()))


def test_fingerprint_sees_one_pixel_and_one_label():
    base = arrays()
    pixel = [a.copy() for a in base]
    pixel[0][3, 4, 5, 1] ^= 1
    label = [a.copy() for a in base]
    label[3][0] = 9
    prints = {make(*base).fingerprint, make(*pixel).fingerprint, make(*label).fingerprint}
    assert len(prints) == 3
