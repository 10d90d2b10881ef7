"""airbench93 in keras-cifar against airbench's own code, alternating, on this CPU.

    python scripts/bench_airbench.py --data-dir ../shared/data/cifar10-jpeg.tar.gz \
        --airbench-python /work/abvenv/bin/python --epochs 3 --rounds 2 \
        --json figures/bench/airbench.json [--backends jax,torch]

The command line over `keras_cifar.bench.airbench_speed.run`, where the code and its
documentation live. --airbench-python is a Python with torch 2.13.0 (CPU) and airbench 0.1.8
(`pip install --no-deps airbench==0.1.8`); keras-cifar's side runs in this Python.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.bench import default_data
from keras_cifar.bench.airbench_speed import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def backend_list(text: str) -> list[str]:
    """`jax,torch` as a list of installed Keras backends (argparse's type)."""
    from keras_cifar.backends import available_backend
    from keras_cifar.errors import KerasCifarError

    try:
        return [available_backend(name.strip()) for name in text.split(",") if name.strip()]
    except KerasCifarError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--data-dir", default=default_data(), help="a local CIFAR-10 copy")
    parser.add_argument("--airbench-python", default=sys.executable,
                        help="the Python that has torch and airbench (default: this one)")
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first is dropped")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="keras-cifar's side in mixed bfloat16 (airbench's stays float32)")
    parser.add_argument("--backends", type=backend_list, default=[],
                        help="also measure keras-cifar on these Keras backends, e.g. jax,torch")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.data_dir or not Path(args.data_dir).exists():
        parser.error(f"--data-dir {args.data_dir} does not exist (a local CIFAR-10 copy)")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: each run's first epoch is dropped")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
