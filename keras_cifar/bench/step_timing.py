"""What the train-step benchmarks share: a fit on synthetic batches timed per epoch, a variant
measured in a fresh process, and the JSON they write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def fit_ms_per_step(model, batch_size: int, steps: int, epochs: int) -> list[float]:
    """Fits `model` on `steps` batches of synthetic uint8 images per epoch; returns each
    epoch's milliseconds per step (`EpochClock`: the training part, without evaluation)."""
    import numpy as np
    import tensorflow as tf

    from keras_cifar.training.callbacks import EpochClock

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size * steps, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    batches = (tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
               .cache().repeat())
    clock = EpochClock()
    model.fit(batches, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    return [1000 * s / steps for s in clock.seconds]


def measure_in_subprocess(module: str, settings: dict, label: str,
                          env: dict | None = None) -> list[float]:
    """Runs `python -m module SETTINGS_JSON` (a benchmark's worker) in a fresh process, so no
    variant inherits another's compiled functions or thread pools; returns what it printed
    last, as JSON."""
    done = subprocess.run([sys.executable, "-m", module, json.dumps(settings)],
                          capture_output=True, text=True, timeout=3600,
                          env=None if env is None else {**os.environ, **env})
    if done.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_json(path, **fields) -> None:
    """Writes a benchmark's results with the machine (CPU model, cores) and when it finished."""
    from keras_cifar._env import cpu_model

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cpu": cpu_model(), "cores": os.cpu_count(), **fields,
                                "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
                               indent=1) + "\n")


def add_step_arguments(parser) -> None:
    """The options every step benchmark takes: --repeats, --epochs, --json."""
    from pathlib import Path

    parser.add_argument("--repeats", type=int, default=2, help="processes per variant")
    parser.add_argument("--epochs", type=int, default=3, help="per fit; the first is dropped")
    parser.add_argument("--json", type=Path, default=None)


def parse_step_arguments(parser, argv=None):
    """Parses `argv`, refusing fewer than 2 epochs (the first, the trace, is dropped)."""
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the first is dropped). Received: {args.epochs}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1. Received: {args.repeats}")
    return args
