#!/usr/bin/env bash
# Run the test suite on the CPU: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
status=0
"$PY" -m pytest -q tests "$@" || status=$?
pan_env_hint
exit "$status"
