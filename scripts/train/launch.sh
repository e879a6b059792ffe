# Sourced by the training scripts: `launch <main.py arguments>` runs main.py through torchrun on
# every GPU present (DistributedDataParallel), or as one process on the CPU, with --resume auto and
# torchrun's restarts: a worker that dies brings the job back from the run's last checkpoint.
# Also runnable as it is: bash scripts/train/launch.sh <main.py arguments>.
#   NPROC         processes on this node (default: the GPUs, at least 1)
#   MAX_RESTARTS  restarts of the job after a failure (default: 3)
#   NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT   several nodes: the same command on each, NODE_RANK
#                 0..NNODES-1, MASTER_ADDR the host name of node 0 (MASTER_PORT default: 29500)
# Extra arguments given to a script come last and win (e.g. --resume PATH instead of auto).
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$_repo"
source scripts/setup_env.sh
launch() {
    local n="${NPROC:-$("$PY" -c 'import torch; print(max(torch.cuda.device_count(), 1))')}"
    local nodes=(--standalone)
    if [ "${NNODES:-1}" -gt 1 ]; then
        if [ -z "${NODE_RANK:-}" ] || [ -z "${MASTER_ADDR:-}" ]; then
            echo "error: NNODES=$NNODES needs NODE_RANK (0..$((NNODES - 1))) and MASTER_ADDR (node 0's host)" >&2
            exit 2
        fi
        nodes=(--nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR"
               --master_port="${MASTER_PORT:-29500}")
    fi
    local run=(--nproc_per_node="$n" --max-restarts="${MAX_RESTARTS:-3}" main.py "$1" "$2" --resume auto "${@:3}")
    echo "+ torchrun ${nodes[*]} ${run[*]}"
    exec "$PY" -m torch.distributed.run "${nodes[@]}" "${run[@]}"
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    launch "$@"
fi
