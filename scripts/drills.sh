#!/usr/bin/env bash
# Reliability drills on the CPU (a few minutes): SIGKILL of a run after a mid-epoch checkpoint and at
# random moments, a killed DataLoader worker, a killed torchrun worker under --max-restarts, and a
# run across two torchrun launchers as two nodes; each compared with the unbroken run. Prints the
# table that the README's reliability section shows; also the quick start, run three times to check
# that it tests the checkpoint it just trained, and the epoch-level kill of tests/test_train.py: every
# drill, the slow ones (marked drill, left out of bash scripts/test.sh) included. Extra arguments go to pytest.
# Without pytest: python tools/drills.py [--only NAME ...] prints the same table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
exec "$PY" -m pytest -q -o addopts='-ra' tests/test_drills.py tests/test_train.py::test_sigkill_then_resume_completes "$@"
