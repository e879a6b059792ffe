#!/usr/bin/env bash
# Train PAN on a dataset of your own (made by tools/prepare_dataset.py), with defaults for a few
# hundred clips:   bash scripts/train/custom.sh NAME [Lite|RGB|PA] [main.py flags]
# Fine-tuned from --tune_from CHECKPOINT when given (a released Something-Something model or any
# main.py checkpoint), else from ImageNet weights when they can be had, else from scratch with the
# quick start's recipe: tools/custom_recipe.py chooses and says which. Modality default: Lite.
# Runs through launch.sh like the other training scripts (torchrun, --resume auto, restarts); the
# flags given here come last and win over the recipe's.
source "$(dirname "$0")/launch.sh"
usage="usage: bash scripts/train/custom.sh NAME [Lite|RGB|PA] [main.py flags]"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    echo "$usage  (the flags are main.py's:)"
    exec "$PY" main.py -h
fi
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
    echo "$usage" >&2
    exit 2
fi
name="$1"; shift
modality=Lite
case "${1:-}" in Lite|RGB|PA) modality="$1"; shift ;; esac
recipe="$("$PY" tools/custom_recipe.py "$name" "$modality" "$@")" || exit $?
mapfile -t args <<< "$recipe"
launch "$name" "$modality" "${args[@]}" "$@"
