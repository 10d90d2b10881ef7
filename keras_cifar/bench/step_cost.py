"""Where a train step's time goes: the step with layer kinds taken out, GELU fused or not.

    (run it with scripts/bench_step.py)

For one network (airbench93 by default) compiled as `train_run` compiles it (its recipe's
optimizer and loss, steps per execution, op determinism), each variant is fit on synthetic
uint8 images in batches of the recipe's size, in a fresh process, `--repeats` times,
alternating: the whole network, the network without its `activation` layers, without its
`batchnorm` layers, and without both; in float32 and in mixed bfloat16; and the whole network
in each precision with its GELUs fused (`models/fused.py`) or as Keras' own. What a variant
saves against the whole network is what those layers cost (forward and gradient). Reported:
median milliseconds per step over every epoch but the first (the trace).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS = 7  # per epoch: one execution of steps_per_execution(49) = 7 steps
PRECISIONS = ("float32", "mixed_bfloat16")
VARIANTS = ((), ("activation",), ("batchnorm",), ("activation", "batchnorm"))


def step_ms(network_id: str, precision: str, without: tuple[str, ...], fused: bool,
            epochs: int) -> list[float]:
    """Milliseconds per step of each epoch of one fit, in this process."""
    from keras_cifar._env import prefer_onednn

    prefer_onednn()  # as the CLI asks for it
    import numpy as np
    import tensorflow as tf

    from keras_cifar.models.fused import fuse_gelu, unfuse_gelu
    from keras_cifar.training.callbacks import EpochClock
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.train import compiled_model
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    spec = zoo.network(network_id)
    spec = dataclasses.replace(spec, layers=tuple(
        layer for layer in spec.layers if layer.kind not in without))
    config = RunConfig.of(spec, recipe=zoo.recipe(spec.recipe), epochs=epochs)
    policy = None if precision == "float32" else precision
    model, _, _ = compiled_model(config, 49, policy)
    (fuse_gelu if fused else unfuse_gelu)(model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (config.batch_size * STEPS, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    batches = (tf.data.Dataset.from_tensor_slices((images, labels)).batch(config.batch_size)
               .cache().repeat())
    clock = EpochClock()
    model.fit(batches, epochs=epochs, steps_per_epoch=STEPS, verbose=0, callbacks=[clock])
    return [1000 * s / STEPS for s in clock.seconds]


def variants(network_id: str) -> list[dict]:
    """Every variant measured: (precision, layers without, GELU fused)."""
    out = []
    for precision in PRECISIONS:
        for without in VARIANTS:
            out.append({"network": network_id, "precision": precision, "without": list(without),
                        "fused": precision != "float32"})  # as train_run does
        out.append({"network": network_id, "precision": precision, "without": [],
                    "fused": precision == "float32"})  # the other GELU
    return out


def _label(v: dict) -> str:
    parts = [v["precision"], "without " + " and ".join(v["without"]) if v["without"] else "whole",
             "fused GELU" if v["fused"] else "Keras' GELU"]
    return ", ".join(parts)


def measure_in_subprocess(variant: dict, epochs: int) -> list[float]:
    command = [sys.executable, "-m", "keras_cifar.bench.step_cost",
               json.dumps({**variant, "epochs": epochs})]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{_label(variant)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args) -> int:
    """Runs what the script's options (`args`) ask for; prints a table, writes JSON."""
    from keras_cifar._env import cpu_model

    rows = [{**v, "ms_per_step": []} for v in variants(args.network)]
    for _ in range(args.repeats):
        for row in rows:
            variant = {k: row[k] for k in ("network", "precision", "without", "fused")}
            row["ms_per_step"].extend(measure_in_subprocess(variant, args.epochs)[1:])
    print(f"{args.network} train step on {cpu_model()} ({os.cpu_count()} cores), ms, median "
          f"of epochs 2+ over {args.repeats} processes:")
    print("| precision | layers | GELU | ms per step |\n| --- | --- | --- | ---: |")
    for row in rows:
        row["median_ms"] = statistics.median(row["ms_per_step"])
        print(f"| {row['precision']} | {'without ' + ', '.join(row['without']) if row['without'] else 'all'} "
              f"| {'fused' if row['fused'] else 'Keras'} | {row['median_ms']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "cpu": cpu_model(), "cores": os.cpu_count(), "network": args.network,
            "repeats": args.repeats, "epochs": args.epochs, "steps_per_epoch": STEPS,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "variants": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    # A worker process (see `measure_in_subprocess`): its variant comes as one JSON argument.
    v = json.loads(sys.argv[1])
    print(json.dumps(step_ms(v["network"], v["precision"], tuple(v["without"]), v["fused"],
                             v["epochs"])))
