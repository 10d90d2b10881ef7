"""What the notebook-scale loss costs per epoch: `fit` with and without the `NotebookLoss` metric.

A thin main over `keras_cifar.bench.notebook_loss_cost`, where the code and its documentation live (also runnable as
`python -m keras_cifar.bench.notebook_loss_cost`).
"""

import sys

from keras_cifar.bench.notebook_loss_cost import main

if __name__ == "__main__":
    sys.exit(main())
