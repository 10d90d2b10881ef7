"""Speed of keras-cifar's training path against a plain PyTorch loop, network by network.

    (run it with scripts/bench.py)

For each zoo network, alternating the measurements so machine drift hits them alike, `--repeats`
times:
- plain Keras `fit` on numpy arrays with default compile settings (the "before": what the
  speed issue measured);
- keras-cifar: `train_run` itself (the code `keras-cifar train` runs: same pipeline, callbacks,
  batch 64) for `--epochs` epochs; the first epoch (tracing) is dropped. Reported: median step
  time, epoch wall time (training part), training images/s, evaluation images/s, the stall
  ratio (epoch training time / (steps x median step time)) and the tail (last batch to the
  epoch's end, where the speed issue saw `fit` sit for seconds).
- PyTorch: `scripts/torch_reference.py`'s loop on the same uint8 arrays (skipped, with a note,
  when torch is not installed): training and evaluation images/s.
With --backends jax,torch, also keras-cifar's `train_run` on those Keras backends, each in
its own process (`KERAS_BACKEND`), against the same PyTorch loop. With --mixed-precision, also
keras-cifar with `--mixed-precision` (bfloat16 compute on a CPU;
different arithmetic, so listed apart). With --workers N, also N keras-cifar trainings side by
side, each with its share of the cores (what `reproduce run --workers N` runs), and the
reproduction's projection under it. Then the ratio, the fraction of this machine's float32
matmul peak (TF and torch, same run), and a projection of the whole report's reproduction (15
experiments) from the measured epochs, beside its floor: the reproduction's FLOPs at 100% of
the measured matmul peak.
keras-cifar's measurements (and the matmul peak) ask for oneDNN as its CLI does
(`keras_cifar._env`); plain Keras keeps TensorFlow's default. Medians over repeats. Prints a
table and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_cifar.bench.costs import projected_seconds, reproduction_flops, training_flops_per_image  # noqa: E402

# What the speed issue measured here (2 cores, Keras 3.15 + TF 2.21 CPU, torch 2.13 CPU): plain
# PyTorch images/s, to flag a PyTorch figure more than 20% off.
ISSUE_TORCH_IMAGES_PER_S = {"mlp2": 31_000, "mlp-baseline": 17_500, "lenet5": 8_200, "cnn3": 1_430}
ISSUE_KERAS_IMAGES_PER_S = {"mlp2": 19_800, "mlp-baseline": 12_100, "lenet5": 9_200, "cnn3": 1_500}
# The speed issue's target for the whole reproduction, set where the matmul peak was 360 GFLOP/s.
TARGET_MINUTES = 40


def matmul_peak_gflops(framework: str, n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matmul throughput (GFLOP/s), best of `repeats`."""
    if framework == "tf":
        import tensorflow as tf

        a = tf.random.normal((n, n))
        b = tf.random.normal((n, n))
        matmul = tf.function(lambda x, y: tf.matmul(x, y))
        matmul(a, b).numpy()
        best = min(_timed(lambda: matmul(a, b).numpy()) for _ in range(repeats))
    else:
        import torch

        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)
        best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def keras_measure(spec, data, epochs: int, mixed_precision: bool = False) -> dict:
    """Runs `train_run` and times its steps, epochs and evaluations."""
    import keras
    import numpy as np

    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.train import train_run

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.evals, self.steps, self.tails, self.spe = [], [], [], [], 1

        def on_train_begin(self, logs=None):
            self.spe = int(self.model.steps_per_execution)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = self.last = time.perf_counter()
            self.step_times = []

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.step_times.append((now - self.last) / self.spe)
            self.last = now

        def on_test_begin(self, logs=None):
            self.train_end = time.perf_counter()
            # the stall the speed issue saw: time between an epoch's last batch and its end
            self.tails.append(self.train_end - self.last)

        def on_test_end(self, logs=None):
            self.evals.append(time.perf_counter() - self.train_end)

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(self.train_end - self.epoch_start)
            # the first execution of an epoch waits on the iterator; keep the steady ones
            self.steps.append(float(np.median(self.step_times[1:] or self.step_times)))

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        train_run(RunConfig.of(spec, epochs=epochs, mixed_precision=mixed_precision), data, out_dir=out, verbose=0, callbacks=[timer])
    n, steps = len(data.train_labels), -(-len(data.train_labels) // 64)
    train_s = statistics.median(timer.epochs[1:])
    step_s = statistics.median(timer.steps[1:])
    return {"epoch_train_s": train_s, "step_ms": step_s * 1e3, "images_per_s": n / train_s,
            "eval_images_per_s": len(data.test_labels) / statistics.median(timer.evals[1:]),
            "stall_ratio": train_s / (steps * step_s),
            "tail_ms": statistics.median(timer.tails[1:]) * 1e3,
            "epoch_wall_s": train_s + statistics.median(timer.evals[1:])}


def plain_keras_measure(spec, data, epochs: int) -> dict:
    """What the speed issue called plain Keras `fit`: numpy arrays, default compile settings."""
    import keras

    from keras_cifar.models.builder import build_model
    from keras_cifar.training.callbacks import EpochClock

    model = build_model(spec, seed=0)
    model.compile(keras.optimizers.SGD(spec.train.lr, momentum=spec.train.momentum),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    clock = EpochClock()
    model.fit(data.train_images, data.train_labels, batch_size=64, epochs=epochs, verbose=0,
              callbacks=[clock])
    return {"images_per_s": len(data.train_labels) / statistics.median(clock.seconds[1:])}


def torch_measure(spec, data, epochs: int) -> dict:
    from keras_cifar.reference.torch_trainer import TorchTrainer

    trainer = TorchTrainer(spec, data.train_images, data.train_labels, data.test_images,
                           data.test_labels, lr=spec.train.lr, momentum=spec.train.momentum)
    times = [trainer.train_epoch() for _ in range(epochs)][1:]
    evals = [trainer.evaluate()[2] for _ in range(2)]
    return {"images_per_s": len(data.train_labels) / statistics.median(times),
            "eval_images_per_s": len(data.test_labels) / min(evals)}


# `mixed`: keras-cifar with --mixed-precision (bfloat16 compute on a CPU), a different
# arithmetic, so shown beside the float32 figures, never instead of them.
MEASURES = {"keras": keras_measure, "torch": torch_measure, "plain": plain_keras_measure,
            "mixed": functools.partial(keras_measure, mixed_precision=True)}


def load_bench_data(path: str | None, train_images: int):
    """The benchmark's data: `train_images` class-stratified training images, the full test set."""
    from keras_cifar.data import limit_data, load_data, synthetic_data

    data = load_data("local", data_dir=path) if path else synthetic_data(50_000, 10_000)
    if train_images < len(data.train_labels):
        subset = limit_data(data, train_images)
        data = dataclasses.replace(data, train_images=subset.train_images,
                                   train_labels=subset.train_labels,
                                   fingerprint=subset.fingerprint)
    return data


def _worker_command(kind: str, network_id: str, args) -> list[str]:
    settings = {"worker": [kind, network_id], "epochs": args.epochs,
                "train_images": args.train_images, "data": args.data, "workers": args.workers}
    return [sys.executable, "-m", "keras_cifar.bench.speed", json.dumps(settings)]


def _backend_env(backend: str | None) -> dict | None:
    return None if backend is None else {**os.environ, "KERAS_BACKEND": backend}


def _result(kind: str, network_id: str, returncode: int, stdout: str, stderr: str) -> dict:
    if returncode != 0:
        raise RuntimeError(f"{kind} {network_id} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def measure_in_subprocess(kind: str, network_id: str, args, backend: str | None = None) -> dict:
    """Runs one measurement in a fresh Python (on Keras backend `backend`; None: the
    default), so TensorFlow's and PyTorch's thread pools never share a process (their
    spinning threads slow each other down)."""
    done = subprocess.run(_worker_command(kind, network_id, args), capture_output=True, text=True,
                          timeout=3600, env=_backend_env(backend))
    return _result(kind, network_id, done.returncode, done.stdout, done.stderr)


def measure_side_by_side(network_id: str, args) -> list[dict]:
    """Runs `args.workers` keras-cifar measurements at once, each process with its share of
    the cores (as `reproduce run --workers N` does); returns each one's result."""
    command = _worker_command("shared", network_id, args)
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(args.workers)]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=3600)
        results.append(_result("shared", network_id, process.returncode, stdout, stderr))
    return results


def worker(kind: str, network_id: str, args) -> int:
    from keras_cifar._env import prefer_onednn
    from keras_cifar.zoo import load_zoo

    if kind != "plain":  # keras-cifar's kernels, as its CLI asks for them; plain Keras: TF's default
        prefer_onednn()
    if kind == "shared":
        from keras_cifar.reproduce.executors import limit_threads, threads_per_worker

        limit_threads(threads_per_worker(args.workers))
        kind = "keras"
    if kind == "peak":
        peaks = {"tf": matmul_peak_gflops("tf")}
        try:
            peaks["torch"] = matmul_peak_gflops("torch")
        except ImportError:
            pass
        print(json.dumps(peaks))
        return 0
    data = load_bench_data(args.data, args.train_images)
    result = MEASURES[kind](load_zoo().network(network_id), data, args.epochs)
    if kind != "torch":
        import keras

        result["backend"] = keras.backend.backend()
    print(json.dumps(result))
    return 0


def run(args) -> int:
    """Runs what the script's options (`args`) ask for."""
    if args.worker:
        return worker(*args.worker, args)

    from keras_cifar._env import cpu_model
    from keras_cifar.reproduce.executors import threads_per_worker
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    data = load_bench_data(args.data, args.train_images)  # also warms the decode cache
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        print("note: torch is not installed (pip install -e '.[bench]'); PyTorch columns skipped")

    networks = args.networks.split(",") if args.networks else list(zoo.networks)
    backends = [b for b in (getattr(args, "backends", None) or "").split(",")
                if b and b != "tensorflow"]
    peaks = measure_in_subprocess("peak", "-", args)
    results = {}
    for network_id in networks:
        spec = zoo.network(network_id)
        keras_runs, torch_runs, plain_runs, mixed_runs, shared_runs = [], [], [], [], []
        backend_runs = {b: [] for b in backends}
        for _ in range(args.repeats):
            keras_runs.append(measure_in_subprocess("keras", network_id, args))
            for b in backends:
                backend_runs[b].append(measure_in_subprocess("keras", network_id, args, b))
            if args.mixed_precision:
                mixed_runs.append(measure_in_subprocess("mixed", network_id, args))
            if args.workers > 1:
                shared_runs += measure_side_by_side(network_id, args)
            if have_torch:
                torch_runs.append(measure_in_subprocess("torch", network_id, args))
            plain_runs.append(measure_in_subprocess("plain", network_id, args))
        row = {f"keras_{k}": statistics.median(r[k] for r in keras_runs) for k in keras_runs[0]
               if k != "backend"}
        row["plain_keras_images_per_s"] = statistics.median(r["images_per_s"] for r in plain_runs)
        if shared_runs:
            # per process; N of them run at once
            row["shared_images_per_s"] = statistics.median(r["images_per_s"] for r in shared_runs)
            row["shared_eval_images_per_s"] = statistics.median(
                r["eval_images_per_s"] for r in shared_runs)
        if mixed_runs:
            row["mixed_images_per_s"] = statistics.median(r["images_per_s"] for r in mixed_runs)
        for b, runs in backend_runs.items():
            row.update({f"keras_{b}_{k}": statistics.median(r[k] for r in runs)
                        for k in ("images_per_s", "eval_images_per_s", "epoch_train_s")})
        if torch_runs:
            row.update({f"torch_{k}": statistics.median(r[k] for r in torch_runs)
                        for k in torch_runs[0]})
            row["ratio"] = row["keras_images_per_s"] / row["torch_images_per_s"]
            row["plain_ratio"] = row["plain_keras_images_per_s"] / row["torch_images_per_s"]
            for b in backends:
                row[f"{b}_ratio"] = row[f"keras_{b}_images_per_s"] / row["torch_images_per_s"]
            issue = ISSUE_TORCH_IMAGES_PER_S.get(network_id)
            row["torch_off_issue"] = (None if issue is None
                                      else row["torch_images_per_s"] / issue - 1)
        flops = training_flops_per_image(spec)
        row["mflop_per_image"] = flops / 1e6
        row["keras_fraction_of_peak"] = row["keras_images_per_s"] * flops / (peaks["tf"] * 1e9)
        results[network_id] = row
        print(f"{network_id}: keras {row['keras_images_per_s']:,.0f} img/s"
              + (f", torch {row['torch_images_per_s']:,.0f} img/s, ratio {row['ratio']:.2f}"
                 if torch_runs else "")
              + (f", mixed precision {row['mixed_images_per_s']:,.0f} img/s" if mixed_runs else ""),
              flush=True)

    projected = projected_seconds(zoo, results, "keras_images_per_s", "keras_eval_images_per_s")
    projected_shared = (projected_seconds(zoo, results, "shared_images_per_s",
                                          "shared_eval_images_per_s", args.workers)
                        if args.workers > 1 else None)
    complete = all(e.network in results for e in zoo.report_experiments)
    total_flops = reproduction_flops(zoo)
    floor = total_flops / (peaks["tf"] * 1e9)

    header = (f"{'network':<13}{'plain keras':>12}{'ratio':>7}{'keras-cifar':>12}{'torch':>9}"
              f"{'ratio':>7}{'step ms':>9}{'stall':>7}{'tail ms':>8}{'eval img/s':>11}{'% peak':>8}"
              f"{'issue torch':>12}{'issue keras':>12}")
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; "
          f"matmul peak TF {peaks['tf']:.0f} GFLOP/s"
          + (f", torch {peaks['torch']:.0f} GFLOP/s" if "torch" in peaks else "")
          + f"; {len(data.train_labels):,} training images per epoch, batch 64, "
          f"median of {args.repeats}")
    print("images/s of training (validation excluded); ratio = against torch; stall = epoch time "
          "/ (steps x median step); tail = last batch to epoch end")
    print(header)
    for network_id, row in results.items():
        torch_ips = row.get("torch_images_per_s")
        flag = ""
        if row.get("torch_off_issue") is not None and abs(row["torch_off_issue"]) > 0.2:
            flag = f" ({row['torch_off_issue']:+.0%}!)"
        issue_t = ISSUE_TORCH_IMAGES_PER_S.get(network_id)
        issue_k = ISSUE_KERAS_IMAGES_PER_S.get(network_id)
        print(f"{network_id:<13}{row['plain_keras_images_per_s']:>12,.0f}"
              f"{'-' if torch_ips is None else format(row['plain_ratio'], '.2f'):>7}"
              f"{row['keras_images_per_s']:>12,.0f}"
              f"{'-' if torch_ips is None else f'{torch_ips:,.0f}':>9}"
              f"{'-' if torch_ips is None else format(row['ratio'], '.2f'):>7}"
              f"{row['keras_step_ms']:>9.2f}{row['keras_stall_ratio']:>7.2f}{row['keras_tail_ms']:>8.1f}"
              f"{row['keras_eval_images_per_s']:>11,.0f}{row['keras_fraction_of_peak']:>8.1%}"
              f"{'-' if issue_t is None else f'{issue_t:,}':>12}"
              f"{'-' if issue_k is None else f'{issue_k:,}':>12}{flag}")
    if backends:
        names = ["tensorflow", *backends]
        print("\nkeras-cifar on each Keras backend, training images/s (x = against the PyTorch "
              "loop):")
        for network_id, row in results.items():
            ips = {"tensorflow": row["keras_images_per_s"],
                   **{b: row[f"keras_{b}_images_per_s"] for b in backends}}
            torch_ips = row.get("torch_images_per_s")
            cells = "".join(f"{b:>12} {ips[b]:>8,.0f}"
                            + (f" ({ips[b] / torch_ips:.2f}x)" if torch_ips else "")
                            for b in names)
            print(f"  {network_id:<13}{cells}; fastest: {max(ips, key=ips.get)}")
    mixed = {n: r for n, r in results.items() if "mixed_images_per_s" in r}
    if mixed:
        print("\nwith --mixed-precision (16-bit compute; not the float32 arithmetic above):")
        for network_id, row in mixed.items():
            vs_torch = (f", {row['mixed_images_per_s'] / row['torch_images_per_s']:.2f}x torch"
                        if "torch_images_per_s" in row else "")
            print(f"  {network_id:<13}{row['mixed_images_per_s']:>9,.0f} img/s, "
                  f"{row['mixed_images_per_s'] / row['keras_images_per_s']:.2f}x float32{vs_torch}")
    if projected_shared is not None:
        print(f"\n{args.workers} trainings side by side, {threads_per_worker(args.workers)} "
              "thread(s) each (reproduce run --workers), images/s per process and all together:")
        for network_id, row in results.items():
            print(f"  {network_id:<13}{row['shared_images_per_s']:>9,.0f} img/s each, "
                  f"{args.workers * row['shared_images_per_s']:>9,.0f} together, "
                  f"{args.workers * row['shared_images_per_s'] / row['keras_images_per_s']:.2f}x "
                  "one training")
    print(f"\nprojected full reproduction (15 experiments): {projected / 60:.0f} min"
          + ("" if projected_shared is None else
             f"; with --workers {args.workers}: {projected_shared / 60:.0f} min")
          + ("" if complete else " (only for the networks measured)"))
    fastest = projected if projected_shared is None else min(projected, projected_shared)
    print(f"its floor: {total_flops / 1e15:.1f} PFLOP of training and evaluation at "
          f"100% of the TF matmul peak is {floor / 60:.0f} min; {TARGET_MINUTES} min would need "
          f"{floor / (TARGET_MINUTES * 60):.0%} of the peak throughout"
          + (f"; the projection runs at {floor / fastest:.0%}" if complete else ""))
    args.json.write_text(json.dumps({
        "machine": {"processor": platform.processor(), "cpu": cpu_model(),
                    "cores": os.cpu_count(), "matmul_peak_gflops": peaks},
        "settings": vars(args) | {"json": str(args.json)},
        "networks": results, "projected_reproduction_minutes": projected / 60,
        "projected_reproduction_minutes_workers": (None if projected_shared is None
                                                   else projected_shared / 60),
        "reproduction_pflop": total_flops / 1e15,
        "reproduction_floor_minutes": floor / 60,
    }, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    # A worker process (see `_worker_command`): its settings come as one JSON argument.
    sys.exit(run(argparse.Namespace(**json.loads(sys.argv[1]))))
