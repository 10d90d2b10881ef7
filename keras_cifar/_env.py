"""TensorFlow's start-up, owned in one place: the settings it reads once at import, and a quiet
console.

oneDNN: TensorFlow's x86 builds switch their oneDNN CPU kernels on by default only on CPUs with
AVX-512 VNNI/BF16 or AMX. Elsewhere (an AVX2-only AMD EPYC, for one) convolutions and matmuls
fall back to Eigen, measured there at 2.2x slower for LeNet-5 and 1.25x for CNN 3 per training
step, one thread each. keras-cifar asks for oneDNN everywhere unless `TF_ENABLE_ONEDNN_OPTS` is
already set. Training stays deterministic with it (a test trains twice and compares weights);
its results differ from Eigen's in the last bits, as any change of kernels does.

A quiet console: before its first log line TensorFlow's C++ side prints, straight to the
process's stderr, lines a new user reads as failures: "All log messages before
absl::InitializeLog()", CUDA probing on machines without a GPU (`cudart_stub`, `failed call to
cuInit`), oneDNN notices and graph-version warnings (`NodeDef mentions attribute ...`).
`quiet_tensorflow` raises the C++ log threshold and imports TensorFlow with the stderr file
descriptor pointed at /dev/null, which is the only way to hide what absl prints before it is
initialised. Errors still reach the user as Python exceptions. `verbose=True` (the CLI's
`--verbose`) or `KERAS_CIFAR_VERBOSE=1` keeps everything.
"""

from __future__ import annotations

import contextlib
import os
import sys

ONEDNN_ENV_VAR = "TF_ENABLE_ONEDNN_OPTS"

def prefer_onednn() -> None:
    """Asks TensorFlow for its oneDNN CPU kernels unless `TF_ENABLE_ONEDNN_OPTS` already says
    otherwise. Only before TensorFlow is imported; afterwards it changes nothing."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(ONEDNN_ENV_VAR, "1")

def onednn_setting() -> str:
    """What the environment asked TensorFlow for: `on`, `off`, or `tensorflow default` (on only
    for CPUs with AVX-512 VNNI/BF16 or AMX), as recorded in a run's config.json."""
    value = os.environ.get(ONEDNN_ENV_VAR, "").strip().lower()
    if value in ("1", "true"):
        return "on"
    if value in ("0", "false"):
        return "off"
    return "tensorflow default"

VERBOSE_ENV_VAR = "KERAS_CIFAR_VERBOSE"
_verbose_asked = False  # set by quiet_tensorflow(verbose=True), e.g. from `--verbose`

def verbose_requested() -> bool:
    """Whether `--verbose` (in this process) or `KERAS_CIFAR_VERBOSE` asks for TensorFlow's own
    logging; worker processes are told by their parent."""
    return _verbose_asked or os.environ.get(VERBOSE_ENV_VAR, "").lower() in ("1", "true", "yes", "on")

@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)

def quiet_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow without its start-up chatter (once; later calls do nothing), with
    oneDNN's kernels asked for (`startup.prefer_onednn`).

    Call it before anything imports TensorFlow. With `verbose` (or `KERAS_CIFAR_VERBOSE=1`)
    it only imports. An explicit `TF_CPP_MIN_LOG_LEVEL` is kept.
    """
    global _verbose_asked
    _verbose_asked = _verbose_asked or verbose
    if "tensorflow" in sys.modules:
        return
    prefer_onednn()  # read once, at import: see above
    if verbose_requested():
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    with _stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA probing (cuInit) happens here, silenced too


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's answer elsewhere), for the records
    of runs and benchmarks: sessions land on different CPUs, up to 5x apart per epoch."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
