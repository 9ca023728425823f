"""The house's map holds: one import root, imports in one direction.

Read from the modules' own import statements (ast), so adding a forbidden import
fails here; and from a real bake's sys.modules, so a module loaded twice under two
names (the checkout as `core...` and as `flame_lipsync.core...`) fails too."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flame_lipsync.core.flame import FLAME_ASSETS, PROJECT_ROOT, SPEECH_ASSETS

PACKAGE = "flame_lipsync"
ROOMS = ("core", "models", "pipeline", "blender", "operators", "panels", "training", "tools")
# room -> rooms (or bpy) it must never import
FORBIDDEN = {
    "core": {"models", "pipeline", "blender", "operators", "panels", "training", "tools", "bpy"},
    "models": {"pipeline", "blender", "operators", "panels", "training", "tools", "bpy"},
    "pipeline": {"blender", "operators", "panels", "training", "tools", "bpy"},
    "blender": {"operators", "panels", "training", "tools"},
    "operators": {"panels", "training", "tools"},
    "panels": {"operators", "training", "tools"},
    "training": {"blender", "operators", "panels"},  # dev code: it may use tools/ (the eval)
}


def imports_of(path: Path) -> set[str]:
    """Absolute names of what a module imports (relative imports resolved)."""
    package = ".".join((PACKAGE,) + path.relative_to(PROJECT_ROOT).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names.add(stem)
            names.update(f"{stem}.{alias.name}" for alias in node.names)
    return names


def room_of(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] == "bpy":
        return "bpy"
    if parts[0] == PACKAGE and len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return None


def test_rooms_import_in_one_direction():
    broken = []
    for room, forbidden in FORBIDDEN.items():
        for path in sorted((PROJECT_ROOT / room).rglob("*.py")):
            for name in imports_of(path):
                if room_of(name) in forbidden:
                    broken.append(f"{path.relative_to(PROJECT_ROOT)} imports {name}")
    assert not broken, "\n".join(broken)


def adds_the_checkout(call: str) -> bool:
    """sys.path edits that put the project on the path (others, like the bpy wheel's own
    bl_pkg CLI folder or the artist's site-packages, are not a second import root)."""
    return any(word in call for word in ("ROOT", "root", "__file__", "'.'", '""', "parent"))


def test_one_import_root_in_every_file():
    """No sys.path edits, no second root: nothing imports `core`, `models`, ... at the top level."""
    offenders = []
    for path in sorted(PROJECT_ROOT.rglob("*.py")):
        rel = path.relative_to(PROJECT_ROOT)
        if rel.parts[0].startswith((".", "out", "dist", "wheels")):
            continue
        source = path.read_text()
        tree = ast.parse(source, str(path))
        for name in imports_of(path):
            if name.split(".")[0] in ROOMS or name.split(".")[0] == "addon_package":
                offenders.append(f"{rel}: imports {name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("insert", "append")
                    and ast.unparse(node.func.value) == "sys.path"
                    and adds_the_checkout(ast.unparse(node))):
                offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)


def test_the_layout_test_sees_a_forbidden_import(tmp_path):
    """The scan is not blind: a core module importing operators is caught."""
    fake = PROJECT_ROOT / "core" / "_layout_probe.py"
    fake.write_text("from ..operators import bake\nimport bpy\n")
    try:
        names = imports_of(fake)
    finally:
        fake.unlink()
    assert {room_of(n) for n in names} >= {"operators", "bpy"}


BAKE = r'''
import json, sys
from pathlib import Path
import bpy
import flame_lipsync
flame_lipsync.register()
from flame_lipsync.operators import headless
out, audio, head = sys.argv[1:4]
print(headless.bake(audio, head, out, engine="phonetic"))
modules = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
with open(Path(out).with_suffix(".json"), "w") as handle:
    json.dump(modules, handle)
sys.stdout.flush()
import os
os._exit(0)  # bpy 4.5 can hang in its static destructors at interpreter exit
'''


def test_a_bake_loads_every_module_once(tmp_path):
    head, audio = FLAME_ASSETS / "flame_template.ply", SPEECH_ASSETS / "english.wav"
    if not head.is_file() or not audio.is_file():
        pytest.skip("shared assets not found beside the project")
    out = tmp_path / "shot.blend"
    run = subprocess.run([sys.executable, "-c", BAKE, str(out), str(audio), str(head)],
                         capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    modules = json.loads(out.with_suffix(".json").read_text())
    ours = {}
    for name, file in modules.items():
        resolved = Path(file).resolve() if file and file.endswith(".py") else None  # via the .venv link
        if resolved and resolved.is_relative_to(PROJECT_ROOT) and ".venv" not in resolved.relative_to(PROJECT_ROOT).parts[0]:
            ours.setdefault(str(resolved), []).append(name)
    twice = {file: names for file, names in ours.items() if len(names) > 1}
    assert not twice, twice
    assert all(name.split(".")[0] == PACKAGE for names in ours.values() for name in names), ours
    assert {"flame_lipsync.pipeline", "flame_lipsync.core.rig", "flame_lipsync.operators.bake"} <= {
        n for names in ours.values() for n in names}
