# Sourced by the entry scripts: sets $PY to a Python that satisfies requirements.txt.
# Uses the active interpreter when it already does, otherwise creates/updates .venv.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_req="$_repo/requirements.txt"
_sys_py="$(command -v python3 || command -v python)"
if [ -z "$_sys_py" ]; then
    echo "setup_env: no python3 on PATH; install Python 3.11 first" >&2
    return 1 2>/dev/null || exit 1
fi
if "$_sys_py" "$_repo/scripts/check_env.py" "$_req" >/dev/null 2>&1; then
    PY="$_sys_py"
else
    _venv="$_repo/.venv"
    if ! { [ -x "$_venv/bin/python" ] && "$_venv/bin/python" "$_repo/scripts/check_env.py" "$_req" >/dev/null 2>&1; }; then
        echo "setup_env: creating $_venv from requirements.txt (first run takes a few minutes)"
        [ -x "$_venv/bin/python" ] || "$_sys_py" -m venv "$_venv" || { echo "setup_env: python3 -m venv failed" >&2; return 1 2>/dev/null || exit 1; }
        "$_venv/bin/python" -m pip install --upgrade --quiet pip >/dev/null 2>&1 || true
        # from the repo root: the requirement `-e .` names this checkout
        (cd "$_repo" && "$_venv/bin/python" -m pip install --quiet -r "$_req") || { echo "setup_env: pip install -r requirements.txt failed" >&2; return 1 2>/dev/null || exit 1; }
    fi
    PY="$_venv/bin/python"
fi
export PY
# After the two commands: the README's commands need this same Python (see "After the two commands").
pan_env_hint() {
    if [ "$PY" != "$_sys_py" ] && [ "${VIRTUAL_ENV:-}" != "$_repo/.venv" ]; then
        echo "=> the README's other commands use this project's environment: first run  source .venv/bin/activate"
    fi
}
