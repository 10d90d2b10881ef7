"""Speed of keras-cifar's training path against a plain PyTorch loop, network by network.

A thin main over `keras_cifar.bench.speed`, where the code and its documentation live (also runnable as
`python -m keras_cifar.bench.speed`).
"""

import sys

from keras_cifar.bench.speed import main

if __name__ == "__main__":
    sys.exit(main())
