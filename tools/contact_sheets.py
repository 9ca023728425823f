"""Contact sheets for looking at the rig and the engine (committed under docs/).

    python cli.py render-frames rig --out docs/rig_controls.png
    python cli.py render-frames clip --audio A --transcript T --reference J --out S.png
"""
import tempfile
from pathlib import Path

import numpy as np
from flame_lipsync.core.flame import FLAME_ASSETS, SHARED_HEADS
from flame_lipsync.core.mesh_io import load_head, recentred
from flame_lipsync.core.rig import CONTROLS, load_rig



def shared_heads():
    """The four shared FLAME heads, DECA's recentred onto the template."""
    if not FLAME_ASSETS.is_dir():
        raise FileNotFoundError(f"shared heads not found at {FLAME_ASSETS}")
    template, faces = load_head(FLAME_ASSETS / SHARED_HEADS[0])
    heads = {}
    for name in SHARED_HEADS:
        vertices, _ = load_head(FLAME_ASSETS / name)
        heads[name] = recentred(vertices, template) if name.endswith(".obj") else vertices
    return heads, faces


def rig_sheet(out: Path, view: str = "mouth") -> Path:
    """Rows: the four heads; columns: neutral, then every control at weight 1."""
    from flame_lipsync.blender.render import contact_sheet, render_heads

    heads, faces = shared_heads()
    rig = load_rig()
    stills, labels = [], []
    for head_name, vertices in heads.items():
        fields = rig.fields_for(vertices)
        for control in ("neutral",) + CONTROLS:
            offset = 0 if control == "neutral" else fields[CONTROLS.index(control)]
            stills.append(vertices + offset)
            labels.append(f"{head_name.split('.')[0][:14]}\n{control}")
    with tempfile.TemporaryDirectory() as tmp:
        images = render_heads(faces, stills, Path(tmp), [f"{i:03d}" for i in range(len(stills))],
                              size=(220, 220), view=view)
        return contact_sheet(images, labels, columns=len(CONTROLS) + 1, out_path=out,
                             title="Rig controls at weight 1 on the four shared FLAME heads")


def three_quarter(vertices, degrees=55.0):
    """The head turned about its vertical axis (FLAME +Y), around the mouth."""
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    centre = vertices.mean(0)
    return (vertices - centre) @ turn.T + centre


def _pick_frames(phones, fps, n_frames, groups, per_group=4):
    """Frames at the middle of the first few phones of each group."""
    picks = []
    for title, labels in groups:
        chosen = [p for p in phones if p.label in labels and p.end - p.start >= 0.03][:per_group]
        for p in chosen:
            frame = min(int(round(0.5 * (p.start + p.end) * fps)), n_frames - 1)
            picks.append((frame, f"{title}: {p.label} @{p.start:.2f}s"))
    return picks


def clip_strip(out: Path, audio: str, transcript: str | None, reference: str | None,
               head: str | None = None, fps: float = 30.0, engines=("phonetic",)) -> Path:
    """Frames of a clip at its M/P/B, F/V and open-vowel phones: for one engine,
    front and three-quarter views; for several, their front views side by side."""
    from flame_lipsync import pipeline
    from flame_lipsync.core.metrics import RefPhone, load_reference_phones
    from flame_lipsync.core.visemes import BILABIALS, LABIODENTALS, OPEN_VOWELS
    from flame_lipsync.blender.render import contact_sheet, render_heads

    head_vertices, faces = load_head(head or FLAME_ASSETS / SHARED_HEADS[0])
    speech = pipeline.load_audio(audio, fps=fps)
    performances = [pipeline.perform(speech, fps, pipeline.Settings(engine=engine, transcript=transcript))
                    for engine in engines]
    if reference:
        phones = load_reference_phones(reference)
    else:
        phones = [RefPhone(*p) for p in performances[0].metadata["phones"]]
    groups = [("closed", BILABIALS), ("F/V", LABIODENTALS), ("open", OPEN_VOWELS)]
    picks = _pick_frames(phones, fps, min(p.frame_count for p in performances), groups)
    stills, labels = [], []
    for f, label in picks:
        for engine, performance in zip(engines, performances):
            posed = pipeline.pose(performance.with_(controls=performance.controls[f:f + 1]), head_vertices)[0]
            stills.append(posed)
            labels.append(f"frame {f}\n{label}" if engine == engines[0] else f"({engine})")
            if len(engines) == 1:  # three-quarter: protrusion and the F/V tuck show from the side
                stills.append(three_quarter(posed))
                labels.append("(3/4 view)")
    per_pick = max(2, len(engines))
    with tempfile.TemporaryDirectory() as tmp:
        images = render_heads(faces, stills, Path(tmp), [f"{i:03d}" for i in range(len(stills))],
                              size=(240, 240), view="mouth")
        mode = "with" if transcript else "without"
        title = (f"{Path(audio).name}: {' vs '.join(engines)}, {mode} transcript, {fps:g} fps"
                 + ("  (left: first engine)" if len(engines) > 1 else ""))
        return contact_sheet(images, labels, columns=3 * per_pick, out_path=out, title=title)


# Poses of docs/teeth.png: the hand-set viseme targets of these phones (fixed here so
# the sheet does not change when core.visemes' targets are refitted).
TEETH_POSES = (
    ("rest", {}),
    ("AA", {"jaw_open": 0.50, "lower_lip_down": 0.25}),
    ("OO", {"jaw_open": 0.12, "pucker": 0.85}),
    ("M", {"lips_close": 1.0, "lips_press": 0.35}),
    ("F", {"jaw_open": 0.06, "lower_lip_tuck": 1.0, "upper_lip_raise": 0.15}),
)


def pose_controls(pose: dict) -> np.ndarray:
    controls = np.zeros(len(CONTROLS), np.float32)
    for name, value in pose.items():
        controls[CONTROLS.index(name)] = value
    return controls


def teeth_sheet(out: Path, size: int = 240) -> Path:
    """Rows: the four heads with teeth, tongue and cavity; columns: rest, AA, OO, M, F
    (front), then AA in three-quarter view (nothing may poke through lips or cheeks)."""
    import bpy

    from flame_lipsync.blender import render
    from flame_lipsync.core import mouth_interior

    heads, faces = shared_heads()
    rig = load_rig()
    stills, labels = [], []
    a = np.radians(55.0)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    for head_name, vertices in heads.items():
        interior = mouth_interior.build(vertices, rig)
        fields = rig.fields_for(vertices)
        for label, pose in TEETH_POSES + (("AA 3/4", TEETH_POSES[1][1]),):
            controls = pose_controls(pose)
            posed = vertices + np.tensordot(controls, fields, 1)
            parts = interior.posed(controls)
            if label.endswith("3/4"):
                centre = posed.mean(0)
                posed = (posed - centre) @ turn.T + centre
                parts = {k: (p - centre) @ turn.T + centre for k, p in parts.items()}
            stills.append((posed.astype(np.float32), parts))
            labels.append(f"{head_name.split('.')[0][:14]}\n{label}")
    centres, scale = render._framing([s[0] for s in stills], "mouth", 1.0)
    scene, mesh, cam = render._setup_scene(faces, stills[0][0], (size, size))
    cam.data.ortho_scale = scale
    scene.display.shading.color_type = "MATERIAL"
    skin = bpy.data.materials.new("skin")
    skin.diffuse_color = (*render.SKIN, 1.0)
    mesh.materials.append(skin)
    meshes = {}
    for name, part in mouth_interior.build(heads[SHARED_HEADS[0]], rig).parts.items():
        part_mesh = bpy.data.meshes.new(name)
        part_mesh.from_pydata(part.vertices.tolist(), [], part.faces.astype(int).tolist())
        part_mesh.shade_smooth()
        material = bpy.data.materials.new(name)
        material.diffuse_color = (*mouth_interior.COLORS[name], 1.0)
        material.roughness, material.specular_intensity = (1.0, 0.0) if name == "cavity" else (0.35, 0.3)
        part_mesh.materials.append(material)
        scene.collection.objects.link(bpy.data.objects.new(name, part_mesh))
        meshes[name] = part_mesh
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for i, ((posed, parts), centre) in enumerate(zip(stills, centres)):
            mesh.vertices.foreach_set("co", posed.ravel())
            mesh.update()
            for name, part_mesh in meshes.items():
                part_mesh.vertices.foreach_set("co", parts[name].astype(np.float32).ravel())
                part_mesh.update()
            cam.location = tuple(float(x) for x in centre)
            path = Path(tmp) / f"{i:03d}.png"
            scene.render.filepath = str(path)
            bpy.ops.render.render(write_still=True)
            images.append(path)
        return contact_sheet_of(images, labels, len(TEETH_POSES) + 1, out)


def contact_sheet_of(images, labels, columns, out):
    from flame_lipsync.blender.render import contact_sheet
    return contact_sheet(images, labels, columns=columns, out_path=out,
                         title="Teeth, tongue and mouth cavity (viseme targets) on the four shared FLAME heads")
