"""airbench93 in keras-cifar against airbench's own code, side by side on this CPU.

    (run it with scripts/bench_airbench.py)

`--rounds` times, alternating so that machine drift hits both alike, each in a fresh process:
- keras-cifar: airbench93 as `train` builds it (`compiled_model`, the recipe's tf.data
  pipeline with augmentation, whitening init, `RecipeSGD` with lookahead) fitted `--epochs`
  epochs with no validation pass, then the test-time-augmented evaluation, timed apart;
  in float32, or with `--mixed-precision` in mixed bfloat16 (its GELUs fused, `models/fused.py`);
- airbench: its own `train93`, unmodified, float32 on the CPU (`keras_cifar.reference.airbench`),
  for the same epochs; its per-epoch training time (its `total_time_seconds`, which leaves out
  its evaluations).
With `--backends jax,torch`, keras-cifar's side also runs on those Keras backends, each in
its own process (`KERAS_BACKEND`), in the same rounds (the backend speed table's airbench93
row: airbench's own code is its plain-PyTorch column).
Each worker's peak resident memory is read by `/usr/bin/time -v` where it exists (else
`getrusage`). Reported: median seconds per epoch over every epoch but each run's first (the
trace / warm-up), the ratio, a full run's projection (11 epochs, whitening init, TTA
evaluation) against the issue's 30 minutes, and the fraction of this machine's float32 matmul
peak (measured in the same run) that each side's training reaches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FULL_EPOCHS = 11  # airbench93's
TARGET_MINUTES = 30
TARGET_RATIO = 1.5


def training_flops_per_image(spec) -> float:
    """FLOPs of one training image as the step computes them (forward, weight gradients, and
    input gradients for every layer but the first; `costs.reproduction_flops`'s count)."""
    from keras_cifar.bench.costs import layer_macs

    macs = layer_macs(spec)
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def keras_worker(settings: dict) -> dict:
    """One keras-cifar measurement (runs in its own process)."""
    from keras_cifar._env import cpu_model, prefer_onednn

    prefer_onednn()  # as the CLI asks for it
    import keras
    import numpy as np

    from keras_cifar.backends import backend_version
    from keras_cifar.data.spec import DataSpec
    from keras_cifar.data.pipelines import train_pipeline
    from keras_cifar.models.whitening import initialise_whitening
    from keras_cifar.training.callbacks import EpochClock
    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.compile import compiled_model, mixed_precision_policy
    from keras_cifar.training.train import tta_metrics
    from keras_cifar.zoo import load_zoo
    from keras_cifar.bench.speed import matmul_peak_gflops

    if keras.backend.backend() != settings.get("backend", "tensorflow"):
        raise RuntimeError(f"this worker should run on {settings.get('backend')}, but Keras "
                           f"runs on {keras.backend.backend()}; set KERAS_BACKEND")
    zoo = load_zoo()
    spec = zoo.network(settings["network"])
    data = DataSpec.of(settings["data"]).load()
    config = RunConfig.of(spec, recipe=zoo.recipe(spec.recipe), epochs=settings["epochs"],
                          mixed_precision=settings.get("mixed_precision", False))
    keras.utils.set_random_seed(0)
    train_ds, _, steps = train_pipeline(data.train_images, data.train_labels, config.batch_size,
                                        config.seed, config.epochs, augment=config.recipe.augment)
    model, _, speed = compiled_model(config, steps, mixed_precision_policy(config.mixed_precision))
    start = time.perf_counter()
    initialise_whitening(model, spec, data.train_images)
    whitening_seconds = time.perf_counter() - start
    # The augmented pipeline alone, one epoch's batches: it must outrun the training step.
    start = time.perf_counter()
    for _ in train_ds.take(steps):
        pass
    pipeline_images_per_s = len(data.train_labels) / (time.perf_counter() - start)
    train_ds, _, _ = train_pipeline(data.train_images, data.train_labels, config.batch_size,
                                    config.seed, config.epochs, augment=config.recipe.augment)

    clock = EpochClock()
    model.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps, callbacks=[clock],
              verbose=0)
    start = time.perf_counter()
    tta = tta_metrics(model, data.test_images, data.test_labels, config.recipe.tta)
    tta_seconds = time.perf_counter() - start
    return {"epoch_seconds": clock.seconds, "whitening_seconds": whitening_seconds,
            "tta_seconds": tta_seconds, "tta_accuracy": tta["tta_test_accuracy"],
            "pipeline_images_per_s": pipeline_images_per_s,
            "steps_per_epoch": steps, "train_images": int(len(data.train_labels)),
            "speed": speed, "cpu": cpu_model(), "matmul_gflops": matmul_peak_gflops("tf"),
            "backend": keras.backend.backend(),
            "versions": {"keras": keras.__version__, "numpy": np.__version__,
                         keras.backend.backend(): backend_version(keras.backend.backend())}}


def airbench_worker(settings: dict) -> dict:
    """One airbench measurement (runs in its own process, in the airbench environment)."""
    from keras_cifar.reference import airbench
    from keras_cifar.bench.speed import matmul_peak_gflops

    out = Path(settings["cache"])
    airbench.write_airbench_cache(Path(settings["data"]), out)
    airbench.adapt_to_cpu_float32()
    os.chdir(out)
    record = airbench.train_one("93", 0, settings["threads"], epochs=settings["epochs"])
    totals = [r["total_time_seconds"] for r in record["epochs"] if isinstance(r["epoch"], int)]
    seconds = [b - a for a, b in zip([0.0] + totals[:-1], totals)]
    return {"epoch_seconds": seconds, "torch": record["torch_version"], "cpu": record["cpu"],
            "matmul_gflops": matmul_peak_gflops("torch")}


def _peak_rss_mib(stderr: str) -> float | None:
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(match.group(1)) / 1024 if match else None


def _measure(python: str, kind: str, settings: dict, env: dict) -> dict:
    command = [python, "-m", "keras_cifar.bench.airbench_speed", kind, json.dumps(settings)]
    timer = shutil.which("time") or "/usr/bin/time"
    if os.path.exists(timer):
        command = [timer, "-v", *command]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} worker failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = _peak_rss_mib(done.stderr)
    return result


def summarise(keras_runs: list[dict], airbench_runs: list[dict], flops_per_epoch: float,
              peak_gflops: float | None = None) -> dict:
    """Medians over every epoch but each run's first, the ratio and the projections; the
    fraction of the float32 matmul peak against `peak_gflops` (None: the peak the keras runs
    measured)."""
    steady = lambda runs: [s for r in runs for s in r["epoch_seconds"][1:]]  # noqa: E731
    first = lambda runs: statistics.median(r["epoch_seconds"][0] for r in runs)  # noqa: E731
    k, a = statistics.median(steady(keras_runs)), statistics.median(steady(airbench_runs))
    extra = (statistics.median(r["whitening_seconds"] for r in keras_runs)
             + statistics.median(r["tta_seconds"] for r in keras_runs))
    full = first(keras_runs) + (FULL_EPOCHS - 1) * k + extra
    peak = peak_gflops or statistics.median(r["matmul_gflops"] for r in keras_runs)
    torch_peak = statistics.median(r["matmul_gflops"] for r in airbench_runs)
    return {
        "keras_epoch_seconds": k, "airbench_epoch_seconds": a,
        "keras_first_epoch_seconds": first(keras_runs),
        "airbench_first_epoch_seconds": first(airbench_runs),
        "speedup": a / k, "target_speedup": TARGET_RATIO,
        "keras_full_run_minutes": full / 60,
        "airbench_full_run_minutes": (first(airbench_runs) + (FULL_EPOCHS - 1) * a) / 60,
        "target_minutes": TARGET_MINUTES,
        "keras_gflops": flops_per_epoch / k / 1e9, "airbench_gflops": flops_per_epoch / a / 1e9,
        "tf_matmul_gflops": peak, "torch_matmul_gflops": torch_peak,
        "keras_fraction_of_peak": flops_per_epoch / k / 1e9 / peak,
        "airbench_fraction_of_peak": flops_per_epoch / a / 1e9 / torch_peak,
        "keras_peak_rss_mib": max((r["peak_rss_mib"] or 0) for r in keras_runs) or None,
        "pipeline_images_per_s": statistics.median(r.get("pipeline_images_per_s", 0.0)
                                                   for r in keras_runs) or None,
        "training_images_per_s": keras_runs[0].get("train_images", 50_000) / k,
        "airbench_images_per_s": keras_runs[0].get("train_images", 50_000) / a,
        "airbench_peak_rss_mib": max((r["peak_rss_mib"] or 0) for r in airbench_runs) or None,
    }


def run(args) -> int:
    """Runs the benchmark the script's options (`args`) ask for; writes JSON and a table."""
    from keras_cifar._env import cpu_model
    from keras_cifar.zoo import load_zoo

    spec = load_zoo().network("airbench93")
    threads = args.threads or os.cpu_count() or 1
    extra = [b for b in getattr(args, "backends", None) or [] if b != "tensorflow"]
    backends = ["tensorflow", *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    keras_runs, airbench_runs = {b: [] for b in backends}, []
    with tempfile.TemporaryDirectory() as cache:
        for round_ in range(args.rounds):
            for backend in backends:
                keras_runs[backend].append(_measure(sys.executable, "keras", {
                    "network": "airbench93", "data": args.data_dir, "epochs": args.epochs,
                    "mixed_precision": args.mixed_precision, "backend": backend},
                    {**env, "KERAS_BACKEND": backend}))
                print(f"round {round_ + 1}: keras-cifar on {backend}, epochs "
                      f"{[round(s, 1) for s in keras_runs[backend][-1]['epoch_seconds']]} s",
                      flush=True)
            airbench_runs.append(_measure(args.airbench_python, "airbench", {
                "data": args.data_dir, "epochs": args.epochs, "threads": threads,
                "cache": cache}, {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}))
            print(f"round {round_ + 1}: airbench epochs "
                  f"{[round(s, 1) for s in airbench_runs[-1]['epoch_seconds']]} s", flush=True)
    images = keras_runs["tensorflow"][0]["train_images"]
    flops = images * training_flops_per_image(spec)
    summaries = backend_summaries(keras_runs, airbench_runs, flops)
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads,
              "keras_precision": keras_runs["tensorflow"][0]["speed"]["mixed_precision"]
              or "float32",
              "epochs": args.epochs, "rounds": args.rounds, "data": args.data_dir,
              "backends": backends,
              # TensorFlow's, the default path, where earlier files had it
              "summary": summaries["tensorflow"], "keras": keras_runs["tensorflow"],
              "airbench": airbench_runs,
              "other_backends": {b: {"summary": summaries[b], "keras": keras_runs[b]}
                                 for b in backends[1:]},
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(summary_table(result["cpu"], result["cores"], result["keras_precision"], summaries))
    return 0


def _mib(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,.0f}"


def backend_summaries(keras_runs: dict[str, list[dict]], airbench_runs: list[dict],
                      flops_per_epoch: float) -> dict[str, dict]:
    """`summarise` for each backend's runs (backend name: runs, TensorFlow's among them), each
    against the matmul peak TensorFlow's runs measured: measured inside a JAX or PyTorch
    process, beside that backend's own thread pool, the same TensorFlow matmul ran up to 2.3x
    slower (99 GFLOP/s against 230 in the PyTorch backend's process)."""
    peak = statistics.median(r["matmul_gflops"] for r in keras_runs["tensorflow"])
    return {b: summarise(runs, airbench_runs, flops_per_epoch, peak)
            for b, runs in keras_runs.items()}


def summary_table(cpu: str, cores: int, precision: str, summaries: dict[str, dict]) -> str:
    """The printed comparison: a keras-cifar column per backend in `summaries` (backend name:
    `summarise`'s dict; the same airbench runs behind each), then airbench's own code."""
    names = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch backend"}
    a = next(iter(summaries.values()))  # airbench's numbers, the same in each

    def row(label, cell, airbench):
        return f"| {label} | " + " | ".join(cell(s) for s in summaries.values()) + f" | {airbench} |"

    lines = [
        f"\nairbench93 on {cpu} ({cores} cores), medians over epochs 2+:",
        "| | " + " | ".join(f"keras-cifar on {names.get(b, b)} ({precision})" for b in summaries)
        + " | airbench (PyTorch, float32) |",
        "| --- |" + " ---: |" * (len(summaries) + 1),
        row("seconds per epoch", lambda s: f"{s['keras_epoch_seconds']:.1f}",
            f"{a['airbench_epoch_seconds']:.1f}"),
        row("training images/s (x airbench's)",
            lambda s: f"{s['training_images_per_s']:,.0f} ({s['speedup']:.2f}x)",
            f"{a['airbench_images_per_s']:,.0f}"),
        row("full run, minutes (11 epochs, TTA)", lambda s: f"{s['keras_full_run_minutes']:.1f}",
            f"{a['airbench_full_run_minutes']:.1f}"),
        row("GFLOP/s (fraction of the float32 matmul peak)",
            lambda s: f"{s['keras_gflops']:.0f} ({s['keras_fraction_of_peak']:.0%})",
            f"{a['airbench_gflops']:.0f} ({a['airbench_fraction_of_peak']:.0%})"),
        row("peak RSS, MiB", lambda s: _mib(s["keras_peak_rss_mib"]), _mib(a["airbench_peak_rss_mib"])),
    ]
    tf = summaries.get("tensorflow", a)
    if tf["pipeline_images_per_s"]:
        lines.append(f"\nThe augmented tf.data pipeline alone: {tf['pipeline_images_per_s']:,.0f} "
                     f"images/s, against {tf['training_images_per_s']:,.0f} trained per second.")
    for backend, s in summaries.items():
        lines.append(f"keras-cifar on {names.get(backend, backend)} is {s['speedup']:.2f}x "
                     f"airbench's speed (target {TARGET_RATIO}x); a full run "
                     f"{s['keras_full_run_minutes']:.1f} min (target <= {TARGET_MINUTES}).")
    return "\n".join(lines)


if __name__ == "__main__":
    kind, settings = sys.argv[1], json.loads(sys.argv[2])
    worker = {"keras": keras_worker, "airbench": airbench_worker}[kind]
    print(json.dumps(worker(settings)))
