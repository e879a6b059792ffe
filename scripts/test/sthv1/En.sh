#!/usr/bin/env bash
# Test PAN_En (Lite + RGB + PA, 2 clips of 256x256) (resnet50) on something with the released checkpoint(s) in pretrained/. Extra arguments go to test_models.py.
source "$(dirname "$0")/../run_test.sh"
run_test something  pretrained/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar pretrained/PAN_RGB_something_resnet50_shift8_blockres_avg_segment8_e50.pth.tar pretrained/PAN_PA_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar -- \
    --test_crops 1 --full_res --twice_sample --batch_size 16 -j 8 --VAP "$@"
