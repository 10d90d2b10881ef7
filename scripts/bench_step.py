"""Where a train step's time goes: the step with layer kinds taken out, GELU fused or not.

    python scripts/bench_step.py [--network airbench93] [--repeats 2] [--epochs 3] \
        [--json figures/bench/step_cost.json]

The command line over `keras_cifar.bench.step_cost.run`, where the code and its documentation
live. Run it on an otherwise idle machine: 10 variants x repeats, each a fresh process.
"""

import argparse
import sys

from keras_cifar.bench.step_cost import run
from keras_cifar.bench.step_timing import add_step_arguments, parse_step_arguments

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--network", default="airbench93", help="a zoo network")
    add_step_arguments(parser)
    args = parse_step_arguments(parser, argv)
    from keras_cifar.zoo import load_zoo

    known = list(load_zoo().networks)
    if args.network not in known:
        parser.error(f"--network {args.network} is not in the zoo; choose one of {', '.join(known)}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
