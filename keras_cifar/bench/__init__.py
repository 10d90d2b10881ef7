"""What the benchmark scripts under `scripts/` measure with: the cost model (FLOPs per network,
projected wall time) and the timed measurements themselves. The scripts are thin mains over it.
"""

from pathlib import Path


def default_data() -> str | None:
    """The project's CIFAR-10 copy seen from the project root (`../shared/data/...`), as the
    benchmarks' default data, or None (synthetic data) where it is absent."""
    path = Path("..") / "shared" / "data" / "cifar10-jpeg.tar.gz"
    return str(path) if path.exists() else None
