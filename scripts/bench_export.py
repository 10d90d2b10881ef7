"""Export latency: one zoo network in every export format, its file size, and the time each
runtime takes for one batch of uint8 images, batch 1 and batch 256, on this machine's CPU.

    python scripts/bench_export.py                       # cnn3, seeded weights

The command line over `keras_cifar.bench.export_speed.run`, where the code and its
documentation live.
"""

import argparse
import os
from pathlib import Path
import sys

from keras_cifar.bench.export_speed import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--network", default="cnn3", help="zoo network (seeded weights)")
    parser.add_argument("--model", type=Path, default=None, help="a trained .keras file instead")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
