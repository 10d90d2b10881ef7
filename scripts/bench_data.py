"""Benchmark the data path: cold and cached loads, pipeline images/s, peak memory.

    python scripts/bench_data.py [DATA]    # default: ../shared/data/cifar10-jpeg.tar.gz if present,
                                           # else synthetic data

The command line over `keras_cifar.bench.data_memory.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.bench import default_data
from keras_cifar.bench.data_memory import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("data", nargs="?", default=default_data())
    parser.add_argument("--epochs", type=int, default=3, help="fit epochs per variant")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
