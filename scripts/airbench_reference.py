"""airbench's own code, unmodified, trained on this CPU in float32 on a local CIFAR-10 copy.

A thin main over `keras_cifar.reference.airbench`, where the code and its documentation live (also runnable as
`python -m keras_cifar.reference.airbench`).
"""

import sys

from keras_cifar.reference.airbench import main

if __name__ == "__main__":
    sys.exit(main())
