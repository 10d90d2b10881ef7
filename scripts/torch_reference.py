"""A plain PyTorch training loop for zoo networks: the report's own framework, as a reference.

Written as a PyTorch user would write it well: the same in-memory uint8 arrays, a `randperm`
per epoch, batches sliced from tensors and divided by 255 in the loop, PyTorch's default
initialisation, `torch.optim.SGD(momentum)`, `torch.set_num_threads` set to the cores. Used by
`scripts/bench.py` for speed and, with `--train`, to check accuracies against keras-cifar:

    python scripts/torch_reference.py mlp-baseline --lr 0.001 --momentum 0 --epochs 40 \
        --data-dir ../shared/data/cifar10-jpeg.tar.gz
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from keras_cifar.zoo import NetworkSpec


def torch_model(spec: NetworkSpec) -> nn.Sequential:
    """The network of a zoo spec as `torch.nn` layers (NCHW), PyTorch's default init."""
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

    def train_epoch(self) -> float:
        """One epoch; returns its wall seconds."""
        start = time.perf_counter()
        self.model.train()
        order = torch.randperm(len(self.y))
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(self._scale(self.x[idx])), self.y[idx])
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start

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


def main() -> int:
    from keras_cifar.data import load_data
    from keras_cifar.zoo import load_zoo

    parser = argparse.ArgumentParser(description="Train a zoo network with plain PyTorch.")
    parser.add_argument("network")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--json", default=None, help="write the history here")
    args = parser.parse_args()
    d = load_data("local", data_dir=args.data_dir)
    trainer = TorchTrainer(load_zoo().network(args.network), d.train_images, d.train_labels,
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


if __name__ == "__main__":
    sys.exit(main())
