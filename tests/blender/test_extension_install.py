"""The built extension zip installs and enables the way Blender does it, in every
Blender version we support (bpy 5.3 in .venv53, 5.0 in .venv, 4.5 LTS in .venv45,
4.2 LTS in .venv42).

The zip is built with Blender's own extension tooling (the bl_pkg CLI inside the
bpy wheel, the same one `make build` runs). Each Blender version then runs in its
own subprocess (its venv's Python + bpy) with every Blender user folder pointed at
a temporary directory: add a local user repository, "Install from Disk"
(`extensions.package_install_files`), enable `bl_ext.<repo>.flame_lipsync` with
`addon_utils.enable`, check everything the add-on defines got registered, then
disable it and check everything was unregistered. Nothing touches the test
process or ~/.config/blender.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG_ID = "flame_lipsync"
MAIN_VENV = ROOT / ".venv"
# Blender version (major.minor) -> the venv holding that bpy wheel.
BLENDERS = {"5.3": ROOT / ".venv53", "5.0": MAIN_VENV, "4.5": ROOT / ".venv45", "4.2": ROOT / ".venv42"}
MAKE_TARGET = {"5.3": "make venv53", "5.0": "make venv", "4.5": "make venv45", "4.2": "make venv42"}


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _running_in(venv: Path) -> bool:
    return Path(sys.prefix).resolve() == venv.resolve()


# This test drives every Blender version itself (one subprocess each), so the
# second pytest pass of `make test` (tests/blender under .venv45) need not repeat it.
if not _running_in(MAIN_VENV) and _venv_python(MAIN_VENV).exists():
    pytest.skip("the extension install test drives every Blender version from the .venv run",
                allow_module_level=True)


def _bl_pkg(prefix: Path) -> Path | None:
    """Blender's extension add-on (bl_pkg) inside the bpy wheel of a venv."""
    found = sorted(prefix.glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg"))
    return found[0] if found else None


def _ext_cli(python: Path, bl_pkg: Path, *args: str) -> subprocess.CompletedProcess:
    """Run blender_ext.py as `blender --command extension` does: with Blender's tag list."""
    tags = bl_pkg.parent.parent / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    command = [str(python), str(bl_pkg / "cli" / "blender_ext.py"), args[0],
               "--valid-tags", str(tags), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory) -> Path:
    """The extension zip, built like `make build` (bpy 5.0's CLI when .venv exists)."""
    prefix = MAIN_VENV if _venv_python(MAIN_VENV).exists() else Path(sys.prefix)
    bl_pkg = _bl_pkg(prefix)
    if bl_pkg is None:
        pytest.skip(f"no bpy wheel with Blender's extension CLI under {prefix}: run `make venv`")
    out = tmp_path_factory.mktemp("dist")
    python = _venv_python(prefix) if prefix == MAIN_VENV else Path(sys.executable)
    result = _ext_cli(python, bl_pkg, "build", "--source-dir", str(ROOT), "--output-dir", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    zips = sorted(out.glob("*.zip"))
    assert [z.name for z in zips] == [f"{PKG_ID}-{_manifest_version()}.zip"], result.stdout
    return zips[0]


def _manifest_version() -> str:
    import tomllib
    with open(ROOT / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)["version"]


def test_zip_holds_the_add_on_and_nothing_of_the_development_tree(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    for package in ("core", "operators", "panels"):
        assert f"{package}/__init__.py" in names, f"{package}/ missing from {built_zip.name}"
    assert "core/data/rig_fields.npz" in names
    excluded = ("tests/", "tools/", ".venv", "out/", "dist/", "docs/", ".ci/", ".git",
                "__pycache__/", ".pytest_cache/")
    leaked = [n for n in names if n.startswith(excluded) or "/__pycache__/" in n
              or n.endswith(".pyc") or n in ("Makefile",) or n.startswith("requirements")]
    assert not leaked, f"development files in the extension zip: {leaked}"


# Runs inside the Blender version under test: argv = zip, workdir, checkout root, package id.
PROBE = r'''
import json, os, sys, traceback
zip_path, work, checkout, pkg_id = sys.argv[1:5]
report = {"errors": []}
out = os.path.join(work, "report.json")


def inside(path, root=work):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root


def finish():
    with open(out, "w") as fh:
        json.dump(report, fh, indent=1)
    sys.exit(0)


def addon_classes(module_name):
    """Every Blender class the add-on's modules define: (kind, id, registered)."""
    import bpy
    kinds = ("Operator", "Panel", "Menu", "Header", "UIList", "PropertyGroup", "AddonPreferences")
    bases = tuple(getattr(bpy.types, kind) for kind in kinds)
    found = {}
    for name, mod in list(sys.modules.items()):
        if not (name == module_name or name.startswith(module_name + ".")):
            continue
        for value in vars(mod).values():
            if (isinstance(value, type) and issubclass(value, bases)
                    and value.__module__ == name and value not in bases):
                kind = next(k for k, b in zip(kinds, bases) if issubclass(value, b))
                # Abstract bases (no id / no space) are not meant to be registered.
                if kind == "Operator" and not getattr(value, "bl_idname", ""):
                    continue
                if kind == "Panel" and not getattr(value, "bl_space_type", ""):
                    continue
                ident = getattr(value, "bl_idname", "") or value.__name__
                found[f"{value.__module__}.{value.__qualname__}"] = (kind, ident, value)
    return found


try:
    import bpy
    import addon_utils  # importable once bpy has set up Blender's script paths

    report["bpy"] = bpy.app.version_string
    report["version"] = list(bpy.app.version[:2])
    paths = {
        "USER": bpy.utils.resource_path("USER"),
        "CONFIG": bpy.utils.user_resource("CONFIG"),
        "SCRIPTS": bpy.utils.user_resource("SCRIPTS"),
        "EXTENSIONS": bpy.utils.user_resource("EXTENSIONS"),
    }
    report["user_paths"] = paths
    outside = {k: p for k, p in paths.items() if not inside(p)}
    if outside:
        report["errors"].append(f"Blender user folders outside the temporary directory: {outside}")
        finish()

    prefs = bpy.context.preferences
    repo_dir = os.path.join(work, "repo")
    before = {repo.module for repo in prefs.extensions.repos}
    result = bpy.ops.preferences.extension_repo_add(
        name="lipsync test", type="LOCAL", use_custom_directory=True, custom_directory=repo_dir)
    report["repo_add"] = sorted(result)
    repo = next(repo for repo in prefs.extensions.repos if repo.module not in before)
    report["repo"] = {"module": repo.module, "directory": repo.directory}

    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo=repo.module, enable_on_install=False)
    report["install"] = sorted(result)
    installed = os.path.join(repo.directory, pkg_id)
    report["installed_files"] = sorted(
        os.path.relpath(os.path.join(d, f), installed)
        for d, _, files in os.walk(installed) for f in files)

    module_name = f"bl_ext.{repo.module}.{pkg_id}"
    report["module_name"] = module_name
    enable_errors = []

    def handle_error(ex):
        enable_errors.append("".join(traceback.format_exception(ex)))

    module = addon_utils.enable(module_name, default_set=True, handle_error=handle_error)
    report["enable_errors"] = enable_errors
    report["enabled"] = module is not None and module_name in prefs.addons
    report["module_file"] = getattr(module, "__file__", None)
    report["check"] = list(addon_utils.check(module_name))
    # Every module loaded from the checkout instead of the installed copy.
    report["from_checkout"] = sorted(
        name for name, mod in list(sys.modules.items())
        if getattr(mod, "__file__", None) and inside(mod.__file__, checkout)
        and not inside(mod.__file__, sys.prefix))  # the venv may live in the checkout

    classes = addon_classes(module_name)
    report["classes"] = {}
    for qualname, (kind, ident, cls) in sorted(classes.items()):
        entry = {"kind": kind, "id": ident, "registered": bool(cls.is_registered)}
        if kind == "Operator":
            category, _, name = ident.partition(".")
            try:
                getattr(getattr(bpy.ops, category), name).get_rna_type()
                entry["in_bpy_ops"] = True
            except (AttributeError, KeyError):
                entry["in_bpy_ops"] = False
        report["classes"][qualname] = entry
    report["operators"] = sorted(e["id"] for e in report["classes"].values() if e["kind"] == "Operator")

    disable_errors = []
    addon_utils.disable(module_name, default_set=True,
                        handle_error=lambda ex: disable_errors.append(
                            "".join(traceback.format_exception(ex))))
    report["disable_errors"] = disable_errors
    report["disabled"] = module_name not in prefs.addons
    report["still_registered"] = sorted(
        qualname for qualname, (_, _, cls) in classes.items() if cls.is_registered)
except BaseException:
    report["errors"].append(traceback.format_exc())
finish()
'''


@pytest.mark.parametrize("version", sorted(BLENDERS, reverse=True), ids=lambda v: f"blender-{v}")
def test_built_zip_installs_and_enables(version, built_zip, tmp_path):
    venv = BLENDERS[version]
    python = _venv_python(venv)
    bl_pkg = _bl_pkg(venv)
    if not python.exists() or bl_pkg is None:
        pytest.skip(f"Blender {version} not tested: {venv.name}/ with its bpy wheel is absent "
                    f"(run `{MAKE_TARGET[version]}`, or `make test` which builds it)")

    # This Blender's own tooling accepts the zip (manifest fields, tags, paths).
    result = _ext_cli(python, bl_pkg, "validate", str(built_zip))
    assert result.returncode == 0, result.stdout + result.stderr

    # Every Blender user folder in the temporary directory; nothing leaks home.
    user = tmp_path / "user"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDER_", "PYTHON"))}
    env.update({
        "BLENDER_USER_RESOURCES": str(user),
        "BLENDER_USER_CONFIG": str(user / "config"),
        "BLENDER_USER_SCRIPTS": str(user / "scripts"),
        "BLENDER_USER_DATAFILES": str(user / "datafiles"),
        "BLENDER_USER_EXTENSIONS": str(user / "extensions"),
    })
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    run = subprocess.run([str(python), "-I", str(probe), str(built_zip), str(tmp_path), str(ROOT), PKG_ID],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = f"--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"
    report_path = tmp_path / "report.json"
    assert report_path.exists(), f"Blender {version} probe died (exit {run.returncode})\n{log}"
    report = json.loads(report_path.read_text())
    assert not report["errors"], "\n".join(report["errors"]) + "\n" + log

    assert report["version"] == [int(p) for p in version.split(".")], \
        f"{venv.name}/ holds bpy {report['bpy']}, expected Blender {version}"
    assert report["repo_add"] == ["FINISHED"] and report["install"] == ["FINISHED"], log
    assert "blender_manifest.toml" in report["installed_files"]
    assert "__init__.py" in report["installed_files"]
    assert not any(f.startswith("tests/") for f in report["installed_files"])

    assert not report["enable_errors"], "register() failed:\n" + "\n".join(report["enable_errors"])
    assert report["enabled"], f"{report['module_name']} is not in preferences.addons\n{log}"
    assert report["check"] == [True, True], report["check"]  # default-enabled and loaded
    assert report["module_file"] and Path(report["module_file"]).resolve().is_relative_to(
        Path(report["repo"]["directory"]).resolve()), report["module_file"]
    assert not report["from_checkout"], \
        f"modules imported from the checkout, not the installed extension: {report['from_checkout']}"

    unregistered = [q for q, e in report["classes"].items() if not e["registered"]]
    assert not unregistered, f"classes the add-on defines but register() did not register: {unregistered}"
    missing_ops = [e["id"] for e in report["classes"].values()
                   if e["kind"] == "Operator" and not e["in_bpy_ops"]]
    assert not missing_ops, f"operators not reachable through bpy.ops: {missing_ops}"

    assert not report["disable_errors"], "unregister() failed:\n" + "\n".join(report["disable_errors"])
    assert report["disabled"]
    assert not report["still_registered"], f"left registered after disable: {report['still_registered']}"
    print(f"Blender {report['bpy']}: installed {built_zip.name}, enabled {report['module_name']}, "
          f"operators {report['operators'] or 'none yet'}")


def test_blender45_pins_match_the_main_pins_except_bpy():
    """requirements-blender45.txt repeats requirements.txt with another bpy; keep them in step."""
    def pins(name):
        lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
        return {line.split("==")[0].lower(): line for line in lines if line}
    main, lts = pins("requirements.txt"), pins("requirements-blender45.txt")
    assert lts.pop("bpy").startswith("bpy==4.5.") and main.pop("bpy")
    assert lts == main, "requirements-blender45.txt drifted from requirements.txt (other than bpy)"


def test_zip_holds_no_training_code(built_zip):
    """Training, datasets, corpus and augmentation live in training/, which is not shipped;
    the shipped models/ holds inference only."""
    names = zipfile.ZipFile(built_zip).namelist()
    assert not [n for n in names if n.startswith("training/")]
    shipped = {Path(n).name for n in names if n.startswith("models/")}
    for training_file in ("train.py", "augment.py", "vocaset.py", "corpus.py", "losses.py", "sentences.txt"):
        assert training_file not in shipped, f"models/{training_file} in {built_zip.name}"
    assert {"voca.py", "config.py", "numpy_inference.py", "features.py", "engine.py"} <= shipped
