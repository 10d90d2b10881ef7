"""A plain PyTorch training loop for zoo networks: the report's own framework, as a reference.

Written as a PyTorch user would write it well: the same in-memory uint8 arrays, a `randperm`
per epoch, batches sliced from tensors and scaled in the loop (to [-1, 1] for the zoo's
`symmetric` networks, as the notebooks' `Normalize(0.5, 0.5)`), PyTorch's default
initialisation, `nn.CrossEntropyLoss()`, `torch.optim.SGD(lr, momentum)`. Used by
`scripts/bench.py` for speed, and to reproduce the report's experiments with the original
notebooks' protocol on the same data, as a check on keras-cifar's numbers:

    (run it with scripts/torch_reference.py)

Each (experiment, seed) becomes `OUT/torch/<experiment-id>[-s<seed>]/` with config.json,
history.csv and metrics.json, the layout of keras-cifar's runs, so `keras-cifar reproduce
report --out OUT` puts them beside ours. Per epoch: one reshuffled pass over the
training images in batches of 64 (the last holds 16), then one in-order pass over the test
images in batches of 64; losses are recorded as mean cross-entropy and on the notebooks'
scale. Resumable: a checkpoint (model, optimiser, shuffling generator, history) is written
atomically after every epoch and removed when the run finishes.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from keras_cifar import _fs
from keras_cifar.training import rundir
from keras_cifar.training.notebook_loss import NOTEBOOK_BATCH_SIZE, notebook_scale_loss
from keras_cifar.reproduce.results import TORCH_SUBDIR
from keras_cifar.zoo import NetworkSpec


def _modelled(layer) -> bool:
    """Whether the reference builds this layer as keras-cifar does: the report's kinds, with
    the options added for airbench (written out by `to_dict` only when not default) unset."""
    written = layer.to_dict()
    if layer.kind == "batchnorm":
        return written == {"kind": "batchnorm"}
    return (layer.kind in ("conv", "maxpool", "flatten", "dense", "dropout")
            and "use_bias" not in written and "init" not in written)


def torch_model(spec: NetworkSpec) -> nn.Sequential:
    """The network of a zoo spec as `torch.nn` layers (NCHW), PyTorch's default init.

    Raises:
        ValueError: the network uses a layer kind or option the reference does not model
            (airbench's: its cross-check is airbench's own code, `reference.airbench`).
    """
    for layer in spec.layers:
        if not _modelled(layer):
            raise ValueError(
                f"The PyTorch reference models the report's layers only; network '{spec.id}' "
                f"has {layer.name} ({layer.describe()}). airbench's networks are checked against "
                "airbench's own code instead (scripts/airbench_reference.py). "
                f"Received: {layer.to_dict()}")
    layers: list[nn.Module] = []
    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
                   "elu": nn.ELU}
    for layer in spec.layers:
        o = layer.options
        if layer.kind == "conv":
            layers.append(nn.Conv2d(layer.input_shape[-1], o["filters"], o["kernel_size"],
                                    stride=o["strides"], padding=0 if o["padding"] == "valid" else "same"))
        elif layer.kind == "maxpool":
            layers.append(nn.MaxPool2d(o["pool_size"], o["strides"]))
        elif layer.kind == "flatten":
            layers.append(nn.Flatten())
        elif layer.kind == "dense":
            layers.append(nn.Linear(layer.fan_in, o["units"]))
        elif layer.kind == "dropout":
            layers.append(nn.Dropout(o["rate"]))
        elif layer.kind == "batchnorm":
            layers.append(nn.BatchNorm2d(layer.input_shape[-1]) if len(layer.input_shape) == 3
                          else nn.BatchNorm1d(layer.input_shape[-1]))
        if o.get("activation", "linear") != "linear":
            layers.append(activations[o["activation"]]())
    return nn.Sequential(*layers)


class TorchTrainer:
    """Trains and evaluates a zoo network with a plain PyTorch loop on uint8 arrays."""

    def __init__(self, spec: NetworkSpec, train_images, train_labels, test_images, test_labels, *,
                 lr: float, momentum: float, batch_size: int = 64, seed: int = 0,
                 threads: int | None = None):
        torch.set_num_threads(threads or os.cpu_count() or 1)
        torch.manual_seed(seed)
        self.model = torch_model(spec)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
        self.loss = nn.CrossEntropyLoss()
        self.batch_size = batch_size
        self.symmetric = spec.preprocess == "symmetric"
        # NHWC uint8 -> NCHW uint8, once; scaling to float happens per batch, as users do.
        self.x = torch.from_numpy(np.ascontiguousarray(train_images.transpose(0, 3, 1, 2)))
        self.y = torch.from_numpy(train_labels.astype(np.int64))
        self.test_x = torch.from_numpy(np.ascontiguousarray(test_images.transpose(0, 3, 1, 2)))
        self.test_y = torch.from_numpy(test_labels.astype(np.int64))

    def _scale(self, batch):
        x = batch.float() / 255
        return x * 2 - 1 if self.symmetric else x

    def train_epoch(self, order=None) -> float:
        """One reshuffled pass over the training images; returns its wall seconds.

        `order`: the images' indices in the order to train on them (`scripts/twin_run.py`
        gives keras-cifar's); None draws a permutation from this trainer's generator. The
        batches' mean losses are kept in `batch_losses` (a tensor, no sync per step).
        """
        start = time.perf_counter()
        self.model.train()
        if order is None:
            order = torch.randperm(len(self.y), generator=self.shuffle)
        else:
            order = torch.as_tensor(np.asarray(order, dtype=np.int64))
            if not torch.equal(torch.sort(order).values, torch.arange(len(self.y))):
                raise ValueError(f"`order` must hold each of the {len(self.y)} training images' "
                                 f"indices once. Received {len(order)} indices.")
        losses = []
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(self._scale(self.x[idx])), self.y[idx])
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
        self.batch_losses = torch.stack(losses)
        return time.perf_counter() - start

    def train_losses(self) -> tuple[float, float]:
        """(mean cross-entropy, notebook-scale loss) of the last training epoch's batches."""
        means = self.batch_losses.double()
        sizes = torch.full_like(means, self.batch_size)
        sizes[-1] = len(self.y) - self.batch_size * (len(means) - 1)
        return float((means * sizes).sum() / len(self.y)), float(means.sum() / len(self.y))

    @torch.no_grad()
    def evaluate_notebook(self) -> dict:
        """The notebooks' test pass: batches of 64 in order; returns accuracy, mean
        cross-entropy and the notebook-scale loss."""
        self.model.eval()
        losses, correct = [], 0
        for i in range(0, len(self.test_y), NOTEBOOK_BATCH_SIZE):
            logits = self.model(self._scale(self.test_x[i:i + NOTEBOOK_BATCH_SIZE]))
            y = self.test_y[i:i + NOTEBOOK_BATCH_SIZE]
            losses.append(nn.functional.cross_entropy(logits.double(), y, reduction="none"))
            correct += int((logits.argmax(1) == y).sum())
        per_example = torch.cat(losses).numpy()
        return {"val_accuracy": correct / len(self.test_y), "val_loss": float(per_example.mean()),
                "val_notebook_loss": notebook_scale_loss(per_example)}

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "shuffle": self.shuffle.get_state()}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.shuffle.set_state(state["shuffle"])

    @torch.no_grad()
    def evaluate(self, batch_size: int = 256) -> tuple[float, float, float]:
        """Returns (mean cross-entropy, accuracy, seconds) on the test arrays."""
        start = time.perf_counter()
        self.model.eval()
        total_loss, correct = 0.0, 0
        for i in range(0, len(self.test_y), batch_size):
            logits = self.model(self._scale(self.test_x[i:i + batch_size]))
            y = self.test_y[i:i + batch_size]
            total_loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        n = len(self.test_y)
        return total_loss / n, correct / n, time.perf_counter() - start


CHECKPOINT = "checkpoint.pt"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_experiment(experiment, spec: NetworkSpec, data, seed: int, out_dir: Path,
                   threads: int | None = None) -> Path:
    """Trains one experiment with one seed into `out_dir/torch/<id>[-s<seed>]/`, resuming from
    its checkpoint; a finished run is left as it is. Returns the run directory."""
    run_dir = Path(out_dir) / TORCH_SUBDIR / rundir.run_dir_name(experiment.id, seed)
    t = experiment.train
    identity = {"network": spec.to_dict(), "lr": t.lr, "momentum": t.momentum,
                "epochs": t.epochs, "batch_size": t.batch_size, "seed": seed,
                "framework": "pytorch", "protocol": "notebook",
                "data": {"fingerprint": data.fingerprint, "train": int(len(data.train_labels)),
                         "test": int(len(data.test_labels))}}
    if (run_dir / rundir.CONFIG).exists():
        saved = rundir.read_config(run_dir)
        differing = rundir.identity_differences(saved.get("identity", {}), identity)
        if differing:
            raise SystemExit(f"{run_dir} holds a different run ({', '.join(differing)} differ); "
                             "move it away or choose another --out.")
        if saved.get("status") == rundir.STATUS_FINISHED:
            return run_dir
    trainer = TorchTrainer(spec, data.train_images, data.train_labels, data.test_images,
                           data.test_labels, lr=t.lr, momentum=t.momentum,
                           batch_size=t.batch_size, seed=seed, threads=threads)
    history = []
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        trainer.restore(state)
        history = state["history"]
    config = {"identity": identity, "status": rundir.STATUS_RUNNING, "started": _now(),
              "versions": {"torch": torch.__version__, "python": platform.python_version()},
              "threads": torch.get_num_threads(), "command": " ".join(sys.argv)}
    _fs.atomic_write_json(run_dir / rundir.CONFIG, config)
    for epoch in range(len(history), t.epochs):
        seconds = trainer.train_epoch()
        loss, notebook_loss = trainer.train_losses()
        row = {"epoch": epoch, "loss": loss, "notebook_loss": notebook_loss,
               **trainer.evaluate_notebook(), "seconds": round(seconds, 3)}
        history.append(row)
        tmp = checkpoint.with_name(f".{CHECKPOINT}.tmp")
        torch.save({**trainer.state(), "history": history}, tmp)
        os.replace(tmp, checkpoint)
        print(f"{run_dir.name} epoch {epoch + 1}/{t.epochs}: test accuracy "
              f"{row['val_accuracy']:.2%}, test loss {row['val_notebook_loss']:.5f} (notebook "
              f"scale), {seconds:.1f} s", flush=True)
    keys = list(history[0])
    _fs.atomic_write_text(run_dir / rundir.HISTORY, ",".join(keys) + "\n" + "".join(
        ",".join(str(row[k]) for k in keys) + "\n" for row in history))
    last = history[-1]
    _fs.atomic_write_json(run_dir / rundir.METRICS, {
        "test_accuracy": last["val_accuracy"], "test_loss": last["val_loss"],
        "test_loss_notebook": last["val_notebook_loss"],
        "seconds": round(sum(row["seconds"] for row in history), 3)})
    config.update(status=rundir.STATUS_FINISHED, finished=_now())
    _fs.atomic_write_json(run_dir / rundir.CONFIG, config)
    checkpoint.unlink()
    return run_dir


def run(args) -> int:
    """Trains what the script's options (`args`) ask for: the experiments with each seed, or
    one network with given settings."""
    from keras_cifar.data import load_data
    from keras_cifar.reproduce.experiments import parse_seeds
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    if args.experiments:
        experiments = [zoo.experiment(i) for i in args.experiments]
        d = load_data("local", data_dir=args.data_dir)
        for seed in parse_seeds(args.seeds):
            for e in experiments:
                print(f"{run_experiment(e, zoo.network(e.network), d, seed, Path(args.out), args.threads)}"
                      " finished", flush=True)
        return 0
    d = load_data("local", data_dir=args.data_dir)
    trainer = TorchTrainer(zoo.network(args.network), d.train_images, d.train_labels,
                           d.test_images, d.test_labels, lr=args.lr, momentum=args.momentum,
                           seed=args.seed, threads=args.threads)
    history = []
    for epoch in range(args.epochs):
        seconds = trainer.train_epoch()
        loss, accuracy, _ = trainer.evaluate()
        history.append({"epoch": epoch, "val_loss": loss, "val_accuracy": accuracy,
                        "seconds": seconds})
        print(f"epoch {epoch + 1}/{args.epochs}: test loss {loss:.4f}, test accuracy "
              f"{accuracy:.2%}, {seconds:.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(history, f, indent=1)
    return 0

