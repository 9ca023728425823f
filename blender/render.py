"""Render FLAME heads as stills (Workbench, headless) and assemble contact sheets.

Used for visual checks and docs: every head passed to ``render_heads`` becomes one
PNG, framed from its own geometry (heads sit at different places: DECA's is
~1.3 m up, the registered mesh is posed) with one scale per call, so heads
rendered together are directly comparable.

``render_heads`` resets Blender to an empty factory scene (it is a tool for
headless scripts and tests, not for use inside an artist's open file).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.flame import LOWER_LIP_EDGE, UPPER_LIP_EDGE

VIEWS = ("face", "mouth")
MOUTH_WINDOW = 0.07          # metres across the mouth close-up
FACE_MARGIN = 1.15           # breathing room around the face box
SKIN = (0.95, 0.60, 0.45)    # neutral skin-ish single colour (linear RGB)
BACKGROUND = (0.85, 0.85, 0.85)


def _face_box(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (x, y) and size (w, h) of the front half of the head."""
    front = vertices[vertices[:, 2] > np.median(vertices[:, 2])]
    lo, hi = front[:, :2].min(0), front[:, :2].max(0)
    return (lo + hi) / 2, hi - lo


def _framing(heads: list[np.ndarray], view: str, aspect: float):
    """Per-head camera centres (x, y, z) and one ortho scale for the whole call."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    centres, sizes = [], []
    for v in heads:
        if view == "face":
            c, s = _face_box(v)
            s = s * FACE_MARGIN
        else:
            c = (v[UPPER_LIP_EDGE, :2] + v[LOWER_LIP_EDGE, :2]) / 2
            s = np.array([MOUTH_WINDOW, MOUTH_WINDOW / aspect])
        centres.append(np.array([c[0], c[1], v[:, 2].max() + 1.0]))
        sizes.append(s)
    need_w, need_h = np.max(sizes, axis=0)
    # With sensor_fit AUTO the ortho scale spans the longer image side.
    if aspect >= 1:
        scale = max(need_w, need_h * aspect)
    else:
        scale = max(need_h, need_w / aspect)
    return centres, float(scale)


def _setup_scene(faces: np.ndarray, first: np.ndarray, size: tuple[int, int]):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene

    mesh = bpy.data.meshes.new("head")
    mesh.from_pydata(first.astype(float).tolist(), [], faces.astype(int).tolist())
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
    mesh.update()
    obj = bpy.data.objects.new("head", mesh)
    scene.collection.objects.link(obj)

    cam_data = bpy.data.cameras.new("camera")
    cam_data.type = "ORTHO"
    cam_data.clip_start, cam_data.clip_end = 0.01, 10.0
    cam = bpy.data.objects.new("camera", cam_data)
    cam.rotation_euler = (0.0, 0.0, 0.0)        # looks along -Z, +Y up
    scene.collection.objects.link(cam)
    scene.camera = cam

    world = bpy.data.worlds.new("world")
    world.color = BACKGROUND
    scene.world = world

    render = scene.render
    render.engine = "BLENDER_WORKBENCH"  # type: ignore[assignment]  # stubs list only EEVEE (the enum is built at runtime)
    render.resolution_x, render.resolution_y = int(size[0]), int(size[1])
    render.resolution_percentage = 100
    render.film_transparent = False
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"  # type: ignore[assignment]  # stubs: "NONE" only (OCIO-defined enum)
    scene.display.render_aa = "8"

    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.studio_light = "Default"
    shading.color_type = "SINGLE"
    shading.single_color = SKIN
    shading.show_cavity = True
    shading.cavity_type = "BOTH"
    shading.curvature_ridge_factor = 0.5
    shading.curvature_valley_factor = 1.5
    shading.cavity_ridge_factor = 0.5
    shading.cavity_valley_factor = 1.5
    shading.show_shadows = True
    shading.shadow_intensity = 0.4
    shading.show_specular_highlight = True
    return scene, mesh, cam


def render_heads(faces: np.ndarray, heads: list[np.ndarray], out_dir: Path,
                 names: list[str], size: tuple[int, int] = (400, 400),
                 view: str = "face") -> list[Path]:
    """Render each (V, 3) head as one PNG ``out_dir/<name>.png``; return the paths.

    view "face" frames the front half of the head; "mouth" a ~7 cm window
    centred between the mid-lip edge vertices. The camera scale is shared by
    all heads of one call; only its centre follows each head.
    """
    import bpy

    if len(heads) != len(names):
        raise ValueError(f"{len(heads)} heads but {len(names)} names")
    if not heads:
        return []
    faces = np.asarray(faces)
    heads = [np.asarray(h, dtype=np.float32) for h in heads]
    n = len(heads[0])
    if any(h.shape != (n, 3) for h in heads):
        raise ValueError("all heads must be (V, 3) arrays with the same vertex count")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.max() >= n:
        raise ValueError(f"faces must be (F, 3) indices below {n}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    centres, scale = _framing(heads, view, size[0] / size[1])
    scene, mesh, cam = _setup_scene(faces, heads[0], size)
    cam.data.ortho_scale = scale

    paths = []
    for head, centre, name in zip(heads, centres, names):
        mesh.vertices.foreach_set("co", head.ravel())
        mesh.update()
        cam.location = tuple(float(x) for x in centre)
        path = out_dir / f"{name}.png"
        scene.render.filepath = os.fspath(path)
        bpy.ops.render.render(write_still=True)
        paths.append(path)
    return paths


def contact_sheet(images: list[Path], labels: list[str], columns: int,
                  out_path: Path, title: str | None = None,
                  cell_px: int = 200) -> Path:
    """Lay PNGs out in a grid, a label under each, optional title; write one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    columns = max(1, min(int(columns), len(images)))
    rows = -(-len(images) // columns)
    pictures = [plt.imread(os.fspath(p)) for p in images]
    aspect = pictures[0].shape[0] / pictures[0].shape[1]     # cell shape follows the first image
    dpi = 100
    cell_w = cell_px / dpi
    cell_h = cell_w * aspect
    label_h = 0.25
    title_h = 0.4 if title else 0.0
    fig_w = columns * cell_w
    fig_h = rows * (cell_h + label_h) + title_h
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi, facecolor="white")
    for i, (picture, label) in enumerate(zip(pictures, labels)):
        r, c = divmod(i, columns)
        left = c * cell_w / fig_w
        bottom = 1 - (title_h + (r + 1) * (cell_h + label_h) - label_h) / fig_h
        ax = fig.add_axes((left, bottom, cell_w / fig_w, cell_h / fig_h))
        ax.imshow(picture)
        ax.set_axis_off()
        fig.text(left + cell_w / fig_w / 2, bottom - 0.02 / fig_h, str(label),
                 ha="center", va="top", fontsize=8)
    if title:
        fig.text(0.5, 1 - 0.08 / fig_h, title, ha="center", va="top", fontsize=11)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(os.fspath(out_path), dpi=dpi, facecolor="white")
    plt.close(fig)
    return out_path
