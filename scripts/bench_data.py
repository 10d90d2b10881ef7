"""Benchmark the data path: cold and cached loads, pipeline images/s, peak memory.

A thin main over `keras_cifar.bench.data_memory`, where the code and its documentation live (also runnable as
`python -m keras_cifar.bench.data_memory`).
"""

import sys

from keras_cifar.bench.data_memory import main

if __name__ == "__main__":
    sys.exit(main())
