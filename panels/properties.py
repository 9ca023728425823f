"""Scene settings behind the sidebar (one PropertyGroup at scene.flame_lipsync)."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..blender.sources import sound_strips, strip_span
from ..pipeline.engines import ENGINES


def _strip_items(self, context):
    strips = sound_strips(context.scene) if context and context.scene else []
    return [(s.name, s.name, "frames {}-{}".format(*strip_span(s))) for s in strips] \
        or [("", "(no sound strips)", "Add a sound strip in the Video Sequencer")]


def _style_items(self, context):
    engine = ENGINES.get(context.scene.flame_lipsync.engine) if context and context.scene else None
    try:  # drawn on every redraw: damaged weights must not raise here (the bake reports them)
        styles = engine.styles() if engine is not None else ()
    except Exception:  # noqa: BLE001
        styles = ()
    return [("AVERAGE", "Average", "The average of the training voices (any speaker)")] + \
        [(name, name, f"Speaking style learnt from the voice '{name}'") for name in styles]


class FlameLipSyncSettings(bpy.types.PropertyGroup):
    source: EnumProperty(name="Source", items=[
        ("STRIP", "Sound Strip", "A sound strip of the Video Sequencer: the animation lands where it plays"),
        ("FILE", "Audio File", "An audio file, starting at the scene's start frame")], default="STRIP")
    strip: EnumProperty(name="Strip", items=_strip_items)
    audio_file: StringProperty(name="Audio File", subtype="FILE_PATH")
    transcript: StringProperty(name="Transcript", description="The words spoken (optional: improves timing)")
    transcript_beside_audio: BoolProperty(
        name="Use .txt Beside Audio", default=True,
        description="If the transcript is empty, read a .txt with the audio's name next to it")
    engine: EnumProperty(name="Engine", items=[(k, k.replace("_", " ").title(), e.description) for k, e in ENGINES.items()])
    style: EnumProperty(name="Speaking Style", items=_style_items,
                        description="Neural engine: whose speaking style to imitate")
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, max=2.0,
                             description="Scales the articulation; sealed lips stay sealed")
    smoothing: FloatProperty(name="Smoothing", default=0.0, min=0.0, max=4.0,
                             description="Temporal smoothing (sigma in frames at 30 fps)")
    # Face layers (core.layers): each baked in its own F-curve group, the head on an owned empty.
    layer_mouth: BoolProperty(name="Mouth", default=True, description="The engine's lip sync")
    layer_eyes: BoolProperty(name="Eyes", default=True, description="Blinks timed by the speech's pauses")
    layer_brows: BoolProperty(name="Brows", default=True, description="Brow raises on pitch accents")
    layer_head: BoolProperty(name="Head", default=True,
                             description="Nods and shifts from prosody, on an empty the add-on owns")
    layer_emotion: BoolProperty(name="Emotion", default=True,
                                description="The voice's arousal scales mouth and brows; preset expression")
    eyes_intensity: FloatProperty(name="Eyes", default=1.0, min=0.0, max=2.0)
    brows_intensity: FloatProperty(name="Brows", default=1.0, min=0.0, max=2.0)
    head_intensity: FloatProperty(name="Head", default=1.0, min=0.0, max=2.0)
    emotion_intensity: FloatProperty(name="Emotion", default=1.0, min=0.0, max=2.0)
    emotion_preset: EnumProperty(name="Expression", items=[
        (p.upper(), p.title(), f"{p.title()} expression") for p in ("neutral", "happy", "sad", "angry", "surprised")])
    emotion_strength: FloatProperty(name="Strength", default=0.5, min=0.0, max=1.0)
    motion_seed: IntProperty(name="Seed", default=0, min=0, description="Same seed, same blinks and nods")
    bake_mode: EnumProperty(name="Bake", items=[
        ("SHAPE_KEYS", "Shape Keys", "One shape key per mouth control, keyed in one action (editable)"),
        ("MESH_CACHE", "Mesh Cache", "Exact per-frame vertices in a PC2 file + MeshCache modifier")])
    cache_folder: StringProperty(name="Cache Folder", subtype="DIR_PATH",
                                 description="Where the PC2 goes (default: beside the .blend)")
    use_frame_range: BoolProperty(name="Limit Frame Range", default=False)
    frame_start: IntProperty(name="Start", default=1)
    frame_end: IntProperty(name="End", default=250)
    keys: EnumProperty(name="Keys", default="REDUCED", items=[
        ("REDUCED", "Reduced", "The fewest Bézier keys (auto-clamped handles) that keep every vertex within "
                               "the tolerance (add-on preferences) of a key on every frame; closures stay sealed"),
        ("EVERY_FRAME", "Every Frame", "One key per frame per control (exact, dense)")],
        description="Shape keys: how many keys the bake writes")
    markers: EnumProperty(name="Markers", default="WORDS", items=[
        ("WORDS", "Words", "A timeline marker at each word of the aligned transcript (phones when there is none)"),
        ("PHONES", "Phones", "A timeline marker at each recognised phone"),
        ("NONE", "None", "No markers")],
        description="Timeline markers the bake adds (Clear removes them)")
    all_strips: BoolProperty(
        name="Bake All Strips on Channel", default=False,
        description="One action per sound strip on the channel, placed as NLA strips at the strip's frames "
                    "and named after it")
    strip_channel: IntProperty(name="Channel", default=1, min=1, max=128)
    bake_mouth_interior: BoolProperty(
        name="Teeth and Mouth", default=True,
        description="Add teeth, a tongue and a dark mouth cavity fitted to the head (parented to it, "
                    "marked as the add-on's); the lower teeth and tongue follow the baked jaw")
    stash_existing_action: BoolProperty(
        name="Stash Existing Action", default=False,
        description="If the head's shape keys already play an action you made, move it to an "
                    "NLA track (unchanged) instead of refusing to bake")


classes = (FlameLipSyncSettings,)
