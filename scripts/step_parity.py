"""keras-cifar and the PyTorch reference take the same SGD steps: a check of the code, not the data.

A thin main over `keras_cifar.reference.step_parity`, where the code and its documentation live (also runnable as
`python -m keras_cifar.reference.step_parity`).
"""

import sys

from keras_cifar.reference.step_parity import main

if __name__ == "__main__":
    sys.exit(main())
