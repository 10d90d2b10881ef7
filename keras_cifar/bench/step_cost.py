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
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_cifar.bench import step_timing  # noqa: E402
from keras_cifar.bench.step_timing import fit_ms_per_step  # noqa: E402

STEPS = 7  # per epoch: one execution of steps_per_execution(49) = 7 steps
PRECISIONS = ("float32", "mixed_bfloat16")
VARIANTS = ((), ("activation",), ("batchnorm",), ("activation", "batchnorm"))


def step_ms(network_id: str, precision: str, without: tuple[str, ...], fused: bool,
            epochs: int) -> list[float]:
    """Milliseconds per step of each epoch of one fit, in this process."""
    from keras_cifar._env import prefer_onednn

    prefer_onednn()  # as the CLI asks for it

    from keras_cifar.models.fused import fuse_gelu, unfuse_gelu
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.compile import compiled_model
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    spec = zoo.network(network_id)
    spec = dataclasses.replace(spec, layers=tuple(
        layer for layer in spec.layers if layer.kind not in without))
    config = RunConfig.of(spec, recipe=zoo.recipe(spec.recipe), epochs=epochs)
    policy = None if precision == "float32" else precision
    model, _, _ = compiled_model(config, 49, policy)
    (fuse_gelu if fused else unfuse_gelu)(model)
    return fit_ms_per_step(model, config.batch_size, STEPS, epochs)


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
    return step_timing.measure_in_subprocess("keras_cifar.bench.step_cost",
                                             {**variant, "epochs": epochs}, _label(variant))


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
        step_timing.write_json(args.json, network=args.network, repeats=args.repeats,
                               epochs=args.epochs, steps_per_epoch=STEPS, variants=rows)
    return 0


if __name__ == "__main__":
    # A worker process (see `measure_in_subprocess`): its variant comes as one JSON argument.
    v = json.loads(sys.argv[1])
    print(json.dumps(step_ms(v["network"], v["precision"], tuple(v["without"]), v["fused"],
                             v["epochs"])))
