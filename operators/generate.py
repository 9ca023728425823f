"""Generate lip sync / Clear: the operators behind the sidebar buttons."""
import traceback
from pathlib import Path

import bpy

from ..blender import sources
from .. import pipeline
from ..core.layers import LayerSettings
from ..core.messages import USER_ERRORS, user_message
from .job import BakeJob, Cancelled, JobSettings, write


def settings_from(scene, props, audio_path: str, obj=None) -> JobSettings:
    transcript = props.transcript.strip() or None
    if transcript is None and props.transcript_beside_audio:
        transcript = sources.transcript_beside(audio_path)
    frame_range = (props.frame_start, props.frame_end) if props.use_frame_range else None
    engine = pipeline.get_engine(props.engine)
    style = props.style if engine.has_styles and props.style not in ("", "AVERAGE") else None
    from ..blender.environment import torch_device
    device = torch_device() if engine.uses_torch else None  # the preferences' CPU/GPU
    return JobSettings(engine=props.engine, style=style, device=device, transcript=transcript, intensity=props.intensity,
                       smoothing=props.smoothing, mode=props.bake_mode,
                       on_conflict="stash" if props.stash_existing_action else "refuse",
                       cache_path=cache_path(props, audio_path, obj), frame_range=frame_range,
                       mouth=props.layer_mouth, layers=layer_settings(props),
                       keys=props.keys, key_tolerance=key_tolerance(),
                       replace_range=props.use_frame_range, markers=props.markers)


def key_tolerance() -> float:
    """The preferences' tolerance of reduced keys, in metres (shown in mm)."""
    from ..blender.environment import preferences
    from ..core.key_reduction import DEFAULT_TOLERANCE
    prefs = preferences()
    value = getattr(prefs, "key_tolerance", None)
    return DEFAULT_TOLERANCE if value is None else float(value) / 1000.0


def layer_settings(props) -> LayerSettings:
    return LayerSettings(eyes=props.layer_eyes, eyes_intensity=props.eyes_intensity,
                         brows=props.layer_brows, brows_intensity=props.brows_intensity,
                         head=props.layer_head, head_intensity=props.head_intensity,
                         emotion=props.layer_emotion, emotion_intensity=props.emotion_intensity,
                         emotion_preset=props.emotion_preset.lower(),
                         emotion_strength=props.emotion_strength, seed=props.motion_seed)


def cache_path(props, audio_path: str, obj=None) -> str | None:
    """PC2 beside the .blend (or in the chosen folder), named after the shot (the .blend,
    else the dialogue) and the object, so two shots or two heads never share one cache.
    A file of that name that this object's bake did not write is not replaced: the
    name gets a number (_2, _3...)."""
    folder = bpy.path.abspath(props.cache_folder) if props.cache_folder else (
        str(Path(bpy.data.filepath).parent) if bpy.data.filepath else None)
    if folder is None:
        return None
    path = cache_file(folder, bpy.data.filepath, getattr(obj, "name", "Head"), audio_path)
    from . import bake
    owned = bake._record(obj).get("pc2") if obj is not None else None
    stem, number = path.stem, 1
    while path.exists() and str(path) != owned:
        number += 1
        path = path.with_name(f"{stem}_{number}.pc2")
    return str(path)


def cache_file(folder, blend_path: str | None, object_name: str, audio_path: str | None = None) -> Path:
    """`<shot>_<object>_lipsync.pc2`: the shot is the .blend's name (else the audio's)."""
    shot = Path(blend_path).stem if blend_path else (Path(audio_path).stem if audio_path else "dialogue")
    return Path(folder) / f"{bpy.path.clean_name(shot)}_{bpy.path.clean_name(object_name)}_lipsync.pc2"


def gather(context):
    """Validate the inputs and load the speech; raises a user error on bad input."""
    scene, props, obj = context.scene, context.scene.flame_lipsync, context.active_object
    sources.check_target(obj)
    if props.source == "STRIP":
        speech, first = sources.strip_speech(scene, props.strip)
        strip = next(s for s in sources.sound_strips(scene) if s.name == props.strip)
        audio_path = bpy.path.abspath(strip.sound.filepath)
    else:
        speech, first = sources.file_speech(props.audio_file, scene)
        audio_path = bpy.path.abspath(props.audio_file)
    settings = settings_from(scene, props, audio_path, obj)
    if props.source == "STRIP":
        # Exactly the frames where the strip plays (the span's end is exclusive).
        lo, end = sources.strip_span(strip)
        hi = end - 1
        if settings.frame_range:
            lo, hi = max(lo, settings.frame_range[0]), min(hi, settings.frame_range[1])
        settings.frame_range = (lo, hi)
    if settings.mode == "MESH_CACHE" and not settings.cache_path:
        raise ValueError("Mesh cache: save the .blend first (the cache is written beside it) "
                         "or choose a cache folder.")
    settings.relative_cache = bool(bpy.data.filepath) and not props.cache_folder
    settings.marker_origin = first
    return obj, speech, sources.scene_fps(scene), first, settings


def channel_strips(scene, channel: int) -> list:
    """The sound strips on a channel, in the order they play."""
    return sorted((s for s in sources.sound_strips(scene) if s.channel == channel),
                  key=lambda s: sources.strip_span(s)[0])


def bake_all_strips(context, channel: int, cancelled=lambda: False) -> str:
    """Bake every sound strip on `channel`: one action per strip, as NLA strips at the
    strip's frames, named after it. Everything is computed before anything is written."""
    from . import bake
    scene, props, obj = context.scene, context.scene.flame_lipsync, context.active_object
    sources.check_target(obj)
    if props.bake_mode != "SHAPE_KEYS":
        raise ValueError("Bake All Strips makes one shape-key action per strip: set Bake to Shape Keys.")
    strips = channel_strips(scene, channel)
    if not strips:
        raise ValueError(f"No sound strips on channel {channel}: move the dialogue strips there "
                         "or choose their channel.")
    fps = sources.scene_fps(scene)
    lines, performances = [], []
    for strip in strips:
        speech, first = sources.strip_speech(scene, strip.name)
        settings = settings_from(scene, props, bpy.path.abspath(strip.sound.filepath), obj)
        lo, end = sources.strip_span(strip)
        settings.frame_range, settings.marker_origin = (lo, end - 1), first
        performance = pipeline.perform(speech, fps, settings, first, cancelled=cancelled)
        lines.append((strip.name, performance.first_frame, performance.controls))
        performances.append((performance, settings))
    from .job import head_vertices
    performance, settings = performances[0]
    if bake.owned_modifier(obj):
        bake.clear_bake(obj)
    names = performance.control_names
    fields = pipeline.head_fields(head_vertices(obj), names)
    track = bake.bake_lines(obj, names, fields, lines, settings.on_conflict, settings.keys,
                            settings.key_tolerance)
    count = 0
    if settings.markers != "NONE":
        from . import markers
        markers.remove_markers(scene, obj.name)
        for performance, settings in performances:
            count += markers.add_markers(scene, obj.name, performance, settings.markers,
                                         settings.marker_origin, settings.transcript, replace=False)
    return (f"baked {len(lines)} dialogue lines on '{obj.name}' as NLA strips on '{track.name}' "
            f"(channel {channel})" + (f"; {count} markers" if count else ""))


class FLAMELIPSYNC_OT_generate(bpy.types.Operator):
    """Animate the active FLAME head from the chosen dialogue (Esc cancels)"""
    bl_idname = "flame_lipsync.generate"
    bl_label = "Generate Lip Sync"
    bl_options = {"REGISTER", "UNDO"}

    _timer = None
    _job = None

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        """Synchronous path: scripts and `blender -b`."""
        try:
            props = context.scene.flame_lipsync
            if props.source == "STRIP" and props.all_strips:
                summary = bake_all_strips(context, props.strip_channel)
            else:
                obj, speech, fps, first, settings = gather(context)
                summary = write(obj, pipeline.perform(speech, fps, settings, first), settings,
                                mouth_interior=context.scene.flame_lipsync.bake_mouth_interior)
        except USER_ERRORS as err:
            self.report({"ERROR"}, user_message(err))
            return {"CANCELLED"}
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    def invoke(self, context, event):
        props = context.scene.flame_lipsync
        if bpy.app.background or (props.source == "STRIP" and props.all_strips):
            return self.execute(context)    # all strips: one synchronous pass (no Esc yet)
        try:
            obj, speech, fps, first, settings = gather(context)
        except USER_ERRORS as err:
            self.report({"ERROR"}, user_message(err))
            return {"CANCELLED"}
        self._target = obj.name
        self._settings = settings
        from .job import head_vertices
        self._job = BakeJob(speech, fps, first, settings, head=head_vertices(obj)).start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._job.cancel()
            self._finish(context)
            self.report({"WARNING"}, "Lip sync cancelled: the scene was not changed.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        job = self._job
        context.window_manager.progress_update(int(job.progress * 100))
        context.workspace.status_text_set(f"Lip sync: {job.stage}... (Esc to cancel)")
        if not job.done:
            return {"RUNNING_MODAL"}
        self._finish(context)
        if isinstance(job.error, Cancelled):
            return {"CANCELLED"}
        if job.error is not None:
            if not isinstance(job.error, USER_ERRORS):  # a bug: its traceback goes to the console
                traceback.print_exception(job.error)
            self.report({"ERROR"}, user_message(job.error))
            return {"CANCELLED"}
        obj = bpy.data.objects.get(self._target)
        try:
            sources.check_target(obj)  # the artist may have changed it meanwhile
            summary = write(obj, job.result, self._settings,
                            mouth_interior=context.scene.flame_lipsync.bake_mouth_interior)
        except USER_ERRORS as err:
            self.report({"ERROR"}, user_message(err))
            return {"CANCELLED"}
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    def _finish(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        context.workspace.status_text_set(None)


class FLAMELIPSYNC_OT_clear(bpy.types.Operator):
    """Remove the lip sync this add-on baked on the active object (only ours)"""
    bl_idname = "flame_lipsync.clear"
    bl_label = "Clear Lip Sync"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from . import bake, head_motion, mouth_interior
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            self.report({"ERROR"}, "Select the head mesh whose lip sync should be cleared.")
            return {"CANCELLED"}
        from . import markers
        removed: dict = {"markers": markers.remove_markers(context.scene, obj.name)}
        removed.update(bake.clear_bake(obj))
        removed["head_motion"] = head_motion.clear_head_rotation(obj)
        removed["teeth_and_mouth"] = mouth_interior.clear_mouth_interior(obj)
        if not any(removed.values()):
            self.report({"WARNING"}, f"'{obj.name}' has no lip sync from this add-on: nothing removed.")
            return {"CANCELLED"}
        self.report({"INFO"}, "Removed " + ", ".join(f"{k}: {v}" for k, v in removed.items() if v))
        return {"FINISHED"}


classes = (FLAMELIPSYNC_OT_generate, FLAMELIPSYNC_OT_clear)
