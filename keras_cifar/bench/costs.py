"""The cost model of training: FLOPs per network and for the whole reproduction, and the
reproduction's wall time on N workers from measured speeds. Pure Python (no TensorFlow):
layer shapes come from the validated zoo. Used by scripts/bench.py for '% of peak', the
reproduction's floor and its projection.
"""

from __future__ import annotations


def layer_macs(spec) -> list[int]:
    """Multiply-adds per image of each conv (whitening included) and dense layer's forward
    pass, in order."""
    macs = []
    for layer in spec.layers:
        if layer.kind in ("conv", "whiten"):
            h, w, filters = layer.output_shape
            macs.append(h * w * filters * layer.fan_in)
        elif layer.kind == "dense":
            macs.append(layer.fan_in * layer.options["units"])
    return macs


def training_flops_per_image(spec) -> float:
    """Multiply-adds of the forward pass x 2 FLOPs x 3 (forward, and backward for inputs and
    weights): the usual estimate of a training step's cost per image, and the speed issue's."""
    return 2 * 3 * sum(layer_macs(spec))


def reproduction_flops(zoo, train_images: int = 50_000, test_images: int = 10_000) -> float:
    """FLOPs of the whole reproduction: every experiment's epochs of training and evaluation.

    Counted as the training step computes them: forward 2 x MACs, weight gradients 2 x MACs,
    input gradients 2 x MACs for every layer but the first (nothing asks for the gradient of
    the images, and TensorFlow prunes it); evaluation is a forward pass.
    """
    total = 0.0
    for experiment in zoo.report_experiments:
        macs = layer_macs(zoo.network(experiment.network))
        train = 2 * (2 * sum(macs) + sum(macs[1:]))
        total += experiment.train.epochs * (train_images * train + test_images * 2 * sum(macs))
    return total


def makespan(durations: list[float], workers: int) -> float:
    """Wall time of jobs handed out in order to the first free of `workers` processes (as
    `ProcessPoolExecutor` does)."""
    free_at = [0.0] * workers
    for duration in durations:
        free_at[free_at.index(min(free_at))] += duration
    return max(free_at)


def projected_seconds(zoo, results: dict, images_key: str, eval_key: str,
                      workers: int = 1) -> float:
    """The full reproduction's wall time: every experiment's epochs x its network's epoch
    (scaled from --train-images to 50,000 images) plus evaluation, on `workers` processes,
    longest first as `reproduce` hands them out when several run at once."""
    durations = []
    for experiment in zoo.report_experiments:
        row = results.get(experiment.network)
        if row is None or images_key not in row:
            continue
        epoch = 50_000 / row[images_key] + 10_000 / row[eval_key]
        durations.append(experiment.train.epochs * epoch)
    return makespan(sorted(durations, reverse=True) if workers > 1 else durations, workers)
