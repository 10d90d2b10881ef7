"""notebook_loss: the original notebooks' loss scale, by hand on a tiny case."""

import numpy as np
import pytest

from keras_cifar.training.notebook_loss import notebook_scale_loss


def test_three_batches_the_last_one_partial_by_hand():
    # batches of 2: [1, 3] -> mean 2, [2, 4] -> mean 3, [9] -> mean 9; (2 + 3 + 9) / 5 examples
    assert notebook_scale_loss([1.0, 3.0, 2.0, 4.0, 9.0], batch_size=2) == pytest.approx(14 / 5)
    # not the plain mean / batch size: the partial batch's example weighs 1/1, not 1/2
    assert notebook_scale_loss([1.0, 3.0, 2.0, 4.0, 9.0], batch_size=2) != pytest.approx(
        np.mean([1, 3, 2, 4, 9]) / 2)


def test_full_batches_give_mean_over_batch_size():
    losses = np.random.default_rng(0).random(64 * 5)
    assert notebook_scale_loss(losses) == pytest.approx(losses.mean() / 64)


def test_the_cifar_test_set_shape_weighs_the_last_16_images_by_a_sixteenth():
    losses = np.ones(10_000)
    losses[-16:] = 2.0  # the last batch of 16: its mean (2) counts once, like any batch's
    assert notebook_scale_loss(losses) == pytest.approx((156 * 1.0 + 2.0) / 10_000)


@pytest.mark.parametrize("bad, match", [([], "no examples"), ([1.0], "batch size")])
def test_bad_input_is_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        notebook_scale_loss(bad, batch_size=64 if bad == [] else 0)
