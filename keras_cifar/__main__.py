"""`python -m keras_cifar` runs the CLI."""

from keras_cifar.cli import main

main()
