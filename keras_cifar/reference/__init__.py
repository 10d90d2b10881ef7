"""References to check keras-cifar against, in PyTorch (the `torch` extra): the report's
notebooks' protocol (`torch_trainer`), step parity with PyTorch from the same weights
(`step_parity`), whole twin runs (`twin_run`), and airbench's own code on the CPU (`airbench`).
Never imported by the Keras training path.
"""

from keras_cifar.errors import MissingDependency

try:
    import torch  # noqa: F401
except ImportError:
    raise MissingDependency(["torch"], "torch", "keras_cifar.reference (the PyTorch reference)"
                            ) from None
