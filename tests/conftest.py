import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.flame import FLAME_ASSETS, SPEECH_ASSETS  # noqa: E402


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared assets not found at {path} (clone the project beside ../shared)")
    return path


@pytest.fixture
def flame_dir() -> Path:
    return _require(FLAME_ASSETS)


@pytest.fixture
def speech_dir() -> Path:
    return _require(SPEECH_ASSETS)
