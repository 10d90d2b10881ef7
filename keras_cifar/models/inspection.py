"""Text views of a model: `model.summary()` and the report's "Parameters & Structure" dump."""

from __future__ import annotations

import os
import sys

import numpy as np


SUMMARY_WIDTH = 88


def summary_text(model, line_length: int = SUMMARY_WIDTH) -> str:
    """Returns `model.summary()` as plain text (no terminal colours), whole at any terminal
    width: Keras draws it with rich, which cuts lines at the terminal's width (80 columns when
    output is not a terminal), so the width is set for the call and restored after it."""
    lines: list[str] = []
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(line_length + 4)  # read by shutil and rich for this call only
    try:
        model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line),
                      line_length=line_length)
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(lines).rstrip() + "\n"


def _first_units(values: np.ndarray) -> np.ndarray:
    """The first two output units of a weight, output axis first, as the report slices them.

    Keras keeps the output axis last (conv kernels are (kh, kw, in, out)), PyTorch first; the
    report printed `param[:2]`, the first two output units.
    """
    if values.ndim <= 1:
        return values[:2]
    return np.moveaxis(values, -1, 0)[:2]


def parameter_dump(model, all_values: bool = False) -> str:
    """Returns the report-style dump: every weight's name, shape and values.

    One block per weight, as `Layer: conv1.kernel | Size: (3, 3, 3, 64) | Values: ...`. By
    default the values are those of the first two output units, summarised by numpy, as the
    report shows them; `all_values=True` prints every value of every weight.

    Args:
        model: a Keras model.
        all_values: print every value instead of the first units.

    Returns:
        The dump, preceded by a one-line structure of the model.
    """
    out = [f"{model.name}: {model.count_params():,} parameters"]
    for layer in model.layers:
        config = ", ".join(
            f"{key}={layer.get_config()[key]}"
            for key in ("filters", "kernel_size", "units", "pool_size", "activation", "rate")
            if key in layer.get_config()
        )
        out.append(f"  ({layer.name}): {type(layer).__name__}({config})")
    for layer in model.layers:
        for weight in layer.weights:
            values = np.asarray(weight.numpy())
            shown = values if all_values else _first_units(values)
            text = np.array2string(
                shown,
                precision=4,
                separator=", ",
                threshold=sys.maxsize if all_values else 64,
                edgeitems=3,
                max_line_width=100,
            )
            out.append(f"Layer: {layer.name}.{weight.name} | Size: {tuple(values.shape)} |")
            out.append(f"Values: {text}")
    return "\n".join(out) + "\n"


NUM_CLASSES = 10


def classifier_output(model, num_classes: int = NUM_CLASSES) -> str:
    """What a CIFAR-10 classifier outputs: `"logits"` (the zoo's models) or `"probabilities"`
    (a last softmax, as many hand-built models end), checked to be one (N, 10) output.

    Raises:
        ModelFileError: the model has several outputs or not `num_classes` of them; the
            message names its output shape.
    """
    from keras_cifar.errors import ModelFileError

    shape = model.output_shape
    if isinstance(shape, list) or len(shape) != 2 or shape[-1] != num_classes:
        raise ModelFileError(
            f"The model {model.name!r} outputs {shape}; keras-cifar evaluates, predicts and "
            f"exports CIFAR-10 classifiers with one output of {num_classes} classes, (N, "
            f"{num_classes}). Received: output_shape={shape}")
    last = model.layers[-1] if getattr(model, "layers", None) else None
    softmax = type(last).__name__ == "Softmax" or (
        getattr(getattr(last, "activation", None), "__name__", "") == "softmax")
    return "probabilities" if softmax else "logits"
