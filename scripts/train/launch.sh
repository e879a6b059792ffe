# Sourced by the training scripts: `launch <main.py arguments>` runs main.py on every GPU present
# through torchrun (DistributedDataParallel), or as one process on one GPU or the CPU.
# NPROC overrides the process count; extra arguments given to a script come last and win.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$_repo"
source scripts/setup_env.sh
launch() {
    local n="${NPROC:-$("$PY" -c 'import torch; print(torch.cuda.device_count())')}"
    if [ "$n" -gt 1 ]; then
        echo "+ torchrun --nproc_per_node=$n main.py $*"
        exec "$PY" -m torch.distributed.run --standalone --nproc_per_node="$n" main.py "$@"
    fi
    echo "+ main.py $*"
    exec "$PY" main.py "$@"
}
