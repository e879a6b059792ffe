#!/usr/bin/env bash
# PAN_Full on somethingv2: PA branch, resnet50, 8 segments, batch 64, lr 0.01, steps 30 60, 80 epochs (the release's settings).
# Extra arguments are passed on to main.py, e.g. bash scripts/train/sthv2/Full_PA.sh --epochs 1
source "$(dirname "$0")/../launch.sh"
launch somethingv2 PA --arch resnet50 --num_segments 8 --gd 20 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -j 16 \
    --dropout 0.5 --consensus_type avg --eval-freq 1 --shift --shift_div 8 --shift_place blockres --npb --VAP "$@"
