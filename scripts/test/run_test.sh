# Sourced by the test scripts: `run_test <dataset> <checkpoint>... -- <test_models.py arguments>`
# checks that the released checkpoints are in pretrained/ before anything else runs.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$_repo"
run_test() {
    local dataset="$1"; shift
    local weights=() missing=()
    while [ "$1" != "--" ]; do
        weights+=("$1"); [ -f "$1" ] || missing+=("$1"); shift
    done
    shift
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "error: missing checkpoint(s):" >&2
        printf '  %s\n' "${missing[@]}" >&2
        echo "Download the released checkpoints into pretrained/ (file names and links: pretrained/README.md)." >&2
        exit 1
    fi
    source scripts/setup_env.sh
    local joined segs
    joined="$(IFS=,; echo "${weights[*]}")"
    segs="$(printf '8,%.0s' "${weights[@]}")"
    echo "+ test_models.py $dataset --weights=$joined --test_segments=${segs%,} $*"
    exec "$PY" test_models.py "$dataset" --weights="$joined" --test_segments="${segs%,}" "$@"
}
