#!/usr/bin/env bash
# Reliability drills on the CPU (a few minutes): SIGKILL of a run after a mid-epoch checkpoint and at
# random moments, a killed DataLoader worker, a killed torchrun worker under --max-restarts, and a
# run across two torchrun launchers as two nodes; each compared with the unbroken run. Prints the
# table that the README's reliability section shows, then runs the drill-marked tests.
# Arguments go to tools/drills.py, e.g. bash scripts/drills.sh --only torchrun_restart
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
status=0
"$PY" tools/drills.py "$@" || status=$?
if [ "$#" -eq 0 ]; then
    "$PY" -m pytest -q -m drill tests || status=$?
fi
exit "$status"
