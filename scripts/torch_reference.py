"""A plain PyTorch training loop for zoo networks: the report's own framework, as a reference.

    python scripts/torch_reference.py --experiments lenet5-lr0.01 cnn3 --seeds 0-2 \
        --data-dir ../shared/data/cifar10-jpeg.tar.gz --out report --threads 1

The command line over `keras_cifar.reference.torch_trainer.run`, where the code and its
documentation live.
"""

import argparse
import sys

from keras_cifar.reference.torch_trainer import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Train zoo networks with plain PyTorch: one network with given settings, or "
        "the report's experiments with the notebooks' protocol into OUT/torch/.")
    parser.add_argument("network", nargs="?", help="a zoo network (with --lr and --epochs)")
    parser.add_argument("--experiments", nargs="+", metavar="ID",
                        help="the zoo's experiments to run into --out, e.g. lenet5-lr0.01 cnn3")
    parser.add_argument("--seeds", default="0", help="with --experiments: e.g. 0-2")
    parser.add_argument("--out", default="report", help="with --experiments: OUT/torch/<run>/")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--json", default=None, help="write the history here")
    args = parser.parse_args(argv)
    if not args.experiments and not (args.network and args.lr and args.epochs):
        parser.error("give a NETWORK with --lr and --epochs, or --experiments")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
