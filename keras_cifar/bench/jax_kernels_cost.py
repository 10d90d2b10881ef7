"""What JAX's max-pooling and convolutions cost a train step, as XLA runs Keras' layers and as
reshapes and matmuls (`models/jax_kernels.py`).

    (run it with scripts/bench_jax_kernels.py)

For each network, compiled as `train_run` compiles it on JAX (its recipe's optimizer and loss,
steps per execution, XLA), the step is fit on synthetic uint8 images in batches of the recipe's
size, in a fresh JAX process, `--repeats` times, alternating over four variants: Keras' own
layers (`lax.reduce_window` pooling, whose gradient is XLA's select-and-scatter, and XLA's
convolutions), the windowed max-pooling only, the im2col convolution only, and both (what
`train_run` runs on JAX). Reported: median milliseconds per step over every epoch but the
first (the trace), and each variant's speed-up over Keras' own.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_cifar.bench import step_timing  # noqa: E402
from keras_cifar.bench.step_timing import fit_ms_per_step  # noqa: E402

STEPS = 20  # per epoch
VARIANTS = {"keras": (), "max_pooling": ("max_pooling",), "convolution": ("convolution",),
            "both": ("max_pooling", "convolution")}


def step_ms(network_id: str, variant: str, epochs: int) -> list[float]:
    """Milliseconds per step of each epoch of one fit, in this (JAX) process."""
    import keras

    from keras_cifar.models.jax_kernels import restore_keras_kernels, use_jax_kernels
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.compile import compiled_model
    from keras_cifar.zoo import load_zoo

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"this measures JAX; run it with KERAS_BACKEND=jax. Received: "
                           f"backend={keras.backend.backend()!r}")
    zoo = load_zoo()
    spec = zoo.network(network_id)
    config = RunConfig.of(spec, recipe=zoo.recipe(spec.recipe), epochs=epochs)
    model, _, _ = compiled_model(config, STEPS)
    restore_keras_kernels(model)  # before fit traces the step
    use_jax_kernels(model, VARIANTS[variant])
    return fit_ms_per_step(model, config.batch_size, STEPS, epochs)


def measure_in_subprocess(network_id: str, variant: str, epochs: int) -> list[float]:
    return step_timing.measure_in_subprocess(
        "keras_cifar.bench.jax_kernels_cost",
        {"network": network_id, "variant": variant, "epochs": epochs},
        f"{network_id} ({variant})", env={"KERAS_BACKEND": "jax"})


def run(args) -> int:
    """Runs what the script's options (`args`) ask for; prints a table, writes JSON."""
    from keras_cifar._env import cpu_model

    networks = args.networks.split(",")
    rows = [{"network": n, "variant": v, "ms_per_step": []} for n in networks for v in VARIANTS]
    for _ in range(args.repeats):
        for row in rows:
            row["ms_per_step"].extend(
                measure_in_subprocess(row["network"], row["variant"], args.epochs)[1:])
    median = {}
    for row in rows:
        row["median_ms"] = median[row["network"], row["variant"]] = statistics.median(
            row["ms_per_step"])
    for row in rows:
        row["speedup"] = median[row["network"], "keras"] / row["median_ms"]
    print(f"JAX train step on {cpu_model()} ({os.cpu_count()} cores), ms, median of epochs 2+ "
          f"over {args.repeats} processes (speed-up over Keras' own layers):")
    print("| network | Keras' own | windowed max-pooling | im2col convolution | both |\n"
          "| --- | ---: | ---: | ---: | ---: |")
    for n in networks:
        cells = [f"{median[n, v]:.1f}" + ("" if v == "keras" else
                                          f" ({median[n, 'keras'] / median[n, v]:.2f}x)")
                 for v in VARIANTS]
        print(f"| {n} | " + " | ".join(cells) + " |")
    if args.json:
        import jax

        step_timing.write_json(args.json, jax=jax.__version__, repeats=args.repeats,
                               epochs=args.epochs, steps_per_epoch=STEPS, variants=rows)
    return 0


if __name__ == "__main__":
    # A worker process (see `measure_in_subprocess`): its variant comes as one JSON argument.
    v = json.loads(sys.argv[1])
    print(json.dumps(step_ms(v["network"], v["variant"], v["epochs"])))
