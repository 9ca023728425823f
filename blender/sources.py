"""Where the dialogue comes from (a VSE sound strip or a file) and what it lands on.

A strip's animation lands exactly on the frames where the strip plays:
its first visible frame (after the left trim), at the scene's true frame rate
(fps / fps_base, so 29.97 is 30000/1001).
"""
from pathlib import Path

import bpy

from ..core.atomic import describe
from ..core.audio import AudioError, Speech, load_speech
from ..core.flame import VERTEX_COUNT
from ..core.mesh_io import MeshError, check_flame_faces, check_flame_topology


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


# A strip's timing, through the API of the running Blender. 5.1 renamed it (the old names
# warn and go away in 6.0): frame_final_start/_end/_duration -> left_handle/right_handle/
# duration, frame_start -> content_start, frame_offset_start -> left_handle_offset.
# The fallback is 4.2-5.0's. Nothing else in the add-on reads a strip's frames.

def strip_span(strip) -> tuple[int, int]:
    """(first frame the strip plays, first frame after it): the handles, end exclusive."""
    if hasattr(strip, "left_handle"):
        return int(strip.left_handle), int(strip.right_handle)
    return int(strip.frame_final_start), int(strip.frame_final_end)


def strip_content_start(strip) -> float:
    """Timeline frame where the strip's source (its sound's time 0) begins, before trims."""
    if hasattr(strip, "content_start"):
        return float(strip.content_start)
    return float(strip.frame_start)


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
    first_frame, end_frame = strip_span(strip)
    start = (first_frame - strip_content_start(strip)) / fps + getattr(strip, "sound_offset", 0.0)
    length = (end_frame - first_frame) / fps
    first, last = int(round(start * rate)), int(round((start + length) * rate))
    samples = speech.samples[max(first, 0):max(min(last, len(speech.samples)), 0)]
    from ..core.audio import speech_from_array
    cut = speech_from_array(samples, rate, rate, fps, source=f"strip '{strip.name}' ({path})")
    return cut, first_frame


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
    if not text.is_file():
        return None
    try:
        return text.read_text(errors="replace")
    except OSError as err:
        reason, todo = describe(err, reading=True)
        raise AudioError(f"The transcript beside the audio, '{text}', could not be read: {reason}; {todo}, "
                         "or turn off 'Use .txt Beside Audio'.") from None


def check_target(obj) -> None:
    if obj is None:
        raise MeshError("No active object: select the head mesh to animate.")
    if obj.type != "MESH":
        raise MeshError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh: select a FLAME head mesh.")
    check_local(obj)
    count = len(obj.data.vertices)
    if count != VERTEX_COUNT:
        check_flame_topology(count, f"'{obj.name}'")
    check_flame_faces(mesh_faces(obj.data), f"'{obj.name}'")


def mesh_faces(mesh):
    """(F, 3) vertex indices of a triangle mesh; polygons with more corners are
    returned as a row of -1 so the face-list check refuses them."""
    import numpy as np
    corners = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", corners)
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    if len(corners) and (corners == 3).all() and len(loops) == 3 * len(corners):
        return loops.reshape(-1, 3)
    return np.full((len(corners), 3), -1, np.int32)


MAKE_LOCAL = ("make it local (select it, then Object > Relations > Make Local... > Selected Objects "
              "and Data) and bake again, or bake it in the library file")


def check_local(obj) -> None:
    """Linked or overridden data cannot keep our shape keys or modifier (the saved file
    would silently lose them): refuse, before anything changes, with how to make it local.
    Making an override editable is not enough: its mesh stays linked."""
    key = obj.data.shape_keys if obj.type == "MESH" else None
    for what, data in (("object", obj), ("mesh", obj.data), ("shape keys", key)):
        if data is None:
            continue
        part = "" if what == "object" else f" (its {what} '{data.name}')"
        library = getattr(data, "library", None)
        if library is not None:
            raise MeshError(f"'{obj.name}'{part} is linked from the library '{bpy.path.abspath(library.filepath)}': "
                            f"baked shape keys or a mesh cache on linked data are not saved; {MAKE_LOCAL}.")
        override = getattr(data, "override_library", None)
        if override is not None:
            source = getattr(getattr(override, "reference", None), "library", None)
            where = f" of the library '{bpy.path.abspath(source.filepath)}'" if source is not None else ""
            raise MeshError(f"'{obj.name}'{part} is a library override{where}: an override saves only its "
                            f"overridden properties, so baked shape keys would be lost; {MAKE_LOCAL}.")
