import pytest

try:  # the checkout is the package `flame_lipsync`, linked into the environment by `make venv`
    from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS
except ModuleNotFoundError as err:
    raise pytest.UsageError(f"{err}: run the tests through `make test` (it links the checkout "
                            "into .venv as the package flame_lipsync)") from None


def _require(path):
    if not path.exists():
        pytest.skip(f"shared assets not found at {path} (clone the project beside ../shared)")
    return path


@pytest.fixture
def flame_dir():
    return _require(FLAME_ASSETS)


@pytest.fixture
def speech_dir():
    return _require(SPEECH_ASSETS)


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """After everything is reported, leave without Blender's teardown: the bpy 4.5
    module hangs in its C++ static destructors at interpreter exit (and 4.2
    segfaults), which would stall `make test` after a green run."""
    import os
    import sys
    if "bpy" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
