"""Twin runs: keras-cifar and the PyTorch reference trained from the same initial weights on the
same batches, epoch after epoch, on the real images: a check of whole runs, not of seeds.

    python scripts/twin_run.py EXPERIMENT --data-dir ../shared/data/cifar10-jpeg.tar.gz
                               [--epochs N] [--seed 0] [--threads T] [--json FILE] [--plot PNG]

The command line over `keras_cifar.reference.twin_run.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.reference.twin_run import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("experiment", choices=list(zoo.experiments), metavar="EXPERIMENT",
                        help="a report experiment, e.g. mlp-lr0.005")
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 as `--data local` reads it")
    parser.add_argument("--epochs", type=int, default=None, help="default: the experiment's")
    parser.add_argument("--seed", type=int, default=0, help="PyTorch's init seed and the order")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch's; default all cores")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    parser.add_argument("--plot", type=Path, default=None,
                        help="draw both sides' test accuracy and loss against epoch (PNG)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1. Received: {args.epochs}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
