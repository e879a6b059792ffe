#!/usr/bin/env bash
# Test PAN_Lite (resnet50) on somethingv2 with the released checkpoint(s) in pretrained/. Extra arguments go to test_models.py.
source "$(dirname "$0")/../run_test.sh"
run_test somethingv2  pretrained/PAN_Lite_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar -- \
    --test_crops 1 --batch_size 16 -j 8 --VAP "$@"
