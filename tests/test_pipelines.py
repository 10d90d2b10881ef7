"""pipelines: the training order is a function of (seed, epoch) only, so a resumed run sees the
same batches; evaluation keeps the order."""

import numpy as np

from keras_cifar.data import synthetic_data
from keras_cifar.data.pipelines import eval_pipeline, train_pipeline


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


def test_every_epoch_visits_every_image_once_in_a_fresh_order():
    n, epochs = 300, 3
    images = np.zeros((n, 32, 32, 3), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    labels = np.arange(n) % 10

    def order(seed):
        dataset, _, steps = train_pipeline(images, labels, 64, seed=seed, epochs=epochs)
        seen = np.concatenate([x[:, 0, 0, 0].astype(int) + 256 * x[:, 0, 0, 1].astype(int)
                               for x, _ in dataset.as_numpy_iterator()])
        return seen.reshape(epochs, n), steps

    orders, steps = order(seed=0)
    assert steps == 5  # 4 batches of 64 and a last one of 44
    for epoch in orders:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n))  # each image exactly once
        assert not np.array_equal(epoch, np.arange(n))  # shuffled
    assert len({tuple(epoch) for epoch in orders}) == epochs  # reshuffled every epoch
    assert not np.array_equal(order(seed=1)[0], orders)  # the seed matters
