import pytest

try:  # the checkout is the package `flame_lipsync`, linked into the environment by `make venv`
    from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS
except ModuleNotFoundError as err:
    raise pytest.UsageError(f"{err}: run the tests through `make test` (it links the checkout "
                            "into .venv as the package flame_lipsync)") from None


@pytest.fixture(autouse=True)
def fresh_recognition(monkeypatch):
    """Every call recognises afresh: a test comparing two calls (serial against parallel,
    before against after) must compare two decodes, not one remembered result. The test
    of the memory itself turns it back on."""
    from flame_lipsync.core import phones
    monkeypatch.setattr(phones, "REMEMBERED", 0)
    phones.forget_recent()


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


def _record_versions(config):
    """Name this run's Python and Blender in its JUnit XML (`--junitxml`) for
    tools/support_table.py. Not record_testsuite_property: under xdist that fixture runs
    on the workers, and only the controller writes the XML."""
    import platform
    import sys
    try:
        from _pytest.junitxml import xml_key  # where pytest keeps its --junitxml writer
    except ImportError:
        return  # another pytest: the table falls back to the file's name
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("python_version", platform.python_version())
    if "bpy" in sys.modules:  # "4.5.15 LTS"
        xml.add_global_property("blender_version", sys.modules["bpy"].app.version_string)
        return
    from importlib import metadata  # the xdist controller never imports bpy: its wheel says
    try:
        xml.add_global_property("blender_version", metadata.version("bpy"))
    except metadata.PackageNotFoundError:
        pass


_exit_status = 0


@pytest.hookimpl(tryfirst=True)  # before the JUnit XML is written
def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)
    _record_versions(session.config)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """After everything is reported, leave without Blender's teardown: the bpy 4.5
    module hangs in its C++ static destructors at interpreter exit (and 4.2
    segfaults), which would stall `make test` after a green run."""
    import os
    import sys
    if hasattr(config, "workerinput"):
        return  # an xdist worker (make test runs those on bpy 5.x only): exits on its own
    if "bpy" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
