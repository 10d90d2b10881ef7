"""keras-cifar and the PyTorch reference take the same SGD steps: a check of the code, not the data.

    (run it with scripts/step_parity.py)

Where the reproduction's PyTorch reference and keras-cifar disagree, the fidelity issue asks to
check the order of the data, the initialisation, the loss reduction, the optimiser's update and
the last partial batch. This takes the randomness out: for each network, PyTorch's model
(`torch_reference.torch_model`, PyTorch's default init) is built, its weights are copied into
keras-cifar's model (`build_model`; conv kernels OIHW -> HWIO, dense (out, in) -> (in, out), and
the rows of a dense layer after a flatten reordered from PyTorch's (C, H, W) flattening to Keras'
(H, W, C)), and both take the same SGD steps on the same batches of random uint8 images: batches
of 64 and a last one of 16, as the notebooks' last partial batch, mean cross-entropy from
logits, `SGD(lr, momentum)`. Keras trains the way `train_run` does: the model compiled by
`compile.compiled_model` (its loss, optimiser, metrics, steps per execution, and XLA where a run
would use it: the MLPs on a CPU), stepped by `fit` over a dataset of the raw uint8 batches, as
keras-cifar's pipeline feeds them (the model scales them); PyTorch gets them scaled to [-1, 1]
in the loop, as the notebooks' `Normalize`.

By default every network runs at each (lr, momentum) its report experiments use; `--lr` and
`--momentum` pick one setting instead. Reported per network and setting, relative to the PyTorch
values' largest magnitude: the logits on a fixed batch before the first step (weights copied,
forward pass), the logits after the last step (loss reduction, gradients, update) and the
weights after the last step. At the report's settings they stay at float32's rounding (1e-7)
step after step, until a hidden unit's pre-activation lands within rounding of zero with
opposite signs on the two sides: its ReLU opens on one side only, and a large lr or momentum
carries that unit's different gradient on (LeNet-5 at lr 0.1: 1e-2 in the weights 6 steps after
such a flip). A wrong loss reduction or update shows at 1e-2 or more in the first step.
"""

from __future__ import annotations

import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_cifar._env import prefer_onednn  # noqa: E402

prefer_onednn()  # the kernels keras-cifar's runs use, set before TensorFlow is imported

BATCH_SIZE = 64
LAST_BATCH = 16  # 50,000 = 781 x 64 + 16: the notebooks' last training batch


def keras_weights_from_torch(spec, torch_model) -> list[list[np.ndarray]]:
    """PyTorch's parameters as the Keras layers' weight lists, in the zoo's layer order."""
    import torch

    modules = [m for m in torch_model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    weights, flattened_from = [], None
    for layer in spec.layers:
        if layer.kind == "flatten":
            flattened_from = layer.input_shape  # (H, W, C) for Keras
            continue
        if layer.kind not in ("conv", "dense"):
            if layer.kind != "maxpool":
                raise ValueError(f"step_parity compares conv, dense, maxpool and flatten layers "
                                 f"only; network '{spec.id}' has a '{layer.kind}' layer.")
            continue
        module = modules[len(weights)]
        kernel = module.weight.detach().numpy()
        bias = module.bias.detach().numpy()
        if layer.kind == "conv":
            kernel = kernel.transpose(2, 3, 1, 0)  # (O, I, kh, kw) -> (kh, kw, I, O)
        else:
            kernel = kernel.T  # (out, in) -> (in, out)
            if flattened_from is not None and len(flattened_from) == 3:
                h, w, c = flattened_from
                # Keras row (h, w, c) holds what PyTorch put at column c*H*W + h*W + w.
                torch_index = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
                kernel = kernel[torch_index]
            flattened_from = None
        weights.append([np.ascontiguousarray(kernel), bias])
    return weights


def copy_into_keras(spec, torch_model, keras_model) -> list:
    """Sets `keras_model`'s weights to `torch_model`'s (converted by `keras_weights_from_torch`);
    returns the Keras layers that hold weights, in order."""
    weighted = [layer for layer in keras_model.layers if layer.weights]
    copied = keras_weights_from_torch(spec, torch_model)
    if len(weighted) != len(copied):
        raise ValueError(f"{spec.id}: {len(weighted)} Keras layers with weights, "
                         f"{len(copied)} PyTorch ones")
    for layer, values in zip(weighted, copied):
        layer.set_weights(values)
    return weighted


def _relative(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference)) / max(np.max(np.abs(reference)), 1e-12))


def compare(network_id: str, steps: int, lr: float, momentum: float, seed: int = 0) -> dict:
    """Trains keras-cifar's and PyTorch's model of `network_id` side by side; returns the
    relative differences (logits before, logits after, weights after)."""
    import keras
    import tensorflow as tf
    import torch

    from keras_cifar.training.config import RunConfig
    from keras_cifar.training.compile import compiled_model
    from keras_cifar.zoo import load_zoo
    from keras_cifar.reference.torch_trainer import torch_model

    spec = load_zoo().network(network_id)
    torch.manual_seed(seed)
    reference = torch_model(spec)
    config = RunConfig.of(spec, lr=lr, momentum=momentum, epochs=1, batch_size=BATCH_SIZE,
                          seed=seed, init="torch")
    model, _, speed = compiled_model(config, steps_per_epoch=steps)
    weighted = copy_into_keras(spec, reference, model)
    optimizer = torch.optim.SGD(reference.parameters(), lr=lr, momentum=momentum)
    loss = torch.nn.CrossEntropyLoss()

    rng = np.random.default_rng(seed)
    probe = rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)

    def torch_input(images):
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255
        return x * 2 - 1 if spec.preprocess == "symmetric" else x

    def logits():
        with torch.no_grad():
            expected = reference(torch_input(probe)).numpy()
        ours = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(
            probe.astype("float32"))))
        return _relative(ours, expected), ours

    before, _ = logits()
    n = BATCH_SIZE * (steps - 1) + LAST_BATCH
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH_SIZE)
    model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    for start in range(0, n, BATCH_SIZE):
        optimizer.zero_grad()
        loss(reference(torch_input(images[start:start + BATCH_SIZE])),
             torch.from_numpy(labels[start:start + BATCH_SIZE])).backward()
        optimizer.step()
    after, probe_logits = logits()
    weights = max(_relative(np.asarray(ours), reference_values)
                  for layer, converted in zip(weighted, keras_weights_from_torch(spec, reference))
                  for ours, reference_values in zip(layer.get_weights(), converted))
    return {"logits_before": before, "logits_after": after, "weights_after": weights,
            "xla": speed["xla"], "steps_per_execution": speed["steps_per_execution"],
            "backend": keras.backend.backend(), "probe_logits": probe_logits}


def experiment_settings(zoo, network_id: str) -> list[tuple[float, float]]:
    """The distinct (lr, momentum) of the report experiments that train `network_id`."""
    return sorted({(e.train.lr, e.train.momentum) for e in zoo.report_experiments
                   if e.network == network_id})


def run(args) -> int:
    """Compares the networks and settings the script's options (`args`) ask for."""
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    results = {}
    for network_id in args.networks.split(","):
        settings = ([(args.lr, args.momentum)] if args.lr is not None
                    else experiment_settings(zoo, network_id))
        for lr, momentum in settings:
            key = f"{network_id} lr={lr:g} momentum={momentum:g}"
            r = compare(network_id, args.steps, lr, momentum)
            del r["probe_logits"]
            results[key] = r
            print(f"{key}: relative difference, logits before {r['logits_before']:.1e}, "
                  f"after {args.steps} steps {r['logits_after']:.1e}, weights "
                  f"{r['weights_after']:.1e} (XLA {'on' if r['xla'] else 'off'})", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items()
                                                      if k != "json"}, "networks": results},
                                        indent=1, default=str) + "\n")
    return 0



def backend_parity(network_ids, backends, steps=(1, 20)) -> dict:
    """The same weights and batches on each Keras backend, each in a process of its own:
    for every network at its own settings (`zoo.json`), each backend's relative difference
    from the PyTorch loop after each number of `steps`, and the largest relative difference
    between the logits of any two backends.

    Returns:
        {"<network> lr=.. momentum=..": {"steps": {"1": {"tensorflow": {...}, ...,
        "between_backends": 1e-7}, "20": ...}}}.
    """
    import subprocess
    import sys
    import tempfile

    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    by_backend = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            out = os.path.join(tmp, f"{backend}.npz")
            done = subprocess.run(
                [sys.executable, "-m", __name__, out, ",".join(network_ids),
                 ",".join(map(str, steps))], capture_output=True, text=True,
                env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode != 0:
                raise RuntimeError(f"step parity on {backend} failed:\n{done.stderr[-3000:]}")
            with np.load(out, allow_pickle=False) as saved:
                by_backend[backend] = (json.loads(str(saved["results"])),
                                       {k: saved[k] for k in saved.files if k != "results"})
    results = {}
    for network_id in network_ids:
        t = zoo.network(network_id).train
        key = f"{network_id} lr={t.lr:g} momentum={t.momentum:g}"
        results[key] = {"steps": {}}
        for n in steps:
            row = {b: by_backend[b][0][f"{network_id}/{n}"] for b in backends}
            logits = [by_backend[b][1][f"{network_id}/{n}"] for b in backends]
            row["between_backends"] = max(
                (_relative(a, b) for i, a in enumerate(logits) for b in logits[i + 1:]),
                default=0.0)
            results[key]["steps"][str(n)] = row
    return results


def _backend_worker(out: str, network_ids: str, steps: str) -> None:
    """One backend's side of `backend_parity` (this process's KERAS_BACKEND)."""
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    results, arrays = {}, {}
    for network_id in network_ids.split(","):
        t = zoo.network(network_id).train
        for n in map(int, steps.split(",")):
            r = compare(network_id, n, t.lr, t.momentum)
            arrays[f"{network_id}/{n}"] = r.pop("probe_logits")
            results[f"{network_id}/{n}"] = r
    np.savez(out, results=json.dumps(results), **arrays)


if __name__ == "__main__":
    import sys

    _backend_worker(*sys.argv[1:])
