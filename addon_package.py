"""Import this checkout as the add-on package `flame_lipsync` outside Blender's
extension system (tests, cli.py), so its relative imports work as installed."""
import importlib.util
import sys
from pathlib import Path

PACKAGE = "flame_lipsync"
ROOT = Path(__file__).resolve().parent


def load_addon():
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module
