"""The add-on's Python environment: what is importable, which folders are on the path,
which device PyTorch should use, and the optional PyTorch download.

Inside an artist's Blender the add-on needs only Blender's own numpy and `aud` plus the
wheels the extension bundles (pocketsphinx, soxr). Everything else is optional:
- a studio points the preferences at its own site-packages (its CUDA torch, librosa);
  the folder is appended to sys.path when the add-on is enabled and removed when it
  is disabled (modules already imported stay loaded until Blender restarts);
- an artist may download PyTorch into the extension's user folder
  (`bpy.utils.extension_path_user(..., "site-packages")`), never into Blender's own
  folder, and only when Blender's "Allow Online Access" is on.

Detection never imports torch or librosa into Blender (slow, and a broken CUDA install
can take Blender down): versions come from package metadata, devices from a short-lived
subprocess (`probe_torch`). The operators that use this service: operators/environment.py.
"""
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import bpy

# The add-on's root package: "bl_ext.<repo>.flame_lipsync" when installed as an
# extension, "flame_lipsync" from a checkout (tests, cli.py).
ADDON_PACKAGE = __package__.rpartition(".")[0]

PYTHON_TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"
TORCH_REQUIREMENT = "torch>=2.2"  # 2.2 is the last release with Intel-Mac wheels
TORCH_INDEX = {  # pip index per download choice; macOS torch comes from PyPI (MPS built in)
    "CPU": "https://download.pytorch.org/whl/cpu",
    "CUDA": "https://download.pytorch.org/whl/cu128",
}

# ------------------------------------------------------------------------ detection

OPTIONAL = {  # import name -> (distribution, what it is used for when present)
    "pocketsphinx": ("pocketsphinx", "phone recognition (bundled wheel)"),
    "soxr": ("soxr", "resampling (bundled wheel; numpy resampler otherwise)"),
    "soundfile": ("soundfile", "decoding (else WAV/AIFF in numpy, other formats via aud)"),
    "librosa": ("librosa", "training and evaluation features (optional)"),
    "torch": ("torch", "neural engine, GPU (optional)"),
}


@dataclass
class Package:
    name: str
    version: str | None  # None: not importable
    location: str = ""
    note: str = ""

    @property
    def found(self) -> bool:
        return self.version is not None


@dataclass
class Environment:
    python: str
    python_tag: str
    blender: str
    executable: str
    numpy: str
    aud: bool
    packages: dict[str, Package] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)  # what this add-on put on sys.path


def _package(module: str, distribution: str, note: str, load: bool) -> Package:
    """Version and folder of an importable package. `load` imports it (cheap packages
    whose native library should be proven to load); otherwise only its spec is found."""
    try:
        if load:
            mod = importlib.import_module(module)
            location = str(Path(mod.__file__).parent) if getattr(mod, "__file__", None) else ""
        else:
            spec = importlib.util.find_spec(module)
            if spec is None:
                return Package(module, None, note=note)
            location = str(Path(spec.origin).parent) if spec.origin else ""
    except ImportError as err:
        return Package(module, None, note=f"{note}; import failed: {err}")
    except (OSError, ValueError) as err:  # a native library that cannot load
        return Package(module, None, note=f"{note}; cannot load: {err}")
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules.get(module), "__version__", "unknown")
    return Package(module, version, location, note)


_cache: Environment | None = None


def detect(refresh: bool = False) -> Environment:
    """What this Blender's Python can use (cached; `refresh` looks again)."""
    global _cache
    if _cache is not None and not refresh:
        return _cache
    import numpy
    try:
        import aud  # noqa: F401  (Blender's audio library; absent from some bpy wheels)
        has_aud = True
    except ImportError:
        has_aud = False
    importlib.invalidate_caches()
    packages = {name: _package(name, dist, note, load=name in ("pocketsphinx", "soxr"))
                for name, (dist, note) in OPTIONAL.items()}
    _cache = Environment(
        python=sys.version.split()[0], python_tag=PYTHON_TAG, blender=bpy.app.version_string,
        executable=sys.executable, numpy=numpy.__version__, aud=has_aud, packages=packages,
        paths=list(_added))
    return _cache


# ----------------------------------------------------------------------- sys.path

_added: list[str] = []  # sys.path entries this add-on added, in order


def user_site_packages(create: bool = False) -> str | None:
    """The extension's own writable site-packages (where a downloaded torch goes), or
    None when the add-on is not installed as an extension (e.g. loaded from a checkout)."""
    try:
        path = bpy.utils.extension_path_user(ADDON_PACKAGE, path="site-packages", create=create)
    except ValueError:
        return None
    return path or None


_resolved: dict[str, tuple[str | None, list[str]]] = {}  # folder -> answer (the UI asks each redraw)


def resolve_site_packages(folder: str, refresh: bool = False) -> tuple[str | None, list[str]]:
    """A folder the user chose -> (the site-packages to add, problems to show).

    Accepts a site-packages folder or an environment's root (venv/conda), and warns
    about compiled modules built for another Python than Blender's (the usual cause of
    "DLL load failed" / "undefined symbol" after a Blender update)."""
    if not folder:
        return None, []
    if refresh or folder not in _resolved:
        _resolved[folder] = _resolve(folder)
    return _resolved[folder]


def _resolve(folder: str) -> tuple[str | None, list[str]]:
    path = Path(bpy.path.abspath(folder)).expanduser()
    if not path.is_dir():
        return None, [f"'{path}' is not a folder"]
    problems = []
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (path / "lib" / version / "site-packages", path / "Lib" / "site-packages"):
        if candidate.is_dir():
            path = candidate
            break
    else:
        others = sorted(p.parent.name for p in path.glob("lib/python3.*/site-packages"))
        if others:
            return None, [f"'{path}' is an environment for {', '.join(others)}, but Blender "
                          f"runs Python {sys.version.split()[0]}: create it with Python "
                          f"{sys.version_info[0]}.{sys.version_info[1]}"]
    tags = set()
    for pattern in ("*/*.cpython-3*.so", "*/*.cp3*-win*.pyd", "*.cpython-3*.so", "*.cp3*-win*.pyd"):
        for binary in list(path.glob(pattern))[:50]:
            match = re.search(r"\.(?:cpython-|cp)(3\d+)", binary.name)
            if match:
                tags.add(match.group(1))
    wrong = sorted(t for t in tags if t != PYTHON_TAG[2:])
    if wrong and PYTHON_TAG[2:] not in tags:
        problems.append(f"compiled modules here are for Python {', '.join('3.' + t[1:] for t in wrong)}; "
                        f"Blender runs {sys.version.split()[0]}, so they will not import")
    return str(path), problems


def add_path(path: str | None) -> bool:
    """Append a folder to sys.path (after Blender's own, so Blender's numpy stays first),
    remembering it so `remove_paths` takes it away again."""
    if not path or not os.path.isdir(path) or path in sys.path:
        return False
    sys.path.append(path)
    _added.append(path)
    importlib.invalidate_caches()
    return True


def remove_paths() -> None:
    for path in _added:
        while path in sys.path:
            sys.path.remove(path)
    _added.clear()
    importlib.invalidate_caches()


def preferences():
    """The add-on's preferences, or None before Blender has created them."""
    addon = bpy.context.preferences.addons.get(ADDON_PACKAGE)
    return getattr(addon, "preferences", None)


def apply_paths(prefs=None) -> list[str]:
    """Put the add-on's folders on sys.path: the extension's downloaded packages, then
    the studio's extra site-packages. Returns the problems to show (if any)."""
    remove_paths()
    add_path(user_site_packages())
    prefs = prefs if prefs is not None else preferences()
    folder = getattr(prefs, "extra_site_packages", "") if prefs is not None else ""
    path, problems = resolve_site_packages(folder, refresh=True)
    add_path(path)
    detect(refresh=True)
    return problems


def enable() -> None:
    """At register: the preferences may not exist yet on a first enable; then only the
    extension's own folder is added, and the preferences' update adds the rest."""
    apply_paths()


def disable() -> None:
    remove_paths()
    global _cache
    _cache = None


# ------------------------------------------------------------------------- devices

DEVICES = [
    ("AUTO", "Automatic", "The GPU when PyTorch sees one (CUDA, Apple MPS), else the CPU"),
    ("CPU", "CPU", "Always the CPU (no GPU memory used)"),
    ("GPU", "GPU", "The GPU; baking stops with a message when PyTorch sees none"),
]

PROBE = r"""
import json, sys
out = {"python": sys.version.split()[0]}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda"] = bool(torch.cuda.is_available())
    out["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if out["cuda"] else []
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps and mps.is_available())
    out["cuda_build"] = torch.version.cuda
except Exception as err:
    out["error"] = f"{type(err).__name__}: {err}"
print(json.dumps(out))
"""

_probe: dict | None = None


def probe_torch(timeout: float = 120.0) -> dict:
    """Import torch in a separate Python (same interpreter, same folders) and report its
    version and devices; a torch that crashes on import cannot take Blender with it."""
    global _probe
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p and os.path.isdir(p)])
    try:
        run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                             timeout=timeout, env=env)
        lines = run.stdout.strip().splitlines()
        _probe = json.loads(lines[-1]) if lines else {
            "error": f"the probe exited with status {run.returncode}: {run.stderr.strip()[-300:]}"}
    except subprocess.TimeoutExpired:
        _probe = {"error": f"importing torch took longer than {timeout:.0f} s"}
    except (OSError, ValueError) as err:
        _probe = {"error": f"could not run {sys.executable}: {err}"}
    return _probe


def last_probe() -> dict | None:
    return _probe


def torch_device(choice: str | None = None) -> str:
    """The torch device string an engine should use: "cpu", "cuda" or "mps".

    `choice` is the preference (AUTO/CPU/GPU; read from the preferences when None).
    CPU never imports torch. GPU without a usable one raises RuntimeError with what to do.
    """
    if choice is None:
        prefs = preferences()
        choice = getattr(prefs, "device", "AUTO") if prefs is not None else "AUTO"
    if choice == "CPU":
        return "cpu"
    try:
        import torch
    except (ImportError, OSError) as err:
        if choice == "GPU":
            raise RuntimeError(f"GPU chosen in the add-on's preferences, but PyTorch cannot be "
                               f"imported ({err}): install it (Preferences > Add-ons > FLAME Lip "
                               f"Sync), point Extra Site-Packages at an environment that has it, "
                               f"or choose CPU.") from None
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    if choice == "GPU":
        raise RuntimeError(f"GPU chosen in the add-on's preferences, but PyTorch {torch.__version__} "
                           f"sees none (CUDA build: {torch.version.cuda or 'none'}): install a CUDA "
                           f"build of PyTorch and a current NVIDIA driver, or choose CPU.")
    return "cpu"


# ------------------------------------------------------------------- torch download

def online_access() -> bool:
    """Blender's "Allow Online Access" (Preferences > System > Network, or
    --online-mode / --offline-mode on the command line)."""
    return bool(getattr(bpy.app, "online_access", False))


def pip_version(python: str = sys.executable) -> tuple[int, ...] | None:
    try:
        run = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"pip (\d+)\.(\d+)", run.stdout)
    return (int(match.group(1)), int(match.group(2))) if run.returncode == 0 and match else None


def torch_install_command(target: str, variant: str, pip: tuple[int, ...],
                          python: str = sys.executable) -> list[str]:
    command = [python, "-m", "pip", "install", "--target", target, "--upgrade",
               "--only-binary=:all:", "--no-input", "--disable-pip-version-check",
               "--no-warn-script-location", TORCH_REQUIREMENT]
    if sys.platform != "darwin" and variant in TORCH_INDEX:
        command += ["--index-url", TORCH_INDEX[variant]]
    if pip >= (24, 1):
        command += ["--progress-bar", "raw"]  # "Progress <done> of <total>" lines
    return command


_PIP_ERRORS = (  # pip output -> what the artist can do about it; first match wins
    # (offline, pip also ends with "no matching distribution": the network comes first)
    (r"Failed to establish a new connection|Temporary failure in name resolution|"
     r"ConnectionError|ProxyError|Network is unreachable|timed out|SSLError|CERTIFICATE_VERIFY_FAILED",
     "the download server could not be reached (network, proxy or firewall)"),
    (r"No matching distribution found|Could not find a version that satisfies",
     "no PyTorch build for Python {python} on this system was found on the download server"),
    (r"No space left on device|Errno 28", "the disk is full"),
    (r"Permission denied|Errno 13|Access is denied", "the extension's user folder is not writable"),
)


def explain_pip_failure(output: str, returncode: int) -> str:
    python = sys.version.split()[0]
    for pattern, reason in _PIP_ERRORS:
        if re.search(pattern, output):
            return reason.format(python=python)
    last = [line.strip() for line in output.splitlines() if line.strip()]
    return f"pip exited with status {returncode}" + (f" ({last[-1][:200]})" if last else "")


class TorchInstall:
    """pip in a worker thread: `progress` (0-1), `stage` (one line), `error` (a full
    sentence for the user) and `done`; `cancel()` stops pip. pip installs into a
    temporary folder and moves it into the target at the end, so a cancelled or failed
    download leaves the target as it was. The full log is written beside the target."""

    def __init__(self, target: str, command: list[str]):
        self.target = target
        self.command = command
        self.log_path = str(Path(target).parent / "pip-install-torch.log")
        self.progress = 0.0
        self.stage = "starting pip"
        self.error: str | None = None
        self.done = False
        self.cancelled = False
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TorchInstall":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancelled = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        lines: list[str] = []
        try:
            self._process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                bufsize=1, env={**os.environ, "PYTHONNOUSERSITE": "1"})
            if self.cancelled:  # cancelled before pip started
                self._process.terminate()
            for line in self._process.stdout:
                lines.append(line.rstrip())
                self._follow(line)
            code = self._process.wait()
        except OSError as err:
            lines.append(str(err))
            code = -1
        try:
            Path(self.log_path).write_text("\n".join([" ".join(self.command), *lines]) + "\n")
        except OSError:
            pass
        if self.cancelled:
            self.error = "PyTorch download cancelled; nothing was installed."
        elif code != 0:
            self.error = (f"Installing PyTorch failed: {explain_pip_failure(chr(10).join(lines), code)}. "
                          f"Full log: {self.log_path}. Alternatively install torch with your own "
                          f"Python {sys.version_info[0]}.{sys.version_info[1]} and set Extra "
                          f"Site-Packages to that environment.")
        else:
            self.progress, self.stage = 1.0, "installed"
        self.done = True

    _DOWNLOAD = re.compile(r"Progress (\d+) of (\d+)")

    def _follow(self, line: str) -> None:
        line = line.strip()
        if match := self._DOWNLOAD.match(line):
            done, total = int(match.group(1)), max(int(match.group(2)), 1)
            self.progress = 0.05 + 0.85 * done / total
            return
        for prefix, fraction in (("Collecting", 0.02), ("Downloading", None), ("Installing", 0.92),
                                 ("Successfully installed", 1.0)):
            if line.startswith(prefix):
                self.stage = line[:120]
                if fraction is not None:
                    self.progress = max(self.progress, fraction)


_install: TorchInstall | None = None


def current_install() -> TorchInstall | None:
    return _install


def start_torch_install(variant: str) -> TorchInstall:
    """Checks, then starts the download; raises RuntimeError with what to do."""
    global _install
    if _install is not None and not _install.done:
        raise RuntimeError("A PyTorch download is already running.")
    if not online_access():
        raise RuntimeError("Blender's online access is off, so nothing is downloaded: turn on "
                           "Preferences > System > Network > Allow Online Access, or install "
                           "torch yourself and set Extra Site-Packages.")
    target = user_site_packages(create=True)
    if target is None:
        raise RuntimeError("PyTorch can only be downloaded into an installed extension's user "
                           "folder: install the add-on from its zip, or set Extra Site-Packages.")
    pip = pip_version()
    if pip is None:
        raise RuntimeError(f"This Blender's Python ({sys.executable}) has no pip, so PyTorch "
                           f"cannot be downloaded from here: install torch with your own Python "
                           f"{sys.version_info[0]}.{sys.version_info[1]} and set Extra Site-Packages.")
    _install = TorchInstall(target, torch_install_command(target, variant, pip)).start()
    return _install
