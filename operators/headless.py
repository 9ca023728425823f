"""Headless jobs for cli.py: open or build a scene, bake through the same
operator path as the UI, save; and render a preview movie with sound."""
import math
import sys
from pathlib import Path

import bpy
import numpy as np

from ..core.mesh_io import load_head
from . import sources
from .generate import gather
from .job import compute, head_vertices, write
from ..core.rig import load_rig

RIG_NAME = "Head"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def set_scene_fps(scene, fps: float) -> None:
    """Exact Blender rate for fps: 29.97 -> 30 / 1.001, 23.976 -> 24 / 1.001."""
    whole = round(fps)
    ntsc = abs(fps - whole / 1.001) < 0.002
    scene.render.fps = whole
    scene.render.fps_base = 1.001 if ntsc else whole / fps


def open_head(head: str, object_name: str | None):
    """A .blend is opened (its object chosen by name or the only FLAME mesh);
    a .ply/.obj becomes an upright object in a fresh scene."""
    path = Path(head)
    if path.suffix.lower() == ".blend":
        if not path.is_file():
            raise FileNotFoundError(f"head file '{path}' does not exist")
        bpy.ops.wm.open_mainfile(filepath=str(path))
        meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
        if object_name:
            obj = bpy.data.objects.get(object_name)
            if obj is None:
                raise ValueError(f"no object named '{object_name}' in {path}")
        else:
            flame = [o for o in meshes if len(o.data.vertices) == 5023]
            if len(flame) != 1:
                raise ValueError(f"{path} has {len(flame)} FLAME meshes: name one with --object")
            obj = flame[0]
    else:
        vertices, faces = load_head(path)  # raises on non-FLAME input
        bpy.ops.wm.read_factory_settings(use_empty=True)
        mesh = bpy.data.meshes.new(object_name or RIG_NAME)
        mesh.from_pydata(vertices.tolist(), [], faces.tolist())
        mesh.shade_smooth() if hasattr(mesh, "shade_smooth") else None
        obj = bpy.data.objects.new(object_name or RIG_NAME, mesh)
        obj.rotation_euler = (math.pi / 2, 0, 0)  # FLAME is +Y up, Blender +Z up
        bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    sources.check_target(obj)
    return obj


def add_dialogue_strip(scene, audio: str):
    """The dialogue as a sound strip at the scene start, so playback has sound."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 4.4+ / before
    for old in [s for s in strips if s.get("flame_lipsync")]:
        strips.remove(old)
    strip = strips.new_sound("Dialogue", str(Path(audio).resolve()), 2, scene.frame_start)
    strip["flame_lipsync"] = True
    return strip


def bake(audio: str, head: str, out: str, object_name=None, transcript=None, engine="phonetic",
         mode="shapekeys", fps=None, export_npy=None, style=None) -> str:
    if not Path(audio).is_file():
        raise FileNotFoundError(f"audio file '{audio}' does not exist")
    obj = open_head(head, object_name)
    scene = bpy.context.scene
    if fps:
        set_scene_fps(scene, fps)
    strip = add_dialogue_strip(scene, audio)
    props = scene.flame_lipsync
    props.source, props.strip = "STRIP", strip.name
    props.transcript = transcript or ""
    if engine not in [item.identifier for item in props.bl_rna.properties["engine"].enum_items]:
        from ..core.engines import ENGINES
        raise ValueError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")
    props.engine = engine
    if style:
        try:
            props.style = style
        except TypeError:
            raise ValueError(f"unknown speaking style '{style}' for engine '{engine}'") from None
    props.bake_mode = {"shapekeys": "SHAPE_KEYS", "meshcache": "MESH_CACHE"}[mode]
    out_path = Path(out).resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 beside batch output
    if mode == "meshcache":  # the PC2 goes beside the saved .blend, by relative path
        bpy.ops.wm.save_as_mainfile(filepath=str(out_path))
    log(f"[{Path(audio).name}] analysing speech ({engine})...")
    obj, speech, scene_fps, first, settings = gather(bpy.context)
    performance = compute(speech, scene_fps, first, settings,
                          stage=lambda name, f: log(f"[{Path(audio).name}] {name}"))
    summary = write(obj, performance, settings)
    scene.frame_start = first
    scene.frame_end = first + performance.frame_count - 1
    bpy.ops.wm.save_as_mainfile(filepath=str(out_path))
    if export_npy:
        head_local = head_vertices(obj)
        fields = load_rig().fields_for(head_local).reshape(len(performance.control_names), -1)
        vertices = head_local[None] + (performance.controls @ fields).reshape(performance.frame_count, -1, 3)
        np.save(export_npy, vertices.astype(np.float32))
    return f"{summary}; saved {out_path}"


def preview(blend: str, out: str, size=(480, 480), stills_dir: str | None = None, stills: int = 4) -> str:
    """Render the baked animation with Workbench from a front camera, with sound."""
    if not Path(blend).is_file():
        raise FileNotFoundError(f"blend file '{blend}' does not exist")
    bpy.ops.wm.open_mainfile(filepath=str(Path(blend).resolve()))
    scene = bpy.context.scene
    heads = [o for o in scene.objects if o.type == "MESH" and o.get("flame_lipsync")]
    heads = heads or [o for o in scene.objects if o.type == "MESH" and len(o.data.vertices) == 5023]
    if not heads:
        raise ValueError(f"{blend} has no baked FLAME head to preview")
    head = heads[0]
    corners = np.array([head.matrix_world @ v.co for v in head.data.vertices])
    centre, extent = (corners.min(0) + corners.max(0)) / 2, corners.max(0) - corners.min(0)
    camera_data = bpy.data.cameras.new("LipSyncPreview")
    camera_data.type = "ORTHO"
    camera_data.ortho_scale = float(max(extent[0], extent[2])) * 0.75
    camera = bpy.data.objects.new("LipSyncPreview", camera_data)
    scene.collection.objects.link(camera)
    # Front: FLAME's +Z (face direction) is world -Y after the upright rotation.
    forward = np.array(head.matrix_world.to_3x3() @ __import__("mathutils").Vector((0, 0, 1)))
    camera.location = centre + forward * 1.0 + np.array([0, 0, extent[2] * 0.12])
    camera.rotation_euler = (-__import__("mathutils").Vector(forward)).to_track_quat("-Z", "Y").to_euler()
    scene.camera = camera
    render = scene.render
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_x, render.resolution_y = size
    render.resolution_percentage = 100
    scene.display.render_aa = "FXAA"  # 8-sample AA costs ~1.5 s a frame on CPU
    scene.display.shading.light = "STUDIO"
    scene.display.shading.show_cavity = True
    if hasattr(render.image_settings, "media_type"):
        render.image_settings.media_type = "VIDEO"
    render.image_settings.file_format = "FFMPEG"
    render.ffmpeg.format = "MPEG4"
    render.ffmpeg.codec = "H264"
    render.ffmpeg.audio_codec = "AAC"
    render.filepath = str(Path(out).resolve())
    log(f"rendering frames {scene.frame_start}-{scene.frame_end} to {out}...")
    bpy.ops.render.render(animation=True)
    if stills_dir:
        render_stills(scene, Path(stills_dir), stills)
    return f"wrote {out}"


def render_stills(scene, folder: Path, count: int) -> None:
    """Evenly spaced PNG frames of the same shot (for docs and quick checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    render = scene.render
    if hasattr(render.image_settings, "media_type"):
        render.image_settings.media_type = "IMAGE"
    render.image_settings.file_format = "PNG"
    span = scene.frame_end - scene.frame_start
    for k in range(count):
        frame = scene.frame_start + round(span * (k + 0.5) / count)
        scene.frame_set(frame)
        render.filepath = str(folder / f"frame_{frame:04d}.png")
        bpy.ops.render.render(write_still=True)
