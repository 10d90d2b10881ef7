"""A plain PyTorch training loop for zoo networks: the report's own framework, as a reference.

A thin main over `keras_cifar.reference.torch_trainer`, where the code and its documentation live (also runnable as
`python -m keras_cifar.reference.torch_trainer`).
"""

import sys

from keras_cifar.reference.torch_trainer import main

if __name__ == "__main__":
    sys.exit(main())
