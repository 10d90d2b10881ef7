"""CIFAR-10 from every source users have, as uint8 arrays, and the tf.data pipelines over them.

`sources` loads tfds, a local copy (`formats` reads its layout) or synthetic stand-in data into
a `cifar.CifarData`; `cache` keeps decoded arrays so a copy decodes once; `spec.DataSpec` names a
source so a worker can load it itself; `pipelines` (TensorFlow) batches and shuffles. Nothing
here knows about models. Importing this package imports no TensorFlow.
"""

from keras_cifar.data.cache import CACHE_DIR_ENV_VAR, cache_dir, cache_entries
from keras_cifar.data.cifar import CLASS_NAMES, IMAGE_SHAPE, CifarData, make_data
from keras_cifar.data.sources import (DATA_DIR_ENV_VAR, SOURCES, limit_data, load_data, load_local,
                                      load_tfds, stratified_indices, synthetic_data)
from keras_cifar.data.spec import DataSpec
from keras_cifar.errors import DataError

__all__ = ["CACHE_DIR_ENV_VAR", "CLASS_NAMES", "CifarData", "DATA_DIR_ENV_VAR", "DataError",
           "DataSpec", "IMAGE_SHAPE", "SOURCES", "cache_dir", "cache_entries", "limit_data",
           "load_data", "load_local", "load_tfds", "make_data", "stratified_indices",
           "synthetic_data"]
