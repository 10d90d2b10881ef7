"""What JAX's max-pooling and convolutions cost a train step: Keras' layers as XLA runs them,
against reshapes and matmuls (models/jax_kernels.py).

    python scripts/bench_jax_kernels.py [--networks lenet5,cnn3] [--repeats 2] [--epochs 3] \
        [--json figures/bench/jax_kernels.json]

The command line over `keras_cifar.bench.jax_kernels_cost.run`, where the code and its
documentation live. Needs the jax extra. Run it on an otherwise idle machine: 4 variants x
networks x repeats, each a fresh process.
"""

import argparse
import importlib.util
import sys

from keras_cifar.bench.jax_kernels_cost import run
from keras_cifar.bench.step_timing import add_step_arguments, parse_step_arguments

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    parser.add_argument("--networks", default="lenet5,cnn3",
                        help="zoo networks with convolutions or max-pooling")
    add_step_arguments(parser)
    args = parse_step_arguments(parser, argv)
    if importlib.util.find_spec("jax") is None:
        parser.error('jax is not installed; install the jax extra: pip install -e ".[jax]"')
    from keras_cifar.zoo import load_zoo

    zoo = load_zoo()
    for name in args.networks.split(","):
        if name not in zoo.networks:
            parser.error(f"--networks: {name} is not in the zoo; choose from "
                         f"{', '.join(zoo.networks)}. Received: {args.networks}")
        if not any(layer.kind in ("conv", "maxpool") for layer in zoo.network(name).layers):
            parser.error(f"--networks: {name} has no convolution or max-pooling to compare. "
                         f"Received: {args.networks}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
