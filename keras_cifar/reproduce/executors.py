"""Run many training jobs: in this process, in N local processes, or as tasks on a Ray cluster.

A `Job` is a picklable description of one run (network, SGD settings, run directory, data
source); `run_job` trains it with `resume=True`, so a job that is retried after its worker died
continues from its run directory. Scheduling and retries are the engines' own:
`concurrent.futures.ProcessPoolExecutor` (spawn, since TensorFlow is not fork-safe) or Ray
(`max_retries`). Every worker must see the output directory (shared storage across machines);
`run_job` checks that and fails with a message that says so.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import secrets
import signal
import sys
import socket
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable

from keras_cifar import errors
from keras_cifar import _fs
from keras_cifar.training.config import RunConfig
from keras_cifar._env import verbose_requested
from keras_cifar.errors import RunsStopped

EXECUTORS = ("local", "ray")
SHARED_MARKER = ".keras-cifar-shared"
RAY_MAX_RETRIES = 3


@dataclass(frozen=True)
class Job:
    """One training run, described so that another process or machine can carry it out.

    Attributes:
        config: the run (network included, so workers need no zoo file).
        run_dir: its run directory.
        out_dir: the shared output directory it lies in (holds the marker).
        marker: the token of the shared output directory, or None to skip the check.
        retry_diverged: train a run that diverged before again; by default its divergence is
            its result.
    """

    config: RunConfig
    run_dir: str
    out_dir: str
    marker: str | None = None
    retry_diverged: bool = False

    @property
    def name(self) -> str:
        return Path(self.run_dir).name


def prepare_shared_dir(out_dir) -> str:
    """Creates `out_dir` and writes a token into it that every worker must be able to read."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / SHARED_MARKER
    if not marker.exists():
        _fs.atomic_write_text(marker, secrets.token_hex(8))
    return marker.read_text().strip()


def check_shared_dir(job: Job) -> None:
    """Raises RunError unless this worker sees the driver's output directory."""
    if job.marker is None:
        return
    marker = Path(job.out_dir) / SHARED_MARKER
    try:
        seen = marker.read_text().strip()
    except OSError:
        seen = None
    if seen != job.marker:
        raise errors.RunError(
            f"Worker {socket.gethostname()} (pid {os.getpid()}) cannot see the output directory "
            f"{marker.parent}: `out_dir` must be storage that every node of the cluster sees (NFS, a "
            "shared volume), at the same path. Received: "
            + ("no such directory" if seen is None else "another output directory")
        )


def run_job(job: Job) -> dict:
    """Trains one job (resuming it if its directory holds an unfinished run), draws its figures.

    A run whose loss diverges is a result, not a failure of the batch: its summary says
    `diverged` with the epoch, and a later call returns that again without training, unless
    `job.retry_diverged`.

    Returns:
        A summary: `run_dir`, `status` (`finished` or `diverged`), `host`; for a finished run
        test accuracy, best test accuracy and seconds; for a diverged one `epoch`.
    """
    from keras_cifar.plots.figures import draw_run
    from keras_cifar.training import rundir
    from keras_cifar.training.train import train_run

    check_shared_dir(job)
    run_dir = Path(job.run_dir)
    diverged = rundir.diverged_epoch(run_dir)
    if diverged is None or job.retry_diverged:
        try:
            # require_model=False: published runs (no models) count as finished
            result = train_run(job.config, out_dir=run_dir.parent, name=run_dir.name,
                               resume=True, force=diverged is not None, verbose=2,
                               require_model=False)
        except errors.TrainingError as e:
            diverged = e.epoch
        except errors.RunMismatch as e:  # a sweep's or reproduction's names are not the user's
            raise errors.RunMismatch(
                f"{run_dir} holds a run of other settings ({', '.join(e.differing)} differ) "
                "from an earlier sweep or reproduction into the same folder. Use another "
                "`out_dir` for these settings.", e.differing) from None
        else:
            draw_run(result.run_dir, missing_only=result.already_finished, model=result.model)
            return {"run_dir": str(result.run_dir), "status": "finished",
                    "test_accuracy": result.metrics["test_accuracy"],
                    "best_test_accuracy": result.metrics["best_test_accuracy"],
                    "seconds": result.metrics["seconds"], "host": socket.gethostname()}
    return {"run_dir": str(run_dir), "status": "diverged", "epoch": diverged,
            "host": socket.gethostname()}


def outcome(summaries: Iterable[dict]) -> str:
    """`3 finished, 1 diverged (mlp2-lr10-m0: epoch 1)`: what a batch of runs came to."""
    summaries = list(summaries)
    finished = sum(s["status"] == "finished" for s in summaries)
    diverged = [s for s in summaries if s["status"] == "diverged"]
    text = f"{finished} finished"
    if diverged:
        text += f", {len(diverged)} diverged (" + ", ".join(
            f"{Path(s['run_dir']).name}: epoch {s['epoch']}" for s in diverged) + ")"
    return text


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """TensorFlow threads for each of `workers` concurrent local processes: the cores shared out.

    Measured on 2 cores (scripts/bench.py --workers 2): one-thread trainings side by side barely
    slow each other, so two together got 1.09x (cnn2) to 1.41x (LeNet-5) the images/s of one
    two-thread training.
    """
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def limit_threads(threads: int, verbose: bool = False) -> None:
    """Caps TensorFlow's intra- and inter-op thread pools (before TensorFlow starts its runtime),
    PyTorch's too when the process trains on Keras' PyTorch backend, and lets processes share a
    GPU (memory on demand instead of all of it up front).

    The initializer of each local worker process, which imports TensorFlow quietly first (as
    the CLI does; `verbose`, the parent's `--verbose`, keeps its logging). TensorFlow still
    feeds every backend (tf.data). PyTorch's OpenMP threads busy-wait, so two workers with a
    thread per core each would slow each other many times over; JAX's XLA runtime sizes its
    own pool and has no public switch for it, so on JAX the workers share the cores as the
    operating system schedules them.
    """
    from keras_cifar._env import quiet_tensorflow
    from keras_cifar.backends import requested_backend

    quiet_tensorflow(verbose)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    if requested_backend() == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)


def _ray_remote(address: str | None):
    try:
        import ray
    except ImportError:
        raise errors.MissingDependency(["ray"], "ray", '`executor="ray"`') from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return ray, ray.remote(num_gpus=gpus, max_retries=RAY_MAX_RETRIES)(run_job)


def run_jobs(jobs: Iterable[Job], *, executor: str = "local", workers: int = 1,
             address: str | None = None,
             on_start: Callable[[Job, int, int], None] | None = None) -> list[dict]:
    """Runs jobs and returns their summaries, in the jobs' order.

    Args:
        jobs: what to run.
        executor: `local` (this machine: in this process, or `workers` processes) or `ray`
            (one Ray task per job, on the cluster at `address` or a local one).
        workers: local processes; 1 runs the jobs one after the other in this process. Each
            process gets `threads_per_worker(workers)` TensorFlow threads (and PyTorch
            threads on the PyTorch backend: `limit_threads`).
        address: a Ray cluster address (`ray://host:10001`, `auto`); None starts a local one.
        on_start: called with (job, index, total) as each job is handed out.

    Raises:
        RunError: an unknown executor, Ray missing, or a worker that cannot see the output.
    """
    jobs = list(jobs)
    if executor not in EXECUTORS:
        raise errors.RunError(f"Unknown executor; expected one of {list(EXECUTORS)}. "
                            f"Received: executor={executor!r}")
    if executor == "local" and workers <= 1:
        results = []
        for index, job in enumerate(jobs):
            if on_start:
                on_start(job, index, len(jobs))
            results.append(run_job(job))
        return results
    for index, job in enumerate(jobs):
        if on_start:
            on_start(job, index, len(jobs))
    if executor == "local":
        return _run_pool(jobs, workers)
    ray, remote = _ray_remote(address)
    return ray.get([remote.remote(job) for job in jobs])


class _StopRequested(BaseException):
    def __init__(self, signum: int):
        self.signum = signum


STOP_GRACE_SECONDS = 10.0  # how long stopped workers get to exit before they are killed


def _stop_workers(pool: ProcessPoolExecutor, signum: int) -> None:
    """Cancels queued jobs, signals the pool's worker processes, and waits a bounded time."""
    pool.shutdown(wait=False, cancel_futures=True)
    workers = multiprocessing.active_children()
    for process in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


def _run_pool(jobs: list[Job], workers: int) -> list[dict]:
    """Runs jobs in `workers` spawned processes. On SIGINT or SIGTERM (in the main thread), it
    stops handing out work, stops the workers and raises RunsStopped, so no process outlives
    this one."""
    # A fresh process per run (Python 3.11+): TensorFlow's process-wide switches (op
    # determinism, which has no public off switch) never carry from one run to the next.
    fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                               initializer=limit_threads,
                               initargs=(threads_per_worker(workers), verbose_requested()),
                               **fresh)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def request_stop(signum, frame):
            raise _StopRequested(signum)

        previous = {s: signal.signal(s, request_stop) for s in handled}
    try:
        futures = [pool.submit(run_job, job) for job in jobs]
        return [future.result() for future in futures]
    except _StopRequested as stop:
        for s in handled:  # a second signal while stopping must not interrupt the cleanup
            signal.signal(s, signal.SIG_IGN)
        _stop_workers(pool, stop.signum)
        raise RunsStopped(stop.signum) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        pool.shutdown(wait=True, cancel_futures=True)
