"""Exit 0 when the running Python satisfies a requirements file, 1 otherwise.

Understands the forms requirements.txt uses: bare names, `name==version`, `name>=version`,
and `-e .` (this project installed editable: its `ops` package must import from this checkout).
Used by scripts/setup_env.sh to decide whether a venv is needed.
"""
import importlib.util
import os
import re
import sys
from importlib import metadata

PROJECT_PACKAGES = ('ops', 'archs', 'tools')


def _version_tuple(text: str) -> tuple:
    """'2.14.1+cu130' -> (2, 14, 1): local labels and suffixes ignored."""
    parts = []
    for piece in text.split('+')[0].split('.'):
        digits = re.match(r'\d+', piece)
        if not digits:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def project_installed(repo: str) -> bool:
    """True when this checkout's packages import from anywhere (not only from its root)."""
    for name in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(name)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not any(os.path.realpath(p) == os.path.realpath(os.path.join(repo, name)) for p in locations):
            return False
    return True


def unmet(requirements_path: str) -> list:
    """Requirement lines the current interpreter does not satisfy."""
    missing = []
    repo = os.path.dirname(os.path.abspath(requirements_path))
    for raw in open(requirements_path):
        line = raw.split('#')[0].strip()
        if not line:
            continue
        if line == '-e .':
            if not project_installed(repo):
                missing.append(f'{line} (this project, {repo}, is not installed)')
            continue
        match = re.fullmatch(r'([A-Za-z0-9_.\-]+)\s*(==|>=)?\s*([\w.]+)?', line)
        if not match:
            missing.append(f'{line} (cannot parse)')
            continue
        name, op, wanted = match.groups()
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if op == '==' and _version_tuple(have) != _version_tuple(wanted):
            missing.append(f'{line} (found {have})')
        elif op == '>=' and _version_tuple(have) < _version_tuple(wanted):
            missing.append(f'{line} (found {have})')
    return missing


if __name__ == '__main__':
    problems = unmet(sys.argv[1])
    for problem in problems:
        print(f'  not satisfied: {problem}')
    sys.exit(1 if problems else 0)
