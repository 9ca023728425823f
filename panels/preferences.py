"""Add-on preferences: what this Blender's Python provides, CPU/GPU, a studio's own
site-packages, and the optional PyTorch download. Layout only; blender/environment.py
does the work."""
import sys

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from ..blender import environment


def _extra_site_packages_changed(self, context):
    environment.apply_paths(self)


class FlameLipSyncPreferences(bpy.types.AddonPreferences):
    bl_idname = environment.ADDON_PACKAGE

    device: EnumProperty(name="Device", items=environment.DEVICES, default="AUTO",
                         description="Where engines that use PyTorch run")
    extra_site_packages: StringProperty(
        name="Extra Site-Packages", subtype="DIR_PATH", update=_extra_site_packages_changed,
        description="A Python environment (its root or its site-packages folder) built for "
                    "Blender's Python version, e.g. a studio's CUDA PyTorch. Added to the "
                    "module path while the add-on is enabled")
    key_tolerance: FloatProperty(
        name="Key Tolerance", default=0.3, min=0.01, max=5.0, precision=2,
        description="Reduced keys (mm): every vertex stays this close to a key on every frame")
    torch_variant: EnumProperty(name="Build", items=[
        ("CPU", "CPU", "Small download, works everywhere"),
        ("CUDA", "NVIDIA CUDA", "GPU build for NVIDIA cards (several GB)")], default="CPU")

    def draw(self, context):
        layout = self.layout
        env = environment.detect()

        box = layout.box()
        box.label(text="Found", icon="INFO")
        col = box.column(align=True)
        col.label(text=f"Python {env.python} ({env.python_tag}), Blender {env.blender}, numpy {env.numpy}")
        col.label(text="aud (Blender audio): " + ("yes, decodes FLAC/OGG/MP3" if env.aud else
                                                 "not available: only WAV/AIFF are read"),
                  icon="CHECKMARK" if env.aud else "ERROR")
        for name, package in env.packages.items():
            required = name == "pocketsphinx"
            icon = "CHECKMARK" if package.found else ("ERROR" if required else "DOT")
            text = f"{name} {package.version}" if package.found else f"{name}: not found"
            row = col.row()
            row.label(text=f"{text}  ({package.note})", icon=icon)  # type: ignore[arg-type]  # one of 3 icon literals
        probe = environment.last_probe()
        if probe:
            if "error" in probe:
                col.label(text=f"PyTorch does not import: {probe['error'][:160]}", icon="ERROR")
            else:
                devices = ", ".join(probe["devices"]) or ("Apple MPS" if probe["mps"] else "no GPU")
                col.label(text=f"PyTorch {probe['torch']} devices: {devices}", icon="CHECKMARK")
        row = box.row(align=True)
        row.operator("flame_lipsync.refresh_environment", icon="FILE_REFRESH").probe = False
        op = row.operator("flame_lipsync.refresh_environment", text="Check PyTorch Devices", icon="SYSTEM")
        op.probe = True

        layout.prop(self, "device", expand=True)
        layout.prop(self, "key_tolerance")

        box = layout.box()
        box.prop(self, "extra_site_packages")
        path, problems = environment.resolve_site_packages(self.extra_site_packages)
        for problem in problems:
            box.label(text=problem, icon="ERROR")
        if path and path in sys.path:
            box.label(text=f"On the module path: {path}", icon="CHECKMARK")
        if self.extra_site_packages:
            box.label(text="Modules already imported stay loaded until Blender restarts.", icon="INFO")

        box = layout.box()
        box.label(text="Download PyTorch (optional: the phonetic engine does not need it)")
        job = environment.current_install()
        if job is not None and not job.done:
            box.label(text=f"{job.stage} ({job.progress:.0%}), Esc cancels", icon="SORTTIME")
        elif job is not None and job.error:
            box.label(text=job.error[:200], icon="ERROR")
        target = environment.user_site_packages()
        if target is None:
            box.label(text="Only for the installed extension (Install from Disk).", icon="INFO")
        elif not environment.online_access():
            box.label(text="Online access is off (Preferences > System > Network).", icon="INTERNET_OFFLINE")
        row = box.row(align=True)
        row.enabled = target is not None and environment.online_access()
        if sys.platform != "darwin":
            row.prop(self, "torch_variant", text="")
        row.operator("flame_lipsync.install_torch", icon="IMPORT").variant = self.torch_variant
        if target:
            box.label(text=f"Into: {target}")


classes = (FlameLipSyncPreferences,)
