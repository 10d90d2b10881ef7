"""TensorBoard's HParams view of many runs: a sweep's grid or a reproduction's seeds, compared.

`write_hparams_logs` writes `OUT/tensorboard/` from the runs' saved files (config.json,
history.csv, metrics.json), so it works whichever executor trained them and is rewritten with
every report: the experiment's configuration (network, lr, momentum, seed, and the experiment
id where there is one; final and best test accuracy, final test loss) at the top, and per run a
session with its hyperparameters, its per-epoch test curves and its final metrics. View it with
`tensorboard --logdir OUT`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from keras_cifar import errors
from keras_cifar.training import rundir
from keras_cifar.reproduce.results import FinishedRun

TENSORBOARD_SUBDIR = "tensorboard"
METRICS = (("test_accuracy", "final test accuracy"),
           ("best_test_accuracy", "best test accuracy (optimistic: chosen on the test set)"),
           ("test_loss", "final test loss (mean cross-entropy)"),
           ("diverged_epoch", "epoch the loss became NaN in (diverged runs)"))


def _session(run_dir: Path, experiment: str | None) -> dict | None:
    """A finished or diverged run as an HParams session; None for any other run."""
    if not (run_dir / rundir.CONFIG).is_file():
        return None
    saved = rundir.read_run(run_dir)
    run = FinishedRun.of(saved)
    if run is None and saved.diverged_epoch is None:
        return None
    hparams = {"network": saved.network_id or "?", "lr": float(saved.lr or 0.0),
               "momentum": float(saved.momentum or 0.0), "seed": saved.seed,
               "status": "finished" if run is not None else "diverged"}
    if experiment is not None:
        hparams["experiment"] = experiment
    if run is None:
        try:
            history = rundir.read_history(run_dir)
        except errors.RunError:  # diverged in its first epoch
            history = []
        return {"name": run_dir.name, "hparams": hparams, "history": history,
                "metrics": {"diverged_epoch": float(saved.diverged_epoch)}}
    return {"name": run_dir.name, "hparams": hparams, "history": run.history,
            "metrics": {"test_accuracy": run.final_accuracy, "best_test_accuracy": run.best_accuracy,
                        "test_loss": run.final_loss}}


def write_hparams_logs(out_dir: str | os.PathLike, run_dirs: Iterable[str | os.PathLike],
                       experiments: dict[str, str] | None = None) -> Path:
    """Writes TensorBoard HParams logs for the finished and diverged runs among `run_dirs`
    (the `status` hparam tells them apart; a diverged one has its `diverged_epoch`).

    Args:
        out_dir: the sweep's or reproduction's output directory; logs go to
            `out_dir/tensorboard/` (replaced).
        run_dirs: the run directories (unfinished ones are left out).
        experiments: run directory name -> experiment id, for a reproduction.

    Returns:
        The log directory.
    """
    from keras_cifar._env import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    experiments = experiments or {}
    sessions = [s for s in (_session(Path(d), experiments.get(Path(d).name)) for d in run_dirs) if s]
    root = Path(out_dir) / TENSORBOARD_SUBDIR
    staging = root.with_name(f".{TENSORBOARD_SUBDIR}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    names = ["network", "lr", "momentum", "seed", "status"] + (["experiment"] if experiments else [])
    domains = {name: hp.HParam(name, hp.Discrete(sorted({s["hparams"][name] for s in sessions
                                                          if name in s["hparams"]})))
               for name in names} if sessions else {}
    writer = tf.summary.create_file_writer(str(staging))
    with writer.as_default():
        hp.hparams_config(hparams=list(domains.values()),
                          metrics=[hp.Metric(tag, display_name=label) for tag, label in METRICS])
    writer.close()
    for session in sessions:
        writer = tf.summary.create_file_writer(str(staging / session["name"]))
        with writer.as_default():
            hp.hparams({domains[k]: v for k, v in session["hparams"].items()},
                       trial_id=session["name"])
            for row in session["history"]:
                step = int(row["epoch"])
                tf.summary.scalar("epoch_test_accuracy", row["val_accuracy"], step=step)
                tf.summary.scalar("epoch_test_loss", row["val_loss"], step=step)
            last = int(session["history"][-1]["epoch"]) if session["history"] else 0
            for tag, value in session["metrics"].items():
                tf.summary.scalar(tag, value, step=last)
        writer.close()
    shutil.rmtree(root, ignore_errors=True)
    os.replace(staging, root)
    return root
