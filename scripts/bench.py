"""Speed of keras-cifar's training path against a plain PyTorch loop, network by network.

    python scripts/bench.py [--data DATA] [--networks mlp2,cnn3] [--repeats 3] [--epochs 3]
                            [--train-images 25024] [--json bench.json] [--mixed-precision]
                            [--workers 2] [--backends tensorflow,jax,torch]

The command line over `keras_cifar.bench.speed.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.bench import default_data
from keras_cifar.bench.speed import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--data", default=default_data(),
                        help="CIFAR-10 (any --data-dir source); default: the project's copy, "
                        "else synthetic data")
    parser.add_argument("--networks", default=None, help="comma-separated ids; default: all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="per measurement; the first is dropped")
    # 25,024 images are 391 batches = 17 x 23, so train runs 23 steps per execution, as on the
    # full 782-batch epoch; a prime batch count would force one step per execution.
    parser.add_argument("--train-images", type=int, default=25_024,
                        help="training images per epoch (a class-stratified subset)")
    parser.add_argument("--json", type=Path, default=Path("bench.json"))
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure N trainings side by side, as reproduce run --workers N")
    parser.add_argument("--backends", default=None,
                        help="also measure keras-cifar on these Keras backends, e.g. jax,torch")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="also measure keras-cifar with --mixed-precision (16-bit compute)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "NETWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
