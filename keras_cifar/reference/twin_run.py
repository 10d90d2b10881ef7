"""Twin runs: keras-cifar and the PyTorch reference trained from the same initial weights on the
same batches, epoch after epoch, on the real images: a check of whole runs, not of seeds.

    (run it with scripts/twin_run.py)

Independent seeds differ in two random things, the initial weights and the order of the
batches, and at the report's settings that alone moves a final test accuracy by 2 points or
more. To tell a difference of code from that noise, this takes both away: PyTorch's model is
built as `scripts/torch_reference.py` builds it (its default init, seeded), its weights are
copied into keras-cifar's model when training starts (`step_parity.copy_into_keras`),
and PyTorch trains on keras-cifar's own order of the images (`pipelines.epoch_permutation`).
Keras trains through `train.train_run` itself (pipeline, compiled model, fit, validation,
history.csv); PyTorch through `TorchTrainer` (the reference's loop and its notebook test pass).

Reported per epoch: test accuracy and mean test cross-entropy on both sides, the mean training
loss on both sides, and the weights' largest difference relative to PyTorch's largest weight.
With the same code the two stay together until float32 rounding, which differs between the
frameworks' kernels, has grown through the steps (see step_parity.py: a ReLU that opens on one
side only); a wrong loss reduction, update, scaling or last batch shows from the first epoch.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np


from keras_cifar.reference import step_parity  # noqa: E402  (sets keras-cifar's oneDNN preference before TensorFlow)


def _relative_weights(keras_weights, torch_weights) -> float:
    """Largest |keras - torch| over all weights, relative to PyTorch's largest weight."""
    difference = max(float(np.max(np.abs(np.asarray(k) - t)))
                     for k_layer, t_layer in zip(keras_weights, torch_weights)
                     for k, t in zip(k_layer, t_layer))
    scale = max(float(np.max(np.abs(t))) for t_layer in torch_weights for t in t_layer)
    return difference / max(scale, 1e-12)


def twin_run(experiment, spec, data, *, seed: int = 0, epochs: int | None = None,
             threads: int | None = None) -> list[dict]:
    """Trains `experiment` on both sides from PyTorch's seeded initial weights, in keras-cifar's
    order of the images; returns one row per epoch (see the module docstring)."""
    import keras

    from keras_cifar.training import rundir
    from keras_cifar.training.config import RunConfig
    from keras_cifar.data.pipelines import epoch_permutation
    from keras_cifar.training.train import train_run
    from keras_cifar.reference.torch_trainer import TorchTrainer

    t = experiment.train
    epochs = epochs or t.epochs
    trainer = TorchTrainer(spec, data.train_images, data.train_labels, data.test_images,
                           data.test_labels, lr=t.lr, momentum=t.momentum,
                           batch_size=t.batch_size, seed=seed, threads=threads)
    snapshots = []

    class TwinWeights(keras.callbacks.Callback):
        """Starts from PyTorch's initial weights; keeps the weights after every epoch."""

        def on_train_begin(self, logs=None):
            self.weighted = step_parity.copy_into_keras(spec, trainer.model, self.model)

        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([layer.get_weights() for layer in self.weighted])

    config = RunConfig.of(spec, lr=t.lr, momentum=t.momentum, epochs=epochs,
                          batch_size=t.batch_size, seed=seed)
    with tempfile.TemporaryDirectory(prefix="twin-run-") as out:
        result = train_run(config, data, out_dir=out, name="keras", verbose=0,
                           callbacks=[TwinWeights()])
        keras_history = rundir.read_history(result.run_dir)
    n = len(data.train_labels)
    rows = []
    for epoch in range(epochs):
        trainer.train_epoch(order=epoch_permutation(n, seed, epoch).numpy())
        torch_loss, _ = trainer.train_losses()
        test = trainer.evaluate_notebook()
        ours = keras_history[epoch]
        rows.append({
            "epoch": epoch,
            "keras_accuracy": ours["val_accuracy"], "torch_accuracy": test["val_accuracy"],
            "keras_test_loss": ours["val_loss"], "torch_test_loss": test["val_loss"],
            "keras_train_loss": ours["loss"], "torch_train_loss": torch_loss,
            "weights": _relative_weights(
                snapshots[epoch], step_parity.keras_weights_from_torch(spec, trainer.model)),
        })
    return rows


def plot_twins(rows: list[dict], path: Path, title: str) -> Path:
    """Draws both sides' test accuracy and mean test cross-entropy against epoch."""
    from keras_cifar.plots.figures import plot_comparison

    return plot_comparison(
        [(label, [{"epoch": r["epoch"], "val_accuracy": r[f"{side}_accuracy"],
                   "val_loss": r[f"{side}_test_loss"]} for r in rows])
         for label, side in (("keras-cifar", "keras"), ("PyTorch reference", "torch"))],
        path, title)


def run(args) -> int:
    """Runs the twin runs the script's options (`args`) ask for and writes what they name."""
    from keras_cifar.data import load_data
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    experiment = zoo.experiment(args.experiment)
    data = load_data("local", data_dir=args.data_dir)
    rows = twin_run(experiment, zoo.network(experiment.network), data, seed=args.seed,
                    epochs=args.epochs, threads=args.threads)
    for r in rows:
        print(f"epoch {r['epoch'] + 1}: test accuracy keras {r['keras_accuracy']:.2%}, "
              f"PyTorch {r['torch_accuracy']:.2%}; train loss {r['keras_train_loss']:.4f} / "
              f"{r['torch_train_loss']:.4f}; weights {r['weights']:.1e} apart", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"experiment": args.experiment, "seed": args.seed,
                                         "epochs": len(rows), "rows": rows}, indent=1) + "\n")
    if args.plot:
        plot_twins(rows, args.plot, f"{args.experiment}: twin runs (seed {args.seed}), same "
                   "initial weights and order of the images")
    return 0

