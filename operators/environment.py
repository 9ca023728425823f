"""Preferences buttons: check the environment again, download PyTorch (Esc cancels).
The service behind them is blender/environment.py."""
import bpy

from ..core.messages import user_message
from ..blender.environment import TorchInstall, apply_paths, detect, probe_torch, start_torch_install


class FLAMELIPSYNC_OT_refresh_environment(bpy.types.Operator):
    """Look again for PyTorch, pocketsphinx and the other packages (and check the GPU)"""
    bl_idname = "flame_lipsync.refresh_environment"
    bl_label = "Check Again"
    bl_options = {"INTERNAL"}

    probe: bpy.props.BoolProperty(name="Check PyTorch Devices", default=False,
                                  description="Also import PyTorch in a separate process to list its devices")

    def execute(self, context):
        apply_paths()
        env = detect(refresh=True)
        if self.probe:
            if not env.packages["torch"].found:
                self.report({"WARNING"}, "PyTorch is not installed: only the CPU engines are available.")
                return {"FINISHED"}
            result = probe_torch()
            if "error" in result:
                self.report({"ERROR"}, f"PyTorch is installed but does not import: {result['error']}")
                return {"CANCELLED"}
            devices = ", ".join(result["devices"]) or ("Apple MPS" if result["mps"] else "CPU only")
            self.report({"INFO"}, f"PyTorch {result['torch']}: {devices}")
        return {"FINISHED"}


class FLAMELIPSYNC_OT_install_torch(bpy.types.Operator):
    """Download PyTorch into this extension's user folder (needs online access; Esc cancels)"""
    bl_idname = "flame_lipsync.install_torch"
    bl_label = "Download PyTorch"
    bl_options = {"INTERNAL"}

    variant: bpy.props.EnumProperty(name="Build", items=[
        ("CPU", "CPU", "Small download (about 200 MB), works everywhere"),
        ("CUDA", "NVIDIA CUDA", "GPU build for NVIDIA cards (several GB)")], default="CPU")

    _timer = None
    _job = None

    def _begin(self):
        try:
            return start_torch_install(self.variant)
        except (RuntimeError, OSError) as err:  # OSError: the extension's folder cannot be made
            self.report({"ERROR"}, user_message(err))
            return None

    def execute(self, context):
        """Synchronous: scripts and background mode."""
        job = self._begin()
        if job is None:
            return {"CANCELLED"}
        job.wait()
        return self._conclude(job)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        self._job = self._begin()
        if self._job is None:
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel()
            job.wait(30)
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.progress_update(int(job.progress * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(f"PyTorch: {job.stage} ({job.progress:.0%}, Esc to cancel)")
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if not job.done:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        return self._conclude(job)

    def _conclude(self, job: TorchInstall):
        if job.error:
            self.report({"WARNING"} if job.cancelled else {"ERROR"}, job.error)
            return {"CANCELLED"}
        apply_paths()
        torch = detect(refresh=True).packages["torch"]
        self.report({"INFO"}, f"PyTorch {torch.version} installed in {job.target}")
        return {"FINISHED"}


classes = (FLAMELIPSYNC_OT_refresh_environment, FLAMELIPSYNC_OT_install_torch)
