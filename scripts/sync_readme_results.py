"""Writes the published reproduction's compact table into the README's Results section.

    python scripts/sync_readme_results.py [--figures figures] [--readme README.md] [--check]

The command line over `keras_cifar.reproduce.readme.run`, where the code and its
documentation live.
"""

import argparse
import sys
from pathlib import Path

from keras_cifar.reproduce.readme import run

DOC = " ".join(__doc__.split("\n\n")[0].split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC)
    root = Path(".")  # the project root
    parser.add_argument("--figures", type=Path, default=root / "figures")
    parser.add_argument("--readme", type=Path, default=root / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
