"""`DataSpec`: which CIFAR-10 source to load, as one small picklable value.

The CLI's one data option group (`cli.options.data_options`) and the Python API's `data=` argument
both become one, so a run, a sweep's worker or a Ray task loads the same data the same way (each worker loads it itself, from the decode cache). No TensorFlow here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keras_cifar.data.sources import DATA_DIR_ENV_VAR, SOURCES, load_data
from keras_cifar.errors import DataError

if TYPE_CHECKING:
    from keras_cifar.data.cifar import CifarData


@dataclass(frozen=True)
class DataSpec:
    """A CIFAR-10 source: `tfds`, a `local` copy, or `synthetic` stand-in data.

    Attributes:
        source: `tfds`, `local` or `synthetic`.
        data_dir: the local copy (a directory or archive), made absolute; `local` only.
        tfds_dir: tensorflow-datasets' data directory (`tfds` only); None: tfds' default.
        use_cache: read and write the decoded-array cache.

    Raises:
        DataError: an unknown source, or `local` without a `data_dir`.
    """

    source: str = "tfds"
    data_dir: str | None = None
    tfds_dir: str | None = None
    use_cache: bool = True

    def __post_init__(self):
        if self.source not in SOURCES:
            raise DataError(f"Unknown data source; expected one of {list(SOURCES)}. "
                            f"Received: source={self.source!r}")
        if self.source == "local" and self.data_dir is None:
            raise DataError(f'`source="local"` needs `data_dir=PATH` (or {DATA_DIR_ENV_VAR}). '
                            f"Received: data_dir=None")
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(Path(self.data_dir).expanduser().resolve()))
        if self.tfds_dir is not None:
            object.__setattr__(self, "tfds_dir", str(self.tfds_dir))

    @classmethod
    def of(cls, data: "DataSpec | str | os.PathLike | None" = None, **options) -> "DataSpec":
        """The spec `data` names: None (tfds), a DataSpec (as is), `"tfds"`, `"synthetic"`, or
        a local copy's path; `options` (`tfds_dir`, `use_cache`) apply to a name or a path."""
        if isinstance(data, DataSpec):
            return data
        if data is None or data in ("tfds", "synthetic"):
            return cls(source=data or "tfds", **options)
        if isinstance(data, (str, os.PathLike)):
            return cls(source="local", data_dir=os.fspath(data), **options)
        raise DataError("`data` must be None, a DataSpec, 'tfds', 'synthetic' or a local copy's "
                        f"path. Received: data={data!r} of type {type(data).__name__}")

    @classmethod
    def from_options(cls, source: str | None = None, data_dir=None, tfds_dir=None,
                     use_cache: bool = True) -> "DataSpec":
        """The spec of the CLI's data options: `source` defaults to `local` when a `data_dir`
        is given, else `tfds`."""
        return cls(source=source or ("local" if data_dir is not None else "tfds"),
                   data_dir=None if data_dir is None else os.fspath(data_dir),
                   tfds_dir=None if tfds_dir is None else os.fspath(tfds_dir),
                   use_cache=use_cache)

    def load(self, progress=None) -> "CifarData":
        """Loads the data this spec names; `progress` as for `load_data`."""
        return load_data(self.source, data_dir=self.data_dir, tfds_dir=self.tfds_dir,
                         use_cache=self.use_cache, progress=progress)

    def describe(self) -> str:
        """Where the data comes from, in words: `tfds`, the local copy's path, or synthetic."""
        if self.source == "local":
            return str(self.data_dir)
        return "synthetic images" if self.source == "synthetic" else "tensorflow-datasets"
