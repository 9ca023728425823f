"""Inside an artist's Blender only Blender's bundle (numpy, `aud`) and the extension's
wheels (pocketsphinx, soxr) may be needed. Proof, in subprocesses whose Python cannot
import torch, librosa or soundfile (a meta-path blocker loaded by a sitecustomize on
PYTHONPATH), on the Blender of the running venv (`make test` runs tests/blender under
bpy 5.0 and 4.5; any other bpy venv works the same way):

- every engine in core.engines.ENGINES bakes through the add-on's operator, on the CPU,
  with the bundled wheels ("bundled") and with soxr blocked too ("bare": numpy resampler),
  and the bake imports no third-party module beyond numpy and the bundled wheels;
- `python cli.py bake` bakes with every engine;
- the preferences report what is missing, add and remove a studio's site-packages, pick
  the device, and refuse to download torch while Blender's online access is off;
- the built zip for this platform, installed the way Blender installs extensions, bakes
  with pocketsphinx and soxr taken from its own bundled wheels (skipped until
  `make wheels` has fetched them).
"""
import json
import os
import platform
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from flame_lipsync.core.flame import FLAME_ASSETS, PROJECT_ROOT, SPEECH_ASSETS  # noqa: E402

ROOT = PROJECT_ROOT
LIBRIVOX = SPEECH_ASSETS / "librivox" / "sense_and_sensibility_01_austen_64kb-0880"  # 16 kHz
ENGLISH = SPEECH_ASSETS / "english.wav"    # 44.1 kHz: resampled
CHINESE = SPEECH_ASSETS / "chinese.flac"   # FLAC, 48 kHz: decoded by aud without soundfile
TEMPLATE = FLAME_ASSETS / "flame_template.ply"

OPTIONAL = ("torch", "librosa", "soundfile")  # never needed inside Blender
BUNDLED = ("pocketsphinx", "soxr")             # the extension's wheels
BLENDER_BUNDLE = ("numpy",)                    # what Blender ships besides bpy/aud

SITECUSTOMIZE = r'''
import atexit, importlib.abc, importlib.machinery, json, os, sys

BLOCKED = set(filter(None, os.environ.get("LIPSYNC_TEST_BLOCK", "").split(",")))
ONLY_FROM = os.environ.get("LIPSYNC_TEST_WHEELS_FROM", "")          # folder, or ""
ONLY = set(filter(None, os.environ.get("LIPSYNC_TEST_WHEELS", "").split(",")))


class Blocker(importlib.abc.MetaPathFinder):
    """`import torch` etc. fail as in a Python without them; the bundled wheels (when
    LIPSYNC_TEST_WHEELS_FROM is set) are found only under that folder."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{name}' (blocked by the test)", name=name)
        if ONLY_FROM and name in ONLY:
            where = [p for p in sys.path if os.path.realpath(p).startswith(os.path.realpath(ONLY_FROM))]
            spec = importlib.machinery.PathFinder.find_spec(name, where)
            if spec is None:
                raise ModuleNotFoundError(f"No module named '{name}' under {ONLY_FROM}", name=name)
            return spec
        return None


sys.meta_path.insert(0, Blocker())


@atexit.register
def _dump():
    out = os.environ.get("LIPSYNC_TEST_MODULES")
    if out:
        with open(out, "w") as fh:
            json.dump({n: getattr(sys.modules[n], "__file__", None)
                       for n in {m.partition(".")[0] for m in list(sys.modules)} if n in sys.modules}, fh)
'''


def third_party(loaded: dict) -> set:
    """The site-packages entries (package folders, single-file modules) that the loaded
    modules come from; Blender's own (inside the bpy wheel: its scripts and bundled
    add-ons such as bl_pkg) do not count."""
    found = set()
    for origin in loaded.values():
        parts = Path(origin).parts if origin else ()
        if "site-packages" in parts:
            inside = parts[parts.index("site-packages") + 1:]
            entry = inside[0].split(".")[0] if len(inside) > 1 else inside[0].split(".")[0]
            if entry and entry not in ("bpy", "flame_lipsync"):  # flame_lipsync: the checkout, linked
                found.add(entry)
    return found


def blocker_env(tmp_path, blocked, **extra) -> dict:
    folder = tmp_path / "blocker"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_", "LIPSYNC_TEST"))}
    env.update(PYTHONPATH=str(folder), LIPSYNC_TEST_BLOCK=",".join(blocked), **extra)
    return env


def need_assets():
    for path in (TEMPLATE, LIBRIVOX.with_suffix(".wav"), ENGLISH, CHINESE):
        if not path.is_file():
            pytest.skip(f"shared assets not found ({path})")


def run_script(script, args, env, cwd, timeout=600):
    run = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, cwd=str(cwd),
                         capture_output=True, text=True, timeout=timeout)
    return run, f"--- exit {run.returncode}\n--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"


# --- the add-on's operator, every engine ------------------------------------------

BAKE = r'''
import json, os, sys
root, out, template, librivox, english, chinese = sys.argv[1:7]
import bpy
baseline = set(sys.modules)
import flame_lipsync as addon
addon.register()
from flame_lipsync.pipeline.engines import ENGINES
from flame_lipsync.blender import environment
from flame_lipsync.operators import headless
try:
    import aud
except ImportError:
    aud = None

report = {"blender": bpy.app.version_string, "engines": list(ENGINES), "bakes": [], "errors": []}
cases = [(librivox + ".wav", librivox + ".txt"), (english, None), (chinese, None)]
# Every engine once and every decoder path (16 kHz WAV + transcript, 44.1 kHz WAV, FLAC)
# once: decoding happens before the engine, so the pairs need not be crossed.
names = list(ENGINES)
pairs = [(names[i % len(names)], cases[i % len(cases)]) for i in range(max(len(names), len(cases)))]
for engine, (audio, transcript) in pairs:
    obj = headless.open_head(template, None)
    props = bpy.context.scene.flame_lipsync
    props.source, props.audio_file, props.engine = "FILE", audio, engine
    props.transcript = open(transcript).read() if transcript else ""
    props.transcript_beside_audio = False
    props.bake_mode = "SHAPE_KEYS"
    entry = {"engine": engine, "audio": audio}
    try:
        entry["result"] = sorted(bpy.ops.flame_lipsync.generate("EXEC_DEFAULT"))
        keys = obj.data.shape_keys
        entry["shape_keys"] = sum(k.name.startswith("LS_") for k in keys.key_blocks) if keys else 0
        action = keys.animation_data.action if keys and keys.animation_data else None
        entry["action"] = action.name if action else None
        entry["frames"] = [int(x) for x in action.frame_range] if action else None
    except RuntimeError as err:
        entry["result"] = ["ERROR"]
        entry["message"] = str(err)
    report["bakes"].append(entry)
report["aud"] = aud is not None
report["device_auto"] = environment.torch_device("AUTO")
try:
    environment.torch_device("GPU")
    report["device_gpu"] = "no error"
except RuntimeError as err:
    report["device_gpu"] = str(err)
new = {n.partition(".")[0] for n in set(sys.modules) - baseline}
report["new_modules"] = {n: getattr(sys.modules.get(n), "__file__", None) for n in sorted(new)}
report["files"] = {n: getattr(sys.modules.get(n), "__file__", None) for n in ("pocketsphinx", "soxr", "numpy")}
addon.unregister()
with open(out, "w") as fh:
    json.dump(report, fh, indent=1)
sys.stdout.flush()
os._exit(0)  # the bpy 4.2 module segfaults at interpreter exit (a dynamic EnumProperty was registered)
'''


@pytest.mark.parametrize("variant, blocked", [("bundled", OPTIONAL), ("bare", OPTIONAL + ("soxr",))],
                         ids=["bundled-wheels", "no-soxr"])
def test_every_engine_bakes_without_optional_packages(tmp_path, variant, blocked):
    need_assets()
    out = tmp_path / "report.json"
    run, log = run_script(BAKE, [ROOT, out, TEMPLATE, LIBRIVOX, ENGLISH, CHINESE],
                          blocker_env(tmp_path, blocked), tmp_path)
    assert run.returncode == 0 and out.is_file(), log
    report = json.loads(out.read_text())
    assert report["engines"], "no engine registered"
    assert len(report["bakes"]) == max(3, len(report["engines"]))
    assert {b["engine"] for b in report["bakes"]} == set(report["engines"])
    assert len({b["audio"] for b in report["bakes"]}) == 3
    for bake in report["bakes"]:
        if bake["audio"].endswith(".flac") and not report["aud"]:
            # This bpy build has no audaspace: FLAC needs soundfile, and the message says so.
            assert bake["result"] == ["ERROR"] and "only WAV and AIFF" in bake["message"], bake
            continue
        assert bake["result"] == ["FINISHED"], (bake, log)
        assert bake["shape_keys"] == 17 and bake["action"] and bake["frames"][1] > bake["frames"][0], bake
    assert report["device_auto"] == "cpu"
    assert "PyTorch cannot be imported" in report["device_gpu"]

    allowed = set(BLENDER_BUNDLE) | (set(BUNDLED) - set(blocked))
    imported = third_party(report["new_modules"])
    assert not imported & set(blocked), f"blocked modules were imported: {imported & set(blocked)}"
    assert imported <= allowed, f"the bake imported {sorted(imported - allowed)} beyond Blender's bundle and the wheels"
    assert "pocketsphinx" in imported
    print(f"Blender {report['blender']} ({variant}): {len(report['bakes'])} bakes, imported {sorted(imported)}")


# --- the CLI ------------------------------------------------------------------------

def engines():
    from flame_lipsync.pipeline.engines import ENGINES
    return list(ENGINES)


@pytest.mark.parametrize("engine", engines())
def test_cli_bake_without_torch_and_librosa(tmp_path, engine):
    need_assets()
    modules = tmp_path / "modules.json"
    env = blocker_env(tmp_path, OPTIONAL, LIPSYNC_TEST_MODULES=str(modules))
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr  # the blocker works
    for mode, audio in (("shapekeys", LIBRIVOX.with_suffix(".wav")), ("meshcache", ENGLISH)):
        out = tmp_path / mode / "shot.blend"
        run = subprocess.run([sys.executable, "cli.py", "bake", "--audio", str(audio), "--head", str(TEMPLATE),
                              "--out", str(out), "--engine", engine, "--mode", mode],
                             env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        assert out.is_file() and "Traceback" not in run.stderr
        imported = third_party(json.loads(modules.read_text()))
        assert not imported & set(OPTIONAL), imported
    assert list((tmp_path / "meshcache").glob("*.pc2"))


# --- preferences: what was found, paths, device, no download offline ---------------

PREFS = r'''
import json, os, sys
root, out, studio, venv_root, wrong_env = sys.argv[1:6]
import bpy, addon_utils
import flame_lipsync as addon
addon_utils._addon_ensure("flame_lipsync")   # what enabling from Preferences creates
addon.register()
from flame_lipsync.blender import environment
report = {}
env = environment.detect(refresh=True)
report["packages"] = {k: [v.version, v.note] for k, v in env.packages.items()}
report["python"], report["aud"] = env.python, env.aud
prefs = environment.preferences()
prefs.extra_site_packages = studio
report["studio_on_path"] = studio in sys.path
import studio_only_module
report["studio_import"] = studio_only_module.VALUE
prefs.extra_site_packages = venv_root
report["venv_resolved"] = environment.resolve_site_packages(venv_root)
report["studio_after_change"] = studio in sys.path
report["wrong_env"] = environment.resolve_site_packages(wrong_env)[1]
report["missing"] = environment.resolve_site_packages(os.path.join(studio, "nowhere"))[1]
prefs.device = "CPU"
report["device_cpu"] = environment.torch_device()


class Layout:
    """Stands in for bpy's UILayout (none exists without a window): records labels."""
    labels = []
    enabled = True
    scale_y = 1.0

    def __getattr__(self, name):  # box(), column(), row(), ...
        return lambda *args, **kwargs: Layout()

    def label(self, text="", icon="NONE"):
        Layout.labels.append(text)

    def prop(self, data, name, **kwargs):
        assert hasattr(data, name), name

    def operator(self, idname, **kwargs):
        category, _, op = idname.partition(".")
        getattr(getattr(bpy.ops, category), op).get_rna_type()
        return type("Properties", (), {})()


from flame_lipsync.panels.preferences import FlameLipSyncPreferences
view = type("View", (), {"layout": Layout(), "device": prefs.device, "torch_variant": prefs.torch_variant,
                         "extra_site_packages": prefs.extra_site_packages, "key_tolerance": prefs.key_tolerance})()
FlameLipSyncPreferences.draw(view, bpy.context)
report["labels"] = Layout.labels
report["online_access"] = bpy.app.online_access
try:
    bpy.ops.flame_lipsync.install_torch("EXEC_DEFAULT", variant="CPU")
    report["install"] = "ran"
except RuntimeError as err:
    report["install"] = str(err)
report["install_target"] = os.listdir(environment.user_site_packages() or root) if environment.user_site_packages() else None
bpy.ops.flame_lipsync.refresh_environment(probe=True)
added = list(environment._added)
addon.unregister()
report["added"] = added
report["left_on_path"] = [p for p in added if p in sys.path]
with open(out, "w") as fh:
    json.dump(report, fh, indent=1)
sys.stdout.flush()
os._exit(0)  # the bpy 4.2 module segfaults at interpreter exit (a dynamic EnumProperty was registered)
'''


def test_preferences_report_paths_and_refuse_download_offline(tmp_path):
    studio = tmp_path / "studio_site"
    (studio / "studio_only_module").mkdir(parents=True)
    (studio / "studio_only_module" / "__init__.py").write_text("VALUE = 42\n")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    venv_root = tmp_path / "studio_venv"
    (venv_root / "lib" / version / "site-packages").mkdir(parents=True)
    wrong = tmp_path / "old_env"
    (wrong / "lib" / "python3.10" / "site-packages").mkdir(parents=True)
    out = tmp_path / "report.json"
    run, log = run_script(PREFS, [ROOT, out, studio, venv_root, wrong], blocker_env(tmp_path, OPTIONAL), tmp_path)
    assert run.returncode == 0 and out.is_file(), log
    report = json.loads(out.read_text())
    packages = report["packages"]
    assert packages["pocketsphinx"][0] and packages["soxr"][0]
    for name in OPTIONAL:
        assert packages[name][0] is None and "blocked" in packages[name][1], (name, packages[name])
    assert report["studio_on_path"] and report["studio_import"] == 42
    assert not report["studio_after_change"]          # changing the folder removes the old one
    assert report["venv_resolved"][0] == str(venv_root / "lib" / version / "site-packages")
    assert report["wrong_env"] and "python3.10" in report["wrong_env"][0]
    assert report["missing"] and "is not a folder" in report["missing"][0]
    assert report["device_cpu"] == "cpu"
    assert report["online_access"] is False           # the bpy module starts offline
    assert "online access is off" in report["install"]
    assert report["added"] and not report["left_on_path"]   # disable removes what enable added
    labels = "\n".join(report["labels"])                     # what the preferences show
    assert f"Python {sys.version.split()[0]}" in labels and "pocketsphinx 5.1.1" in labels
    assert "torch: not found" in labels and "librosa: not found" in labels
    assert "Online access is off" in labels or "Only for the installed extension" in labels
    print(labels)


def test_torch_download_job_progress_errors_and_cancel(tmp_path):
    """The pip job without a network: a fake pip that prints what pip prints."""
    from flame_lipsync.blender import environment

    def job(script):
        command = [sys.executable, "-c", textwrap.dedent(script)]
        return environment.TorchInstall(str(tmp_path / "site-packages"), command).start()

    ok = job("""
        print("Collecting torch>=2.2")
        for i in range(0, 101, 20):
            print(f"Progress {i} of 100", flush=True)
        print("Installing collected packages: torch")
        print("Successfully installed torch-2.13.0")
    """)
    ok.wait(60)
    assert ok.done and ok.error is None and ok.progress == 1.0
    log = Path(ok.log_path).read_text().splitlines()
    assert sum(line.startswith("Progress") for line in log) == 6

    offline = job("""
        import sys
        print("WARNING: Retrying ... Failed to establish a new connection: [Errno 101] Network is unreachable")
        print("ERROR: Could not find a version that satisfies the requirement torch>=2.2 (from versions: none)")
        sys.exit(1)
    """)
    offline.wait(60)
    assert offline.error and "could not be reached" in offline.error and offline.log_path in offline.error
    assert "Extra Site-Packages" in offline.error

    none = job("""
        import sys
        print("ERROR: No matching distribution found for torch>=2.2")
        sys.exit(1)
    """)
    none.wait(60)
    assert "no PyTorch build for Python" in none.error

    slow = job("""
        import time
        print("Collecting torch>=2.2", flush=True)
        time.sleep(60)
    """)
    slow.cancel()
    slow.wait(30)
    assert slow.done and slow.cancelled and "cancelled" in slow.error

    command = environment.torch_install_command(str(tmp_path), "CUDA", (24, 0), python="python")
    assert "--target" in command and "--progress-bar" not in command  # pip 24.0 has no "raw"
    if sys.platform != "darwin":
        assert environment.TORCH_INDEX["CUDA"] in command
    assert "raw" in environment.torch_install_command(str(tmp_path), "CPU", (25, 1))


# --- the manifest's wheels ------------------------------------------------------------

def manifest():
    with open(ROOT / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)


def wheel_fields(wheel):
    name, version, python, abi, platforms = Path(wheel).stem.split("-")
    return name, version, python, abi, platforms


def covers(python, abi, version):
    """Would Blender's Python `version` (3, x) install a wheel with these tags?"""
    tagged = (int(python[2]), int(python[3:]))
    return tagged == version or (abi == "abi3" and tagged <= version)


@pytest.fixture(scope="module")
def bl_pkg_cli():
    found = sorted(Path(sys.prefix).glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli"))
    if not found:
        pytest.skip("no bl_pkg CLI in this bpy wheel")
    sys.path.insert(0, str(found[0]))
    import blender_ext
    yield blender_ext
    sys.path.remove(str(found[0]))


def test_each_platform_gets_every_bundled_package_for_python_311_and_313(bl_pkg_cli):
    data = manifest()
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower()] = version
    wheels = data["wheels"]
    assert {wheel_fields(w)[0] for w in wheels} == set(BUNDLED)
    for wheel in wheels:
        name, version, *_ = wheel_fields(wheel)
        assert pins[name] == version, f"{Path(wheel).name}: requirements.txt pins {name}=={pins[name]}"
    for platform_name in data["platforms"]:
        for package in BUNDLED:
            for python in ((3, 11), (3, 13)):
                matching = [w for w in wheels if wheel_fields(w)[0] == package
                            and platform_name in bl_pkg_cli.blender_platforms_from_wheel_platform(wheel_fields(w)[4])
                            and covers(wheel_fields(w)[2], wheel_fields(w)[3], python)]
                assert len(matching) == 1, (platform_name, package, python, matching)


# --- the installed zip uses its own wheels -------------------------------------------

INSTALLED = r'''
import importlib, json, os, sys
zip_path, work, template, librivox, english, out, wheels = sys.argv[1:8]
import bpy, addon_utils
report = {"errors": [], "bakes": []}
prefs = bpy.context.preferences
before = {r.module for r in prefs.extensions.repos}
bpy.ops.preferences.extension_repo_add(name="lipsync test", type="LOCAL", use_custom_directory=True,
                                       custom_directory=os.path.join(work, "repo"))
repo = next(r for r in prefs.extensions.repos if r.module not in before)
report["install"] = sorted(bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo=repo.module, enable_on_install=False))
name = f"bl_ext.{repo.module}.flame_lipsync"
errors = []
addon_utils.enable(name, default_set=True, handle_error=lambda ex: errors.append(repr(ex)))
report["enable_errors"] = errors
load_head = importlib.import_module(name + ".core.mesh_io").load_head
engines = importlib.import_module(name + ".pipeline.engines").ENGINES
environment = importlib.import_module(name + ".blender.environment")
vertices, faces = load_head(template)


def new_head():
    # Not headless.open_head: its factory reset would also reset the preferences,
    # disabling the extension under test.
    mesh = bpy.data.meshes.new("Head")
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    obj = bpy.data.objects.new("Head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    return obj


cases = ((librivox + ".wav", librivox + ".txt"), (english, None))
for i, engine in enumerate(engines):  # every engine once, both WAV paths among them
    audio, transcript = cases[i % len(cases)]
    obj = new_head()
    props = bpy.context.scene.flame_lipsync
    props.source, props.audio_file, props.engine = "FILE", audio, engine
    props.transcript = open(transcript).read() if transcript else ""
    props.transcript_beside_audio = False
    try:
        result = sorted(bpy.ops.flame_lipsync.generate("EXEC_DEFAULT"))
    except RuntimeError as err:
        result = [str(err)]
    keys = obj.data.shape_keys
    report["bakes"].append({"engine": engine, "audio": audio, "result": result,
                            "shape_keys": sum(k.name.startswith("LS_") for k in keys.key_blocks) if keys else 0})
report["files"] = {n: getattr(sys.modules.get(n), "__file__", None) for n in ("pocketsphinx", "soxr")}
cli = importlib.import_module(name + ".cli")   # dev commands say they need the checkout
report["dev_commands"] = []
for dev in ("tools.evaluate", "tools.contact_sheets", "training.train"):
    try:
        cli.dev_module(dev)
        report["dev_commands"].append("imported")
    except RuntimeError as err:
        report["dev_commands"].append(str(err))
report["user_site_packages"] = environment.user_site_packages()

# The preferences' download, offline: a local wheel stands in for torch, online access is
# granted, and pip (this Python's) installs it into the extension's user folder.
environment.online_access = lambda: True
environment.TORCH_REQUIREMENT = "fakelib"
pip_command = environment.torch_install_command
environment.torch_install_command = lambda *a, **k: pip_command(*a, **k) + ["--no-index", "--find-links", wheels]
try:
    report["download"] = sorted(bpy.ops.flame_lipsync.install_torch("EXEC_DEFAULT", variant="CPU"))
except RuntimeError as err:
    report["download"] = [str(err)]
import fakelib
report["fakelib"] = fakelib.__file__
report["extensions_dir"] = bpy.utils.user_resource("EXTENSIONS")
addon_utils.disable(name, default_set=True)
with open(out, "w") as fh:
    json.dump(report, fh, indent=1)
sys.stdout.flush()
os._exit(0)  # the bpy 4.2 module segfaults at interpreter exit (a dynamic EnumProperty was registered)
'''


def fake_wheel(tmp_path) -> Path:
    """A one-module wheel in a folder pip can install from without a network."""
    import base64
    import hashlib
    import zipfile
    folder = tmp_path / "wheels"
    folder.mkdir()
    files = {"fakelib/__init__.py": b"VALUE = 7\n",
             "fakelib-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: fakelib\nVersion: 1.0\n",
             "fakelib-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
              for name, data in files.items()] + ["fakelib-1.0.dist-info/RECORD,,"]
    with zipfile.ZipFile(folder / "fakelib-1.0-py3-none-any.whl", "w") as whl:
        for name, data in files.items():
            whl.writestr(name, data)
        whl.writestr("fakelib-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return folder


def this_platform():
    machine = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}[platform.machine().lower()]
    system = {"linux": "linux", "darwin": "macos", "windows": "windows"}[platform.system().lower()]
    return f"{system}-{machine}"


def test_installed_zip_bakes_with_its_bundled_wheels(tmp_path, bl_pkg_cli):
    need_assets()
    data = manifest()
    missing = [w for w in data["wheels"] if not (ROOT / w).is_file()]
    if missing:
        pytest.skip(f"{len(missing)} bundled wheels not fetched yet (run `make wheels`)")
    if this_platform() not in data["platforms"]:
        pytest.skip(f"{this_platform()} is not a platform the extension is built for")
    cli = Path(bl_pkg_cli.__file__)
    tags = cli.parents[3] / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    dist = tmp_path / "dist"
    dist.mkdir()
    build = subprocess.run([sys.executable, str(cli), "build", "--source-dir", str(ROOT), "--output-dir", str(dist),
                            "--split-platforms", "--valid-tags", str(tags)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    zip_path = dist / f"flame_lipsync-{data['version']}-{this_platform().replace('-', '_')}.zip"
    assert zip_path.is_file(), sorted(p.name for p in dist.iterdir())

    user = tmp_path / "user"
    env = blocker_env(tmp_path, OPTIONAL, LIPSYNC_TEST_WHEELS_FROM=str(user / "extensions"),
                      LIPSYNC_TEST_WHEELS=",".join(BUNDLED),
                      BLENDER_USER_RESOURCES=str(user), BLENDER_USER_CONFIG=str(user / "config"),
                      BLENDER_USER_SCRIPTS=str(user / "scripts"), BLENDER_USER_DATAFILES=str(user / "datafiles"),
                      BLENDER_USER_EXTENSIONS=str(user / "extensions"))
    out = tmp_path / "report.json"
    run, log = run_script(INSTALLED, [zip_path, tmp_path, TEMPLATE, LIBRIVOX, ENGLISH, out, fake_wheel(tmp_path)],
                          env, tmp_path)
    assert run.returncode == 0 and out.is_file(), log
    report = json.loads(out.read_text())
    assert report["install"] == ["FINISHED"] and not report["enable_errors"], report
    for name, path in report["files"].items():
        assert path and Path(path).resolve().is_relative_to((user / "extensions").resolve()), (name, path)
    for bake in report["bakes"]:
        assert bake["result"] == ["FINISHED"] and bake["shape_keys"] == 17, (bake, log)
    assert len(report["dev_commands"]) == 3 and all("needs the project's checkout" in m
                                                    for m in report["dev_commands"]), report["dev_commands"]
    site = report["user_site_packages"]
    assert site.startswith(str(user / "extensions" / ".user"))
    assert report["download"] == ["FINISHED"], (report["download"], log)
    assert Path(report["fakelib"]).resolve().is_relative_to(Path(site).resolve())
    print(f"{zip_path.name} ({zip_path.stat().st_size / 1e6:.1f} MB): {len(report['bakes'])} bakes; "
          + ", ".join(f"{n} from {p}" for n, p in report["files"].items()))
