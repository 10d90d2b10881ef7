"""What the notebook-scale loss costs per epoch: `fit` with and without the `NotebookLoss` metric.

    python scripts/bench_notebook_loss.py [--networks mlp2,lenet5] [--repeats 3] [--epochs 3]
                                          [--train-images 12800] [--threads 1] [--json FILE]

The command line over `keras_cifar.bench.notebook_loss_cost.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.bench.notebook_loss_cost import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--networks", default="mlp2,lenet5")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="per fit; the first is dropped")
    parser.add_argument("--train-images", type=int, default=12_800)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", nargs=2, metavar=("NETWORK", "WITH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the first is dropped). Received: {args.epochs}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
