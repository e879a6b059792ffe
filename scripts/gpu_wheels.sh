#!/usr/bin/env bash
# Download, into .whl/ (ignored by git), the wheels scripts/gpu_check.sh installs on a GPU machine
# that has its own PyTorch but lacks this project's other packages and cannot reach PyPI: PyAV,
# tensorboardX and lmdb for CPython 3.12 on x86-64 Linux (the lent machines' Python). Run it here,
# where PyPI is reachable, then carry .whl with the working tree.
#   bash scripts/gpu_wheels.sh [PYTHON_VERSION]     (default 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.12}"
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
PY="${PY:-$(command -v python3 || command -v python)}"
# versions pinned to what this project is tested with here (requirements.txt installs the newest)
for pkg in av==18.1.0 tensorboardX==2.6.5 lmdb==3.0.0; do
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
        "${platforms[@]}" -d .whl "$pkg"
done
ls -l .whl
