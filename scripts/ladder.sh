#!/usr/bin/env bash
# Train the ladder (docs/recipes.md), most telling rungs first: airbench93 itself (5 seeds),
# then the rungs below it, 2 seeds each. Two rungs read another experiment's runs instead
# (reproduce/ladder.py): (g) trains exactly as (h), whose runs record their accuracy without
# test-time augmentation too; (a) trains exactly as the report's cnn3, 3 seeds.
# Resumable: rerun it and finished runs are skipped, an interrupted one continues; published
# runs (figures/ladder/runs/*, figures/runs/cnn3*) copied into OUT/runs count as finished.
# Usage: scripts/ladder.sh DATA_DIR OUT [KERAS_CIFAR]
set -euo pipefail
data="${1:?usage: scripts/ladder.sh DATA_DIR OUT [keras-cifar command]}"
out="${2:?usage: scripts/ladder.sh DATA_DIR OUT [keras-cifar command]}"
kc="${3:-keras-cifar}"
run() { $kc reproduce run "$@" --data-dir "$data" --out "$out"; }
run ladder-h --seeds 0-4
for rung in f e d c b; do
    run "ladder-$rung" --seeds 0-1
done
run cnn3 --seeds 0-2
