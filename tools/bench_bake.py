"""Bake speed: bulk writers vs naive Python loops, same run (`python tools/bench_bake.py`).

1. Shape keys, 60 s at 30 fps (1800 frames x 10 controls):
   bulk  = operators.bake.bake_shape_keys (keyframe_points.add + foreach_set)
   naive = the same shape keys, then `key_block.value = w;
           key_block.keyframe_insert("value", frame=f)` per frame per control.
2. Mesh cache, 1800 frames x 5023 vertices:
   bulk  = operators.bake.bake_mesh_cache (streamed numpy PC2 + MeshCache modifier)
   naive = a PC2 writer calling struct.pack per vertex per frame (+ the same modifier).

Each naive result is checked against the bulk one (same keys / same bytes).
When a naive loop would take long it is timed on a leading subset of frames and
extrapolated linearly (said in the output; for keyframe_insert, whose cost per
key grows with the curve length, linear extrapolation under-estimates the naive
time, so the ratio reported is conservative). Writes out/bench_bake.json.

    python tools/bench_bake.py [--seconds 60] [--fps 30] [--naive-budget 20]
"""
import argparse
import json
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

import addon_package  # noqa: E402

addon_package.load_addon()
from flame_lipsync.operators import bake  # noqa: E402

from core.flame import FLAME_ASSETS, VERTEX_COUNT  # noqa: E402
from core.mesh_io import load_head  # noqa: E402
from core.pc2 import HEADER_SIZE  # noqa: E402
from core.rig import CONTROLS, load_rig  # noqa: E402


def _head_geometry():
    path = FLAME_ASSETS / "flame_template.ply"
    if path.is_file():
        return load_head(path)
    print(f"(no {path}: using random points with FLAME's vertex count)", file=sys.stderr)
    return np.random.default_rng(0).normal(0, 0.1, (VERTEX_COUNT, 3)).astype(np.float32), \
        np.zeros((0, 3), np.int32)


def _fresh_head(geometry, name="Head"):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    vertices, faces = geometry
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.astype(float).tolist(), [], faces.astype(int).tolist())
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _fcurve_co(action) -> list[np.ndarray]:
    curves = ([fc for layer in action.layers for strip in layer.strips
               for bag in strip.channelbags for fc in bag.fcurves]
              if getattr(action, "layers", None) is not None and len(action.layers)
              else list(action.fcurves))
    out = []
    for fc in sorted(curves, key=lambda fc: fc.data_path):
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out.append(co)
    return out


def bench_shape_keys(geometry, fields, weights, budget_s):
    frames = len(weights)
    obj = _fresh_head(geometry)
    t0 = time.perf_counter()
    action = bake.bake_shape_keys(obj, CONTROLS, fields, weights, frame_start=1)
    bulk = time.perf_counter() - t0
    bulk_co = _fcurve_co(action)

    # Naive: the same key blocks (made the same way, timed), then keyframe_insert
    # per frame per control into a fresh action.
    obj = _fresh_head(geometry)
    t0 = time.perf_counter()
    bake.bake_shape_keys(obj, CONTROLS, fields, weights[:1], frame_start=1)
    key = obj.data.shape_keys
    key.animation_data.action = None          # start the naive action from scratch
    setup = time.perf_counter() - t0
    blocks = [key.key_blocks["LS_" + c] for c in CONTROLS]
    # Probe: time 60 frames, then choose how many frames fit the budget.
    done, t_keys = 0, 0.0
    probe = min(frames, 60)
    for limit in (probe, None):
        if limit is None:
            per_frame = t_keys / max(done, 1)
            limit = frames if per_frame * frames <= budget_s else max(done, int(budget_s / per_frame))
        t0 = time.perf_counter()
        for f in range(done, limit):
            for kb, w in zip(blocks, weights[f]):
                kb.value = w
                kb.keyframe_insert("value", frame=1 + f)
        t_keys += time.perf_counter() - t0
        done = limit
    measured = done
    naive = setup + t_keys * frames / measured
    action = key.animation_data.action
    naive_co = _fcurve_co(action)
    same = all(np.allclose(a[: 2 * measured], b[: 2 * measured], atol=1e-6)
               for a, b in zip(bulk_co, naive_co)) and len(bulk_co) == len(naive_co)
    return {"bulk_s": bulk, "naive_s": naive, "naive_frames_timed": measured,
            "naive_extrapolated": measured < frames, "keys": frames * len(CONTROLS),
            "same_keys": bool(same)}


def _naive_pc2(path, frames_iter, count, start):
    with open(path, "wb") as f:
        f.write(struct.pack("<12siiffi", b"POINTCACHE2\0", 1, VERTEX_COUNT, float(start), 1.0, count))
        for frame in frames_iter:
            for x, y, z in frame.tolist():
                f.write(struct.pack("<3f", x, y, z))


def bench_mesh_cache(geometry, vertices_fn, frames, budget_s, folder: Path):
    obj = _fresh_head(geometry)
    vertices = vertices_fn(frames)
    bulk_path = folder / "bulk.pc2"
    t0 = time.perf_counter()
    bake.bake_mesh_cache(obj, vertices, 1, str(bulk_path), relative=False)
    bulk = time.perf_counter() - t0

    obj = _fresh_head(geometry)
    naive_path = folder / "naive.pc2"
    probe = min(frames, 30)
    t0 = time.perf_counter()
    _naive_pc2(naive_path, vertices[:probe], probe, 1)
    per_frame = (time.perf_counter() - t0) / probe
    measured = frames if per_frame * frames <= budget_s else max(probe, int(budget_s / per_frame))
    t0 = time.perf_counter()
    _naive_pc2(naive_path, vertices[:measured], measured, 1)
    mod = obj.modifiers.new("LS_MeshCache", 'MESH_CACHE')
    mod.cache_format, mod.filepath, mod.frame_start = 'PC2', str(naive_path), 1.0
    naive = (time.perf_counter() - t0) * frames / measured
    naive_bytes = naive_path.read_bytes()
    with open(bulk_path, "rb") as f:
        bulk_head = f.read(len(naive_bytes))
    # Same payload (headers differ only in the sample count when a subset was timed).
    same = bulk_head[HEADER_SIZE:] == naive_bytes[HEADER_SIZE:] and bulk_head[:28] == naive_bytes[:28]
    return {"bulk_s": bulk, "naive_s": naive, "naive_frames_timed": measured,
            "naive_extrapolated": measured < frames, "bytes": bulk_path.stat().st_size,
            "same_bytes": bool(same)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--naive-budget", type=float, default=20.0,
                        help="seconds each naive loop may run before it is extrapolated")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench_bake.json"))
    args = parser.parse_args()
    frames = int(round(args.seconds * args.fps))

    geometry = _head_geometry()
    rig = load_rig()
    fields = rig.fields_for(geometry[0]).astype(np.float64)
    weights = np.clip(np.random.default_rng(0).normal(0.3, 0.25, (frames, len(CONTROLS))), 0, 1.2)

    def vertices_fn(n):
        return geometry[0][None] + np.einsum("tc,cnd->tnd", weights[:n], fields).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        shape = bench_shape_keys(geometry, fields, weights, args.naive_budget)
        cache = bench_mesh_cache(geometry, vertices_fn, frames, args.naive_budget, Path(tmp))

    result = {
        "blender": bpy.app.version_string, "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "frames": frames, "fps": args.fps, "controls": len(CONTROLS), "vertices": VERTEX_COUNT,
        "shape_keys": {**shape, "ratio": shape["naive_s"] / shape["bulk_s"]},
        "mesh_cache": {**cache, "ratio": cache["naive_s"] / cache["bulk_s"]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))

    print(f"Blender {result['blender']}, {frames} frames ({args.seconds:g} s at {args.fps:g} fps), "
          f"{len(CONTROLS)} controls, {VERTEX_COUNT} vertices")
    print(f"{'bake':<12}{'bulk s':>10}{'naive s':>12}{'ratio':>10}  naive timing / check")
    for name, r, check in (("shape keys", result["shape_keys"], "same_keys"),
                           ("mesh cache", result["mesh_cache"], "same_bytes")):
        how = (f"extrapolated from {r['naive_frames_timed']} of {frames} frames"
               if r["naive_extrapolated"] else "all frames")
        print(f"{name:<12}{r['bulk_s']:>10.3f}{r['naive_s']:>12.2f}{r['ratio']:>9.0f}x  "
              f"{how}; {check}={r[check]}")
    print(f"-> {args.out}")
    ok = all(result[k]["ratio"] >= 20 for k in ("shape_keys", "mesh_cache"))
    return 0 if ok and shape["same_keys"] and cache["same_bytes"] else 1


if __name__ == "__main__":
    sys.exit(main())
