"""Shared test set-up: import the project from its checkout and keep runs small and CPU-bound."""
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / 'fixtures'
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope='session')
def fixture_json():
    """Load a reference fixture from tests/fixtures by file name."""
    def load(name: str):
        with open(FIXTURES / name) as f:
            return json.load(f)
    return load


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub cache, so ImageNet weights come only from files a test puts there."""
    import torch
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    return tmp_path
