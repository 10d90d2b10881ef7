"""keras-cifar and the PyTorch reference take the same SGD steps: a check of the code, not the data.

    python scripts/step_parity.py [--networks lenet5,cnn3] [--steps 20] [--lr 0.1 --momentum 0]
                                  [--json FILE]
    python scripts/step_parity.py --backends tensorflow,jax,torch [--networks ...] [--json FILE]

With --backends, every network runs at its own settings on each Keras backend (each in its own
process), after 1 and after --steps steps, against the same PyTorch loop and against each other.

The command line over `keras_cifar.reference.step_parity.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

import json

from keras_cifar.reference.step_parity import backend_parity, run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    from keras_cifar.zoo import load_zoo

    parser = argparse.ArgumentParser(description=DOC)
    zoo = load_zoo()
    parser.add_argument("--networks", default=",".join(zoo.networks))
    parser.add_argument("--steps", type=int, default=20, help="the last one holds 16 images")
    parser.add_argument("--lr", type=float, default=None, help="with --momentum: one setting")
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--backends", default=None,
                        help="comma-separated Keras backends to compare, e.g. tensorflow,jax,torch")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1. Received: {args.steps}")
    if (args.lr is None) != (args.momentum is None):
        parser.error("--lr and --momentum go together (one setting), or neither (the "
                     f"experiments' settings). Received: --lr {args.lr}, --momentum {args.momentum}")
    if args.backends:
        return run_backends(args)
    return run(args)


def run_backends(args) -> int:
    """`--backends`: the parity table across Keras backends (`backend_parity`)."""
    from keras_cifar._env import cpu_model

    backends = args.backends.split(",")
    steps = sorted({1, args.steps})
    results = backend_parity(args.networks.split(","), backends, steps)
    for key, row in results.items():
        for n, by in row["steps"].items():
            cells = ", ".join(f"{b} {by[b]['logits_after']:.1e}" for b in backends)
            print(f"{key}, {n} step(s): logits vs PyTorch: {cells}; between backends "
                  f"{by['between_backends']:.1e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"settings": {"networks": args.networks,
                                                      "backends": backends, "steps": steps},
                                         "cpu": cpu_model(), "networks": results},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
