#!/usr/bin/env bash
# Train the ladder (docs/recipes.md), most telling rungs first: airbench93 itself (5 seeds),
# then the rungs below it, 2 seeds each. (g) is not trained: it trains exactly as (h), whose
# runs record their accuracy without test-time augmentation too, and the ladder reads it there.
# Resumable: rerun it and finished runs are skipped, an interrupted one continues.
# Usage: scripts/ladder.sh DATA_DIR OUT [KERAS_CIFAR]
set -euo pipefail
data="${1:?usage: scripts/ladder.sh DATA_DIR OUT [keras-cifar command]}"
out="${2:?usage: scripts/ladder.sh DATA_DIR OUT [keras-cifar command]}"
kc="${3:-keras-cifar}"
run() { $kc reproduce run "$@" --data-dir "$data" --out "$out"; }
run ladder-h --seeds 0-4
for rung in f e d c b a; do
    run "ladder-$rung" --seeds 0-1
done
