"""Writes the published reproduction's compact table into the README's Results section.

    (run it with scripts/sync_readme_results.py)

The table is `results.summary_markdown` of the runs published under FIGURES (what
`keras-cifar reproduce publish` wrote); it replaces whatever stands between the README's two
markers below. `--check` writes nothing and exits 1 when the README's table is stale (a test
runs the same comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

from keras_cifar.reproduce.results import results_rows, summary_markdown
from keras_cifar.zoo import load_zoo

BEGIN = "<!-- results table: written by scripts/sync_readme_results.py -->"
END = "<!-- end of results table -->"


def readme_table(readme_text: str, readme: Path) -> str:
    """Returns what stands between the markers; a clear error when they are missing."""
    if readme_text.count(BEGIN) != 1 or readme_text.count(END) != 1:
        raise SystemExit(f"{readme} must hold the markers {BEGIN!r} and {END!r} once each, "
                         "around the Results table. Add them where the table belongs.")
    return readme_text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def published_table(figures: Path) -> str:
    """The compact table of the reproduction published in `figures`."""
    rows = results_rows(load_zoo(), figures)
    if not rows:
        raise SystemExit(f"No finished runs under {figures}/runs. Publish a reproduction first: "
                         f"keras-cifar reproduce publish {figures} --out OUT")
    return summary_markdown(rows)


def run(args) -> int:
    """Runs what the script's options (`args`) ask for."""
    text = args.readme.read_text(encoding="utf-8")
    old, new = readme_table(text, args.readme), published_table(args.figures)
    if args.check:
        if old != new:
            print(f"{args.readme}: the Results table differs from {args.figures}; run "
                  "python scripts/sync_readme_results.py", file=sys.stderr)
            return 1
        return 0
    head, rest = text.split(BEGIN, 1)
    args.readme.write_text(f"{head}{BEGIN}\n{new}{END}{rest.split(END, 1)[1]}", encoding="utf-8")
    print(f"{args.readme}: Results table {'unchanged' if old == new else 'updated'}")
    return 0

