"""Export latency: one zoo network in every export format, its file size, and the time each

A thin main over `keras_cifar.bench.export_speed`, where the code and its documentation live (also runnable as
`python -m keras_cifar.bench.export_speed`).
"""

import sys

from keras_cifar.bench.export_speed import main

if __name__ == "__main__":
    sys.exit(main())
