"""Export latency: one zoo network in every export format, its file size, and the time each
runtime takes for one batch of uint8 images, batch 1 and batch 256, on this machine's CPU.

    (run it with scripts/bench_export.py)
    python scripts/bench_export.py --model runs/RUN/model.keras --repeats 50 --json figures/bench_export.json

Runtimes: Keras (the `.keras` model called directly, plus a softmax), the SavedModel's `serve`
endpoint (`tf.saved_model.load`), ONNX Runtime (CPU provider) and the LiteRT interpreter
(`tf.lite.Interpreter`, XNNPACK). Each gets every core. Per (runtime, batch): a few warm-up
calls, then `--repeats` timed calls; the median is reported (milliseconds per batch), with the
images/s it means. All four are first checked to agree on the probabilities within 1e-4. Run
it on an otherwise idle machine: nothing else should be training.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

BATCHES = (1, 256)
WARMUP = 3


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
        else path.stat().st_size


def runtimes(model, exported: dict[str, Path], threads: int) -> dict:
    """Returns {runtime: predict(images) -> probabilities} for the model and each export."""
    import keras
    import onnxruntime
    import tensorflow as tf

    saved = tf.saved_model.load(str(exported["saved_model"]))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(exported["onnx"]), options,
                                           providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_path=str(exported["litert"]), num_threads=threads)
    given = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]
    sized = {}

    @tf.function(jit_compile=False, reduce_retracing=True)
    def keras_call(images):
        return tf.nn.softmax(model(tf.cast(images, tf.float32), training=False), axis=-1)

    def litert(images):
        if sized.get("shape") != images.shape:
            interpreter.resize_tensor_input(given["index"], images.shape)
            interpreter.allocate_tensors()
            sized["shape"] = images.shape
        interpreter.set_tensor(given["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output["index"])

    return {
        "keras": lambda images: keras_call(images).numpy(),
        "saved_model": lambda images: saved.serve(tf.constant(images)).numpy(),
        "onnx": lambda images: session.run(None, {"images": images})[0],
        "litert": litert,
        "_keep": (saved, session, interpreter, keras),  # alive while timing
    }


def time_one(predict, images, repeats: int) -> float:
    """Median seconds of one call, after WARMUP untimed calls."""
    for _ in range(WARMUP):
        predict(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(images)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args) -> int:
    """Runs what the script's options (`args`) ask for."""

    from keras_cifar._env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    from keras_cifar.models.builder import build_model
    from keras_cifar.serving.exports import EXPORT_FORMATS, export_model
    from keras_cifar.serving.predict import load_model_file
    from keras_cifar.zoo import get_network

    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    except RuntimeError:  # TensorFlow already running in this process (e.g. under pytest)
        pass
    model = load_model_file(args.model) if args.model else build_model(get_network(args.network),
                                                                        seed=0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        names = {"saved_model": "saved_model", "onnx": "model.onnx", "litert": "model.tflite"}
        exported = {f: export_model(model, Path(tmp) / names[f], f) for f in EXPORT_FORMATS}
        sizes = {f: _size(p) for f, p in exported.items()}
        model.save(Path(tmp) / "model.keras")
        sizes["keras"] = _size(Path(tmp) / "model.keras")
        predictors = runtimes(model, exported, args.threads)
        check = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
        reference = predictors["keras"](check)
        for name in EXPORT_FORMATS:
            worst = float(np.abs(predictors[name](check) - reference).max())
            if worst > 1e-4:
                print(f"{name} disagrees with Keras by {worst:.2e}", file=sys.stderr)
                return 1
        latency = {}
        for name in ("keras", *EXPORT_FORMATS):
            latency[name] = {}
            for batch in BATCHES:
                images = rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
                latency[name][batch] = time_one(predictors[name], images, args.repeats)

    label = args.model.name if args.model else args.network
    print(f"{label}: {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"median of {args.repeats} calls")
    print("| runtime | file | size (MiB) | batch 1 (ms) | batch 256 (ms) | images/s at 256 |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    files = {"keras": ".keras (called in TensorFlow)", "saved_model": "SavedModel directory",
             "onnx": ".onnx (ONNX Runtime)", "litert": ".tflite (LiteRT interpreter)"}
    for name in ("keras", *EXPORT_FORMATS):
        size = f"{sizes[name] / 2**20:.1f}"
        one, many = latency[name][1], latency[name][256]
        print(f"| {name} | {files[name]} | {size} | {one * 1e3:.2f} | {many * 1e3:.1f} "
              f"| {256 / many:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "model": label, "threads": args.threads, "repeats": args.repeats,
            "machine": platform.machine(), "cpus": os.cpu_count(), "sizes_bytes": sizes,
            "seconds_per_batch": {k: {str(b): v for b, v in d.items()} for k, d in latency.items()},
        }, indent=2) + "\n")
    return 0

