"""Where the dialogue comes from (a VSE sound strip or a file) and what it lands on.

A strip's animation lands exactly on the frames where the strip plays:
its first visible frame (after the left trim), at the scene's true frame rate
(fps / fps_base, so 29.97 is 30000/1001).
"""
from pathlib import Path

import bpy

from ..core.audio import AudioError, Speech, load_speech
from ..core.flame import VERTEX_COUNT
from ..core.mesh_io import MeshError, check_flame_topology


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def strips_of(scene):
    """All strips, on Blender 4.4+ (`strips_all`) and before (`sequences_all`)."""
    editor = scene.sequence_editor
    if editor is None:
        return []
    return list(editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)


def sound_strips(scene):
    return [s for s in strips_of(scene) if s.type == "SOUND"]


def strip_speech(scene, strip_name: str, rate: int = 16000) -> tuple[Speech, int]:
    """The audible part of a sound strip -> (Speech, first scene frame)."""
    strip = next((s for s in sound_strips(scene) if s.name == strip_name), None)
    if strip is None:
        raise AudioError(f"Sound strip '{strip_name}' not found in the scene's sequencer: "
                         "pick a sound strip or switch the source to a file.")
    if strip.sound is None or not strip.sound.filepath:
        raise AudioError(f"Sound strip '{strip.name}' has no sound file.")
    if strip.sound.packed_file is not None:
        raise AudioError(f"Sound strip '{strip.name}' uses packed audio: unpack it "
                         "(File > External Data > Unpack Resources) or choose the file directly.")
    fps = scene_fps(scene)
    path = bpy.path.abspath(strip.sound.filepath, library=strip.sound.library)
    speech = load_speech(path, rate=rate, fps=fps)
    # Audio time at the first visible frame: the left trim plus the sound offset.
    start = (strip.frame_final_start - strip.frame_start) / fps + getattr(strip, "sound_offset", 0.0)
    length = strip.frame_final_duration / fps
    first, last = int(round(start * rate)), int(round((start + length) * rate))
    samples = speech.samples[max(first, 0):max(min(last, len(speech.samples)), 0)]
    from ..core.audio import speech_from_array
    cut = speech_from_array(samples, rate, rate, fps, source=f"strip '{strip.name}' ({path})")
    return cut, int(strip.frame_final_start)


def file_speech(path: str, scene) -> tuple[Speech, int]:
    """An audio file starting at the scene's start frame."""
    if not path:
        raise AudioError("No audio file chosen: pick a sound strip or an audio file.")
    return load_speech(bpy.path.abspath(path), fps=scene_fps(scene)), int(scene.frame_start)


def transcript_beside(audio_path: str) -> str | None:
    """A .txt with the same name next to the audio holds its words, if present."""
    if not audio_path:
        return None
    text = Path(bpy.path.abspath(audio_path)).with_suffix(".txt")
    return text.read_text(errors="replace") if text.is_file() else None


def check_target(obj) -> None:
    if obj is None:
        raise MeshError("No active object: select the head mesh to animate.")
    if obj.type != "MESH":
        raise MeshError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh: select a FLAME head mesh.")
    count = len(obj.data.vertices)
    if count != VERTEX_COUNT:
        check_flame_topology(count, f"'{obj.name}'")
