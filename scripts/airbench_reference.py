"""airbench's own code, unmodified, trained on this CPU in float32 on a local CIFAR-10 copy.

    python scripts/airbench_reference.py --data-dir ../shared/data/cifar10-jpeg.tar.gz \
        --seeds 0-2 --out /work/airbench-ref

The command line over `keras_cifar.reference.airbench.run`, where the code and its
documentation live.
"""

import argparse
import os
from pathlib import Path
import sys

from keras_cifar.reference.airbench import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="a local CIFAR-10 copy (directory or archive)")
    parser.add_argument("--out", type=Path, required=True, help="where the records go")
    parser.add_argument("--seeds", default="0-2", help="e.g. 0-2 or 0,3 (default 0-2)")
    parser.add_argument("--variant", choices=("93", "94"), default="93")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if not args.data_dir.exists():
        parser.error(f"--data-dir {args.data_dir} does not exist")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
