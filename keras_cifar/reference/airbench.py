"""airbench's own code, unmodified, trained on this CPU in float32 on a local CIFAR-10 copy.

The cross-check for keras-cifar's airbench rewrite, as `torch_reference` is for the report's
notebooks. It runs the PyPI `airbench` package's `train93` / `train94` as published; only the
device and the dtype are adapted, at run time, because the package is written for one CUDA GPU
in float16:

- `.cuda()` is the identity and `.half()` is `.float()` (tensors and modules), so everything
  runs on the CPU in float32;
- `torch.cuda.Event` / `torch.cuda.synchronize` time with the wall clock (the CPU is
  synchronous), and `CifarLoader`'s default device (`gpu=0`) is the CPU;
- `torchvision`, whose PyPI build does not import beside the CPU build of torch here, is
  replaced by the one thing airbench uses from it, `transforms.Normalize` (per-channel
  `(x - mean) / std`, as torchvision computes it);
- the data is a local copy written in airbench's own cache layout (`cifar10/train.pt`,
  `cifar10/test.pt`: uint8 NHWC images, int64 labels, class names), so nothing downloads.

Nothing in airbench's training code, network or hyperparameters is changed. Per-epoch rows are
read from airbench's own `print_training_details` (its table is still printed).

    (run it with scripts/airbench_reference.py)

Each seed becomes `OUT/airbench93-s<seed>.json` (per-epoch loss, accuracy, seconds; TTA
accuracy; trainable-parameter count; machine). Resumable per seed: finished seeds are skipped.
The decoded arrays live under `OUT/cifar10/`; never commit them.

Requires `torch` (the CPU build, `pip install torch==2.13.0`) and `pip install --no-deps
airbench==0.1.8`.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

from keras_cifar._env import cpu_model
from keras_cifar._fs import file_digest


def parse_seeds(text: str) -> list[int]:
    """'0-2' -> [0, 1, 2]; '0,3' -> [0, 3]."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    return seeds


def write_airbench_cache(data_dir: Path, out: Path) -> None:
    """Writes OUT/cifar10/{train,test}.pt in the layout airbench's CifarLoader caches."""
    import torch

    from keras_cifar.data.formats import read_local
    from keras_cifar.data.cifar import CLASS_NAMES

    target = out / "cifar10"
    if (target / "train.pt").exists() and (target / "test.pt").exists():
        return
    _, _, (x_train, y_train, x_test, y_test) = read_local(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        tmp = target / f".{name}.pt.tmp"
        torch.save({"images": torch.from_numpy(np.ascontiguousarray(images)),
                    "labels": torch.from_numpy(labels.astype(np.int64)),
                    "classes": list(CLASS_NAMES)}, tmp)
        os.replace(tmp, target / f"{name}.pt")


def adapt_to_cpu_float32() -> None:
    """Installs the run-time adaptations listed in the module docstring (device and dtype)."""
    import torch
    from torch import nn

    class Normalize(nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.mean, self.std = torch.as_tensor(mean), torch.as_tensor(std)

        def forward(self, x):
            return (x - self.mean.to(x.dtype).view(-1, 1, 1)) / self.std.to(x.dtype).view(-1, 1, 1)

    def no_download(*args, **kwargs):
        raise RuntimeError("airbench_reference: the CIFAR-10 cache should have been written "
                           "before training; torchvision downloads are not available here.")

    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = types.ModuleType("torchvision.transforms")
    torchvision.transforms.Normalize = Normalize
    torchvision.datasets = types.SimpleNamespace(CIFAR10=no_download)
    sys.modules["torchvision"] = torchvision
    sys.modules["torchvision.transforms"] = torchvision.transforms

    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.half = lambda self, *a, **k: self.float()
    nn.Module.half = lambda self: self.float()

    class WallClockEvent:
        def __init__(self, enable_timing: bool = False):
            self.t = None

        def record(self, *args):
            self.t = time.perf_counter()

        def elapsed_time(self, end: "WallClockEvent") -> float:
            return 1e3 * (end.t - self.t)

    torch.cuda.Event = WallClockEvent
    torch.cuda.synchronize = lambda *a, **k: None

    from airbench import utils
    defaults = utils.CifarLoader.__init__.__defaults__
    utils.CifarLoader.__init__.__defaults__ = (*defaults[:-1], "cpu")  # gpu=0 -> "cpu"


def train_one(variant: str, seed: int, threads: int, epochs: float | None = None) -> dict:
    """Trains airbench's `train<variant>` once with torch seeded by `seed` (for `epochs` instead
    of its own where given: the speed benchmark's short runs); returns its record."""
    import torch

    torch.set_num_threads(threads)
    import airbench
    from airbench import utils

    rows: list[dict] = []
    clock = {"wall": time.perf_counter(), "cpu": time.process_time()}
    original_print = utils.print_training_details

    def recording_print(variables, is_final_entry):
        now, cpu = time.perf_counter(), time.process_time()
        row = {k: variables.get(k) for k in ("epoch", "train_loss", "train_acc", "val_acc",
                                              "tta_val_acc", "total_time_seconds")}
        row["wall_seconds_since_last_row"] = round(now - clock["wall"], 2)
        row["cpu_seconds_since_last_row"] = round(cpu - clock["cpu"], 2)
        clock.update(wall=now, cpu=cpu)
        rows.append(row)
        return original_print(variables, is_final_entry)

    utils.print_training_details = recording_print
    make_net = getattr(airbench, f"make_net{variant}")
    counted = {}

    def counting_make_net():
        net = make_net()
        counted["trainable_parameters"] = sum(p.numel() for p in net.parameters()
                                              if p.requires_grad)
        return net

    torch.manual_seed(seed)
    started = time.perf_counter()
    options = {} if epochs is None else {"epochs": epochs}
    getattr(airbench, f"train{variant}")(make_net=counting_make_net, run=0, verbose=True, **options)
    utils.print_training_details = original_print
    final = rows[-1]
    return {"variant": f"airbench{variant}", "seed": seed,
            "airbench_version": getattr(airbench, "__version__", None) or _dist_version("airbench"),
            "torch_version": torch.__version__, "threads": threads, "dtype": "float32",
            "device": "cpu", "cpu": cpu_model(),
            "trainable_parameters": counted.get("trainable_parameters"),
            "tta_val_acc": final.get("tta_val_acc"),
            "val_acc": [r["val_acc"] for r in rows if isinstance(r["epoch"], int)][-1],
            "train_seconds": final.get("total_time_seconds"),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "epochs": rows, "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def run(args) -> int:
    """Runs what the script's options (`args`) ask for."""
    args.out.mkdir(parents=True, exist_ok=True)
    data_sha = file_digest(args.data_dir) if args.data_dir.is_file() else None
    write_airbench_cache(args.data_dir, args.out)
    adapt_to_cpu_float32()
    os.chdir(args.out)  # airbench reads its cache from the relative path 'cifar10'
    for seed in parse_seeds(args.seeds):
        record_path = Path(f"airbench{args.variant}-s{seed}.json")
        if record_path.exists():
            print(f"seed {seed}: already done ({args.out / record_path})")
            continue
        record = train_one(args.variant, seed, args.threads)
        record.update(data=str(args.data_dir), data_sha256=data_sha)
        tmp = record_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, record_path)
        print(f"seed {seed}: TTA accuracy {record['tta_val_acc']:.4f} in "
              f"{record['train_seconds']:.0f} s -> {args.out / record_path}", flush=True)
    return 0

