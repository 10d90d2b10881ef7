"""Settings TensorFlow reads once, from the environment, when it is imported.

oneDNN: TensorFlow's x86 builds switch their oneDNN CPU kernels on by default only on CPUs with
AVX-512 VNNI/BF16 or AMX. Elsewhere (an AVX2-only AMD EPYC, for one) convolutions and matmuls
fall back to Eigen, measured there at 2.2x slower for LeNet-5 and 1.25x for CNN 3 per training
step, one thread each. keras-cifar asks for oneDNN everywhere unless `TF_ENABLE_ONEDNN_OPTS` is
already set. Training stays deterministic with it (a test trains twice and compares weights);
its results differ from Eigen's in the last bits, as any change of kernels does.
"""

from __future__ import annotations

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
