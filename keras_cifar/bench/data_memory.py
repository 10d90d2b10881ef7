"""Benchmark the data path: cold and cached loads, pipeline images/s, peak memory.

    (run it with scripts/bench_data.py)

Cold load uses an empty temporary cache; cached load reads what the cold load wrote. Pipeline
speed is measured on `train_pipeline` alone (gather + batch + prefetch) and as `fit` of the
fastest zoo network with the real pipeline against `fit` on one cached batch repeated. Peak
memory is the resident set size above what it was just after `import tensorflow`.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args) -> int:
    """Runs what the script's options (`args`) ask for."""

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cifar.models.builder import build_model
    from keras_cifar.training.callbacks import EpochClock
    from keras_cifar.data import load_local, synthetic_data
    from keras_cifar.data.pipelines import train_pipeline
    from keras_cifar.training.compile import steps_per_execution
    from keras_cifar.zoo import load_zoo

    baseline = rss_mib()
    results: dict = {"data": args.data or "synthetic (50,000 + 10,000)"}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["KERAS_CIFAR_CACHE_DIR"] = cache
        if args.data:
            start = time.perf_counter()
            data = load_local(args.data)
            results["cold_load_s"] = round(time.perf_counter() - start, 2)
            start = time.perf_counter()
            data = load_local(args.data)
            results["cached_load_s"] = round(time.perf_counter() - start, 3)
        else:
            start = time.perf_counter()
            data = synthetic_data(50_000, 10_000)
            results["cold_load_s"] = round(time.perf_counter() - start, 2)
    results["memory_after_load_mib_above_tf"] = round(rss_mib() - baseline, 1)

    n = len(data.train_labels)
    dataset, first, steps = train_pipeline(data.train_images, data.train_labels, 64, 0, 2)
    start = time.perf_counter()
    for _ in dataset:
        pass
    results["pipeline_images_per_s"] = round(2 * n / (time.perf_counter() - start))

    # The fastest zoo network (fewest parameters per image among the MLPs) sets the bar.
    spec = load_zoo().network("mlp2")

    def fit_seconds(ds, steps_per_epoch):
        model = build_model(spec, seed=0)
        model.compile(keras.optimizers.SGD(0.005, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], steps_per_execution=steps_per_execution(steps_per_epoch))
        clock = EpochClock()
        model.fit(ds, epochs=args.epochs, steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
                  callbacks=[clock])
        return float(np.median(clock.seconds[1:] or clock.seconds))

    real, _, steps = train_pipeline(data.train_images, data.train_labels, 64, 0, args.epochs)
    x, y = next(iter(real))
    cached = tf.data.Dataset.from_tensors((x, y)).repeat()
    alternating = []
    for _ in range(2):  # alternate so drift hits both
        alternating.append((fit_seconds(real, steps), fit_seconds(cached, steps)))
    real_s = float(np.median([a for a, _ in alternating]))
    cached_s = float(np.median([b for _, b in alternating]))
    results["fit_epoch_s_real_pipeline"] = round(real_s, 2)
    results["fit_epoch_s_one_cached_batch"] = round(cached_s, 2)
    results["pipeline_overhead"] = f"{(real_s / cached_s - 1):+.1%}"
    results["peak_rss_mib_above_tf"] = round(peak_mib() - baseline, 1)

    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0

