"""Twin runs: keras-cifar and the PyTorch reference trained from the same initial weights on the

A thin main over `keras_cifar.reference.twin_run`, where the code and its documentation live (also runnable as
`python -m keras_cifar.reference.twin_run`).
"""

import sys

from keras_cifar.reference.twin_run import main

if __name__ == "__main__":
    sys.exit(main())
