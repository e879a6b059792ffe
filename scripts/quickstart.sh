#!/usr/bin/env bash
# Quick start with no GPU and no dataset: generate the synthetic motion dataset (four directions,
# no single frame tells them apart), train PAN_Lite on the CPU, and test it.
# Extra arguments go to main.py, e.g. bash scripts/quickstart.sh --epochs 5
set -euo pipefail
source "$(dirname "$0")/synthetic/common.sh"
start=$(date +%s)
# batch 8 for 12 epochs: twice the updates of batch 16 for the same compute, ~97% by epoch 9
"$PY" main.py synthetic Lite "${RECIPE[@]}" -b 8 --epochs 12 --eval-freq 3 --suffix quickstart "$@"
# the run just trained wrote the newest ckpt.pth.tar (a resumed run keeps its own folder and name)
run_dir=$(dirname "$(ls -t checkpoint/*/ckpt.pth.tar | head -n 1)")
ckpt="$run_dir/ckpt.best.pth.tar"
echo "=> testing $ckpt on the validation videos"
"$PY" test_models.py synthetic --weights="$ckpt" --test_segments=4 --input_size 64 --root_path "$DATA" \
    -j 2 --batch_size 8 --save_scores test_results/quickstart_Lite.npz
echo "=> quick start finished in $(( $(date +%s) - start )) s"
pan_env_hint
