#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one command, within about 9 minutes on one H100 or H200 with
# 16 cores: the CUDA tests (pytest -m cuda), the training benchmark against the release's model
# code, the data path (share of each --amp Lite step waiting for data, with and without
# --gpu_decode), and PA against RAFT. Every log and table goes to one folder; the last lines give
# the GPU, driver, torch version and how many steps passed.
#
#   bash scripts/gpu_check.sh [OUT_DIR]            (default: $OUT, else gpu_check_out)
#
# Works with the machine's own PyTorch (a lent GPU machine has torch 2.11 / torchvision 0.26) or this
# project's environment. Packages the machine lacks (PyAV, tensorboardX, lmdb) are installed from
# the wheels in .whl/ (make them here with: bash scripts/gpu_wheels.sh; carry .whl along).
# RELEASE_DIR: a checkout of zhang-can/PAN-PyTorch for the baseline rows (default: release/ or
# ../release when present; without one those rows are left out, saying so). PY: the Python to use.
# Without CUDA it checks that everything it would run is here and says "no CUDA: nothing run".
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT_DIR"
PY="${PY:-$(command -v python3 || command -v python)}"
export PYTHONUNBUFFERED=1

# the project from this checkout, and carried wheels for what the machine's Python lacks
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
missing=$("$PY" -c "
import importlib.util as u
print(' '.join(m for m in ('av', 'tensorboardX', 'lmdb') if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        echo "=> installing from .whl: $missing"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pan_site \
            .whl/*.whl || { echo "error: cannot install the wheels of .whl/" >&2; exit 1; }
        export PYTHONPATH="$PYTHONPATH:/tmp/pan_site"
    else
        echo "warning: missing $missing and no .whl/ to install them from (bash scripts/gpu_wheels.sh)" >&2
    fi
fi

RELEASE_DIR="${RELEASE_DIR:-}"
for d in release ../release; do
    [ -z "$RELEASE_DIR" ] && [ -f "$d/ops/models.py" ] && RELEASE_DIR="$d"
done

NEEDED=(tests/test_cuda.py tests/test_gpu_decode.py tools/benchmark_train.py tools/benchmark_pa.py tools/benchmark_data.py
        tools/gen_synthetic.py main.py test_models.py)
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    for f in "${NEEDED[@]}"; do
        [ -f "$f" ] || { echo "error: $f is missing" >&2; exit 1; }
    done
    "$PY" tools/benchmark_train.py -h | grep -q -- '--release_dir' || { echo "error: benchmark_train has no --release_dir" >&2; exit 1; }
    "$PY" tools/benchmark_pa.py -h | grep -q -- '--raft' || { echo "error: benchmark_pa has no --raft" >&2; exit 1; }
    echo "no CUDA: nothing run (the ${#NEEDED[@]} files and the flags it would use are all here)"
    exit 0
fi

# the whole check stays within GPU_CHECK_BUDGET seconds (9 minutes): a step gets at most what is left
BUDGET="${GPU_CHECK_BUDGET:-540}"
passed=0; failed=0; results=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT_DIR/NAME.txt, count it
    local name="$1" limit="$2"; shift 2
    local start=$SECONDS left=$((BUDGET - SECONDS))
    if [ "$left" -lt 20 ]; then
        failed=$((failed + 1)); results+=("FAIL $name (not run: ${left}s of the ${BUDGET}s budget left)")
        echo "=> $name: not run, the budget is spent"; return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "=> $name (at most ${limit}s): $*"
    timeout --signal=INT --kill-after=15 "$limit" "$@" > "$OUT_DIR/$name.txt" 2>&1
    local rc=$?
    tail -n 25 "$OUT_DIR/$name.txt"
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); results+=("PASS $name ($((SECONDS - start))s)")
    else failed=$((failed + 1)); results+=("FAIL $name (status $rc, $((SECONDS - start))s)"); fi
}

# 1. the CUDA tests
step cuda_tests 240 "$PY" -m pytest -q -m cuda -p no:cacheprovider -o addopts='-ra' tests/test_cuda.py \
    --junitxml "$OUT_DIR/cuda_tests.xml"

# 2. training throughput and peak memory: ResNet-50, 8 segments, 224, batch 32 and 64; eager in
#    fp32 and --amp in both layouts (plus the release's model code), then compiled --amp channels-last Lite
release=()
[ -n "$RELEASE_DIR" ] && release=(--release_dir "$RELEASE_DIR")
for batch in 32 64; do
    step "train_b$batch" 150 "$PY" tools/benchmark_train.py --device cuda --arch resnet50 --modalities Lite RGB PA \
        --batch "$batch" --infer_batch "$batch" --iters 5 --warmup 2 "${release[@]}"
done
step train_compiled 150 "$PY" tools/benchmark_train.py --device cuda --arch resnet50 --modalities Lite \
    --batch 32 --infer_batch 32 --iters 5 --warmup 2 --amp --channels_last --compile

# 3. the data path: share of an --amp Lite step spent waiting for data, 16 workers, 340x256 JPEGs,
#    with and without --gpu_decode; then the clips/s the workers deliver
DATA="$OUT_DIR/data"
step data_make 60 "$PY" tools/gen_synthetic.py --root_path "$DATA" --num_videos 384 --num_val 32 \
    --num_frames 36 --size 340x256
for decode in cpu gpu; do
    flags=(); [ "$decode" = gpu ] && flags=(--gpu_decode)
    step "data_wait_$decode" 120 "$PY" main.py synthetic Lite --arch resnet50 --pretrain scratch --num_segments 8 \
        -b 32 -j 16 --epochs 1 --amp --channels_last --print-freq 4 --root_path "$DATA" \
        --root_log "$OUT_DIR/runs/log" --root_model "$OUT_DIR/runs/ckpt" --store_name "wait_$decode" "${flags[@]}"
done

# what 16 loader workers deliver: Lite training clips (8 x 4 frames) of 176x100 and 340x256 JPEGs
step data_workers 90 "$PY" tools/benchmark_data.py --sizes 176x100 340x256 --workers 16 --pipelines train \
    --stores folder --video_gops --repeats 1

# 4. PA against the loop formulation and RAFT on the GPU (and the CPU's TV-L1 row)
step pa 120 "$PY" tools/benchmark_pa.py --raft --flow_pairs 4 --repeats 3 --device cpu cuda

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
    "$PY" -c "import torch, torchvision; print(f'torch {torch.__version__} (CUDA {torch.version.cuda}), torchvision {torchvision.__version__}')"
    grep -h 'waiting for data took' "$OUT_DIR"/data_wait_*.txt 2>/dev/null | sed 's/^/data: /'
    printf '%s\n' "${results[@]}"
    echo "gpu_check: $passed passed, $failed failed in ${SECONDS}s (logs in $OUT_DIR)"
} | tee "$OUT_DIR/summary.txt"
[ "$failed" -eq 0 ]
