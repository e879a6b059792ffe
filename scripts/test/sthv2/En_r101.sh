#!/usr/bin/env bash
# Test PAN_En (Lite + RGB + PA, 2 clips of 256x256) (resnet101) on somethingv2 with the released checkpoint(s) in pretrained/. Extra arguments go to test_models.py.
source "$(dirname "$0")/../run_test.sh"
run_test somethingv2  pretrained/PAN_Lite_somethingv2_resnet101_shift8_blockres_avg_segment8_e80.pth.tar pretrained/PAN_RGB_somethingv2_resnet101_shift8_blockres_avg_segment8_e50.pth.tar pretrained/PAN_PA_somethingv2_resnet101_shift8_blockres_avg_segment8_e80.pth.tar -- \
    --test_crops 1 --full_res --twice_sample --batch_size 16 -j 8 --VAP "$@"
