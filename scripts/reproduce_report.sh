#!/usr/bin/env bash
# Regenerate figures/ from scratch: train all 15 experiments of the report on DATA, then publish
# the runs' config/history/metrics, the table and the figures into figures/.
#
#   scripts/reproduce_report.sh ../shared/data/cifar10-jpeg.tar.gz [OUT]
#
# Resumable: run it again after an interruption and finished experiments are skipped.
# WORKERS (default 2) experiments train at once, each with its share of the cores: on 2 cores,
# two one-thread trainings side by side get 1.1-1.5x the images/s of one two-thread training.
set -euo pipefail
data=${1:?usage: scripts/reproduce_report.sh DATA [OUT]}
out=${2:-report}
cd "$(dirname "$0")/.."
keras-cifar reproduce --all --data-dir "$data" --out "$out" --workers "${WORKERS:-2}"
keras-cifar reproduce --out "$out" --publish figures
echo "figures/ regenerated from $out"
