"""pipelines: the training order is a function of (seed, epoch) only, so a resumed run sees the
same batches; evaluation keeps the order."""

import numpy as np

from keras_cifar.data import synthetic_data
from keras_cifar.pipelines import eval_pipeline, train_pipeline


def test_train_pipeline_order_depends_only_on_seed_and_epoch():
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


def test_eval_pipeline_keeps_the_order_and_the_last_partial_batch():
    d = synthetic_data(10, 70)
    batches = list(eval_pipeline(d.test_images, d.test_labels, 64).as_numpy_iterator())
    assert [len(y) for _, y in batches] == [64, 6]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), d.test_labels)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), d.test_images)
