"""keras-cifar and the PyTorch reference take the same SGD steps: a check of the code, not the data.

    python scripts/step_parity.py [--networks lenet5,cnn3] [--steps 20] [--lr 0.1 --momentum 0]
                                  [--json FILE]

The command line over `keras_cifar.reference.step_parity.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.reference.step_parity import run

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
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1. Received: {args.steps}")
    if (args.lr is None) != (args.momentum is None):
        parser.error("--lr and --momentum go together (one setting), or neither (the "
                     f"experiments' settings). Received: --lr {args.lr}, --momentum {args.momentum}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
