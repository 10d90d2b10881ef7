"""What the notebook-scale loss costs per epoch: `fit` with and without the `NotebookLoss` metric.

    (run it with scripts/bench_notebook_loss.py)

The fidelity issue asked for the loss on the notebooks' scale at no measurable cost per epoch,
computed from the per-example losses of the passes `fit` already runs. This measures it: for
each network, a model compiled as `train_run` compiles it (SGD with momentum, steps per
execution, XLA where `--xla auto` would use it, op determinism) is fit on synthetic images, with
the test pass of 10,000 images in evaluation batches, once with `metrics=["accuracy"]` and once
with `["accuracy", NotebookLoss()]`, alternating so drift hits both, each repetition in a fresh
process of `--threads` threads (as a `reproduce run --workers 2` worker has). Reported: the median
epoch time (training and test pass, first epoch dropped) of each, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TEST_IMAGES = 10_000


def epoch_seconds(network_id: str, with_notebook_loss: bool, epochs: int, train_images: int) -> float:
    """Median epoch time of one fit, in this process."""
    import keras
    import tensorflow as tf

    from keras_cifar.models.builder import build_model
    from keras_cifar.training.callbacks import EpochClock
    from keras_cifar.data import synthetic_data
    from keras_cifar.training.evaluation import EVAL_BATCH_SIZE
    from keras_cifar.training.metrics import NotebookLoss
    from keras_cifar.data.pipelines import eval_pipeline, train_pipeline
    from keras_cifar.training.compile import steps_per_execution, use_xla
    from keras_cifar.zoo import load_zoo

    spec = load_zoo().network(network_id)
    xla = use_xla(spec)
    if not xla:  # as train_run: determinism through TF's switch where XLA does not give it
        tf.config.experimental.enable_op_determinism()
    data = synthetic_data(train_images, TEST_IMAGES)
    train, _, steps = train_pipeline(data.train_images, data.train_labels, 64, 0, epochs)
    test = eval_pipeline(data.test_images, data.test_labels, EVAL_BATCH_SIZE)
    model = build_model(spec, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", NotebookLoss()] if with_notebook_loss else ["accuracy"],
                  steps_per_execution=steps_per_execution(steps), jit_compile=xla)
    clock = EpochClock()
    model.fit(train, validation_data=test, epochs=epochs, steps_per_epoch=steps, verbose=0,
              callbacks=[clock])
    return statistics.median(clock.seconds[1:])


def measure_in_subprocess(network_id: str, with_notebook_loss: bool, args) -> float:
    settings = {"worker": [network_id, str(int(with_notebook_loss))], "epochs": args.epochs,
                "train_images": args.train_images, "threads": args.threads}
    command = [sys.executable, "-m", "keras_cifar.bench.notebook_loss_cost", json.dumps(settings)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{network_id} (notebook loss {with_notebook_loss}) failed:\n"
                           f"{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def run(args) -> int:
    """Runs what the script's options (`args`) ask for."""
    if args.worker:
        from keras_cifar.reproduce.executors import limit_threads

        limit_threads(args.threads)  # imports TensorFlow as the CLI does (oneDNN asked for)
        network_id, with_loss = args.worker
        print(epoch_seconds(network_id, with_loss == "1", args.epochs, args.train_images))
        return 0
    results = {}
    for network_id in args.networks.split(","):
        plain, with_loss = [], []
        for _ in range(args.repeats):
            plain.append(measure_in_subprocess(network_id, False, args))
            with_loss.append(measure_in_subprocess(network_id, True, args))
        results[network_id] = {
            "epoch_s_without": statistics.median(plain), "epoch_s_with": statistics.median(with_loss),
            "ratio": statistics.median(with_loss) / statistics.median(plain),
            "runs_without": plain, "runs_with": with_loss}
        r = results[network_id]
        print(f"{network_id}: epoch {r['epoch_s_without']:.3f} s without NotebookLoss, "
              f"{r['epoch_s_with']:.3f} s with it: x{r['ratio']:.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items()
                                                      if k not in ("json", "worker")},
                                         "networks": results}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    # A worker process (see `measure_in_subprocess`): its settings come as one JSON argument.
    sys.exit(run(argparse.Namespace(**json.loads(sys.argv[1]))))
