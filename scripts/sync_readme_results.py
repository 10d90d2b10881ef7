"""Writes the published reproduction's compact table into the README's Results section.

A thin main over `keras_cifar.reproduce.readme`, where the code and its documentation live (also runnable as
`python -m keras_cifar.reproduce.readme`).
"""

import sys

from keras_cifar.reproduce.readme import main

if __name__ == "__main__":
    sys.exit(main())
