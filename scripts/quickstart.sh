#!/usr/bin/env bash
# Quick start with no GPU and no dataset: generate the synthetic motion dataset (four directions,
# no single frame tells them apart), train PAN_Lite on the CPU, and test it.
# Extra arguments go to main.py, e.g. bash scripts/quickstart.sh --epochs 5
# Run again, it continues the same run (--resume auto) and tests it; nothing is replaced.
set -euo pipefail
source "$(dirname "$0")/synthetic/common.sh"
start=$(date +%s)
mkdir -p log
out=log/quickstart.txt
# batch 8 for 12 epochs: twice the updates of batch 16 for the same compute, ~97% by epoch 9
"$PY" main.py synthetic Lite "${RECIPE[@]}" -b 8 --epochs 12 --eval-freq 3 --suffix quickstart --resume auto "$@" \
    | tee "$out"
# main.py names the run it trained (a resumed run keeps its own folder and name)
run=$(sed -n 's/^=> run \([^ :]*\): .*/\1/p' "$out" | tail -n 1)
ckpt="checkpoint/$run/ckpt.best.pth.tar"
echo "=> testing $ckpt on the validation videos (segments and input size from the checkpoint)"
"$PY" test_models.py synthetic --weights="$ckpt" --root_path "$DATA" \
    -j 2 --batch_size 8 --save_scores test_results/quickstart_Lite.npz
echo "=> quick start finished in $(( $(date +%s) - start )) s"
pan_env_hint
