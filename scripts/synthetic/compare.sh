#!/usr/bin/env bash
# Why PA exists, on data where motion is the only cue: TSN-RGB, TSM-RGB, PAN-PA, PAN-Lite and the
# online PAN-Lite (causal shift, for streaming) trained with the same budget (the quick start's
# model and optimiser, batch 16 for 25 epochs),
# then a table of validation top-1.
# Extra arguments go to every main.py run, e.g. bash scripts/synthetic/compare.sh --epochs 10
# Run again, each run continues where it stands (--resume auto): a finished one is not trained again.
set -euo pipefail
source "$(dirname "$0")/common.sh"
declare -A RUNS=(
    [TSN-RGB]="RGB --base TSN --no_VAP"
    [TSM-RGB]="RGB --no_VAP"
    [PAN-PA]="PA"
    [PAN-Lite]="Lite"
    [PAN-Lite-causal]="Lite --causal_shift"
)
ORDER=(TSN-RGB TSM-RGB PAN-PA PAN-Lite PAN-Lite-causal)
for name in "${ORDER[@]}"; do
    echo "=> training $name"
    mkdir -p log
    # shellcheck disable=SC2086
    "$PY" main.py synthetic ${RUNS[$name]} "${RECIPE[@]}" -b 16 --epochs 25 --eval-freq 5 --suffix "compare_${name}" \
        --resume auto "$@" | tee "log/compare_${name}.txt"
done
echo
printf '%-16s %14s %16s\n' model 'best top-1 (%)' 'final top-1 (%)'
for name in "${ORDER[@]}"; do
    # the run's own log.csv: a run already finished (run again) validates nothing new
    run=$(sed -n 's/^=> run \([^ :]*\): .*/\1/p' "log/compare_${name}.txt" | tail -n 1)
    best=$(grep 'Best Prec@1' "log/$run/log.csv" | tail -n 1 | awk '{print $3}')
    final=$(grep 'Testing Results' "log/$run/log.csv" | tail -n 1 | awk '{print $4}')
    printf '%-16s %14s %16s\n' "$name" "$best" "$final"
done
echo "(chance: 25%)"
