"""Headless jobs for cli.py: open or build a scene, bake through the same
operator path as the UI, save; and render a preview movie with sound."""
import math
import sys
from pathlib import Path

import bpy
import numpy as np

from ..core import atomic
from ..core.mesh_io import load_head
from ..blender import sources
from .generate import cache_file, gather
from .job import head_vertices, write
from .. import pipeline

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


def has_audio_library() -> bool:
    """Blender's audaspace (`aud`): sound strips need it; some bpy wheels are built without."""
    try:
        import aud  # noqa: F401
    except ImportError:
        return False
    return True


def add_dialogue_strip(scene, audio: str):
    """The dialogue as a sound strip at the scene start, so playback has sound."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 4.4+ / before
    for old in [s for s in strips if s.get("flame_lipsync")]:
        strips.remove(old)
    strip = strips.new_sound("Dialogue", str(Path(audio).resolve()), 2, scene.frame_start)
    strip["flame_lipsync"] = True
    return strip


def same_file(a, b) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_outputs(audio, head, out, export_npy=None, transcript_file=None) -> None:
    """Before any slow work: an output never replaces an input, and can be written."""
    outputs = [("--out", out)] + ([("--export-npy", export_npy)] if export_npy else [])
    inputs = [("audio", audio), ("head", head)] + ([("transcript", transcript_file)] if transcript_file else [])
    for flag, path in outputs:
        for what, source in inputs:
            if same_file(path, source):
                raise ValueError(f"{flag} '{path}' is the {what} file: the bake would replace its own input; "
                                 "choose another output path")
    if export_npy and same_file(out, export_npy):
        raise ValueError(f"--out and --export-npy are the same file '{out}': give them different paths")
    if Path(out).suffix.lower() != ".blend":
        raise ValueError(f"--out '{out}' must be a .blend file (e.g. {Path(out).with_suffix('.blend').name})")
    for flag, path in outputs:
        atomic.check_writable(path, flag)


def shot_cache(out_path: Path, object_name: str) -> Path:
    """The PC2 of a headless mesh-cache bake: beside the .blend, named after it and the object."""
    return cache_file(out_path.parent, str(out_path), object_name)


def save_blend(path: Path, tmp: Path) -> None:
    """Save the scene to `tmp` (staged beside `path`) and check it is complete; the
    rename over `path` happens when the job commits."""
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp))
    except RuntimeError as err:
        Path(f"{tmp}@").unlink(missing_ok=True)  # Blender's own temporary file
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "the save failed"
        raise atomic.WriteError(f"could not write '{path}': {reason} (the previous file was left as it was); "
                                "free some space or choose another --out.") from None
    if not tmp.is_file():
        raise atomic.WriteError(f"could not write '{path}': Blender did not save it (the previous file was left "
                                "as it was); check the disk has space and the folder is writable.")
    try:
        atomic.check_blend(tmp)
    except atomic.WriteError:
        kept = " (the previous file was left as it was)" if path.exists() else ""
        raise atomic.WriteError(f"could not write '{path}': the saved file came out incomplete, the disk is "
                                f"probably full{kept}; free some space or choose another --out.") from None


def bake(audio: str, head: str, out: str, object_name=None, transcript=None, engine="phonetic",
         mode="shapekeys", fps=None, export_npy=None, style=None, on_conflict="refuse",
         transcript_file=None, face: dict | None = None) -> str:
    """`face`: scene settings of the face layers (panels/properties.py names, e.g.
    {"layer_head": False, "emotion_preset": "HAPPY"}), as the sidebar sets them."""
    if not Path(audio).is_file():
        what = "is a folder, not an audio file" if Path(audio).is_dir() else "does not exist"
        raise FileNotFoundError(f"audio file '{audio}' {what}")
    check_outputs(audio, head, out, export_npy, transcript_file)
    out_path = Path(out).resolve()
    with atomic.exclusive(out_path, "blend"), atomic.Staged() as staged:
        return _bake(audio, head, out_path, object_name, transcript, engine, mode, fps, export_npy,
                     style, on_conflict, staged, face)


def _bake(audio, head, out_path: Path, object_name, transcript, engine, mode, fps, export_npy, style,
          on_conflict, staged, face=None) -> str:
    obj = open_head(head, object_name)
    scene = bpy.context.scene
    if fps:
        set_scene_fps(scene, fps)
    props = scene.flame_lipsync  # type: ignore[attr-defined]  # registered by register()
    if has_audio_library():
        props.source, props.strip = "STRIP", add_dialogue_strip(scene, audio).name
    else:  # e.g. PyPI's bpy 4.2 wheel: the bake reads the file itself; the .blend plays silent
        log(f"[{Path(audio).name}] note: this Blender is built without audaspace, so no sound strip "
            "is added (the baked .blend plays silent; Blender's own builds add it)")
        props.source, props.audio_file = "FILE", str(Path(audio).resolve())
    props.transcript = transcript or ""
    if engine not in [item.identifier for item in props.bl_rna.properties["engine"].enum_items]:
        pipeline.get_engine(engine)  # raises with the reason and the choices
    props.engine = engine
    for name, value in (face or {}).items():
        setattr(props, name, value)
    if style:
        try:
            props.style = style
        except TypeError:
            raise ValueError(f"unknown speaking style '{style}' for engine '{engine}'") from None
    props.bake_mode = {"shapekeys": "SHAPE_KEYS", "meshcache": "MESH_CACHE"}[mode]
    props.stash_existing_action = on_conflict == "stash"
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 beside batch output
    blend_tmp = staged.stage(out_path, ".blend")  # renamed over --out only when all is written
    if mode == "meshcache":  # saved first in the output's folder: the cache's '//' path resolves there
        save_blend(out_path, blend_tmp)
    log(f"[{Path(audio).name}] analysing speech ({engine})...")
    if props.all_strips:  # one action per strip of the channel (cli --all-strips-on-channel)
        from .generate import bake_all_strips
        summary = bake_all_strips(bpy.context, props.strip_channel)
        save_blend(out_path, blend_tmp)
        return f"{summary}; saved {out_path}"
    obj, speech, scene_fps, first, settings = gather(bpy.context)
    if mode == "meshcache":
        settings.cache_path, settings.relative_cache = str(shot_cache(out_path, obj.name)), True
        staged.protect(settings.cache_path)  # a failed job puts the previous cache back
    performance = pipeline.perform(speech, scene_fps, settings, first,
                                   stage=lambda name, f: log(f"[{Path(audio).name}] {name}"))
    summary = write(obj, performance, settings, mouth_interior=props.bake_mouth_interior)
    scene.frame_start = first
    scene.frame_end = first + performance.frame_count - 1
    save_blend(out_path, blend_tmp)
    if export_npy:
        npy = Path(export_npy).resolve()
        tmp = staged.stage(npy, ".npy")
        vertices = pipeline.pose(performance, head_vertices(obj))
        try:
            atomic.write_npy_blocks(tmp, vertices.shape, vertices.dtype, (vertices,))
        except atomic.WriteError as err:
            raise atomic.WriteError(str(err).replace(str(tmp), str(npy))) from None
    return f"{summary}; saved {out_path}"


def preview(blend: str, out: str, size=(480, 480), stills_dir: str | None = None, stills: int = 4) -> str:
    """Render the baked animation with Workbench from a front camera, with sound, to an
    .mp4 written atomically: a failed or interrupted render leaves no partial movie and
    the previous preview as it was."""
    if not Path(blend).is_file():
        raise FileNotFoundError(f"blend file '{blend}' does not exist")
    out_path = Path(out).resolve()
    if out_path.suffix.lower() != ".mp4":
        raise ValueError(f"--out '{out}' must be an .mp4 file (e.g. {out_path.with_suffix('.mp4').name})")
    atomic.check_writable(out_path, "--out")
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
    render.engine = "BLENDER_WORKBENCH"  # type: ignore[assignment]  # stubs list only EEVEE (the enum is built at runtime)
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
    log(f"rendering frames {scene.frame_start}-{scene.frame_end} to {out}...")
    with atomic.exclusive(out_path, "movie"), atomic.Staged() as staged:
        tmp = staged.stage(out_path)  # ends in .mp4, so Blender writes exactly this name
        render.filepath = str(tmp)
        render_movie()
        check_movie(out_path, tmp)
    if stills_dir:
        render_stills(scene, Path(stills_dir), stills)
    return f"wrote {out}"


def render_movie() -> None:
    bpy.ops.render.render(animation=True)


def check_movie(path: Path, tmp: Path) -> None:
    """The rendered movie is there and complete (Blender reports success for a movie a
    full disk cut short)."""
    kept = " (the previous file was left as it was)" if path.exists() else ""
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise atomic.WriteError(f"could not write '{path}': Blender rendered no movie{kept}; check the disk "
                                "has space and the folder is writable.")
    try:
        atomic.check_mp4(tmp)
    except atomic.WriteError:
        raise atomic.WriteError(f"could not write '{path}': the rendered movie came out incomplete, the disk "
                                f"is probably full{kept}; free some space or choose another --out.") from None


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
