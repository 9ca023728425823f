"""The naive bake baselines, and a standalone bulk-vs-naive check on synthetic weights.

`make bench` (tools/bench.py) imports the baselines from here and times them
against the add-on's own bake (operators/job.py `write`) on real engine output,
in the same run:

- shape keys: the same key blocks, then `key_block.value = w;
  key_block.keyframe_insert("value", frame=f)` per frame per control;
- mesh cache: a PC2 writer calling struct.pack per vertex per frame (+ the same
  MeshCache modifier).

Each naive result is checked against the bulk one (same keys / same bytes).
When a naive loop would take long it is timed on a leading subset of frames and
extrapolated linearly (said in the output; for keyframe_insert, whose cost per
key grows with the curve length, linear extrapolation under-estimates the naive
time, so the ratio reported is conservative).

Standalone (synthetic weights, bake only; writes out/bench_bake.json):

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

import bpy
from flame_lipsync.core.flame import FLAME_ASSETS, VERTEX_COUNT
from flame_lipsync.core.pc2 import HEADER_SIZE
from flame_lipsync.core.performance import Performance
from flame_lipsync import pipeline
from flame_lipsync.core.rig import ALL_CONTROLS, CONTROLS
from flame_lipsync.operators import bake, headless, job

HEAD = FLAME_ASSETS / "flame_template.ply"
BLOCK_FRAMES = 30  # the naive loops check their time budget this often


def fcurve_co(action) -> list[np.ndarray]:
    """(frame, value) pairs of every F-curve of `action`, sorted by data path."""
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


def _budgeted(step, frames: int, budget_s: float, block: int = BLOCK_FRAMES):
    """Run step(lo, hi) block by block until all frames are done or the budget is
    spent (the per-frame cost may grow, so it is checked as it goes); a run whose
    projected total is within 1.5x the budget is finished rather than extrapolated.
    Returns (seconds, frames done, {ms per frame in the first and the last block})."""
    done, spent, per_frame = 0, 0.0, []
    while done < frames and (done == 0 or spent < budget_s or spent * frames / done <= 1.5 * budget_s):
        hi = min(frames, done + block)
        t0 = time.perf_counter()
        step(done, hi)
        per_frame.append((time.perf_counter() - t0) / (hi - done))
        spent += per_frame[-1] * (hi - done)
        done = hi
    return spent, done, {"ms_per_frame_first_block": 1e3 * per_frame[0],
                         "ms_per_frame_last_block": 1e3 * per_frame[-1]}


def naive_shape_keys(obj, fields, weights: np.ndarray, frame_start: int, budget_s: float) -> dict:
    """keyframe_insert per frame per control onto the same shape keys as the bulk bake."""
    frames = len(weights)
    names = CONTROLS if weights.shape[1] == len(CONTROLS) else ALL_CONTROLS
    t0 = time.perf_counter()
    bake.bake_shape_keys(obj, names, fields, weights[:1], frame_start=frame_start)
    key = obj.data.shape_keys
    key.animation_data.action = None          # start the naive action from scratch
    setup = time.perf_counter() - t0
    blocks = [key.key_blocks[bake.PREFIX + c] for c in names]

    def step(lo, hi):
        for f in range(lo, hi):
            for kb, w in zip(blocks, weights[f]):
                kb.value = w
                kb.keyframe_insert("value", frame=frame_start + f)

    spent, measured, cost = _budgeted(step, frames, budget_s)
    return {"naive_s": setup + spent * frames / measured, "naive_frames_timed": measured,
            "naive_extrapolated": measured < frames, "keys": frames * len(names),
            "action": key.animation_data.action, **cost}


def same_keys(bulk_co, naive_co, frames_timed: int) -> bool:
    n = 2 * frames_timed
    return len(bulk_co) == len(naive_co) and all(
        np.allclose(a[:n], b[:n], atol=1e-6) for a, b in zip(bulk_co, naive_co))


def _pc2_header(count: int, start: float) -> bytes:
    return struct.pack("<12siiffi", b"POINTCACHE2\0", 1, VERTEX_COUNT, float(start), 1.0, count)


def naive_mesh_cache(obj, head: np.ndarray, fields, weights: np.ndarray, frame_start: int,
                     path: Path, budget_s: float) -> dict:
    """Per-frame vertices (head + weights @ fields), struct.pack per vertex, + the modifier."""
    frames = len(weights)
    flat = fields.reshape(len(fields), -1)
    with open(path, "wb") as f:
        t0 = time.perf_counter()
        f.write(_pc2_header(frames, frame_start))
        header = time.perf_counter() - t0

        def step(lo, hi):
            for w in weights[lo:hi]:
                for x, y, z in (head + (w @ flat).reshape(-1, 3)).tolist():
                    f.write(struct.pack("<3f", x, y, z))

        spent, measured, cost = _budgeted(step, frames, budget_s)
        if measured < frames:  # the file holds what was timed
            f.seek(0)
            f.write(_pc2_header(measured, frame_start))
    t0 = time.perf_counter()
    mod = obj.modifiers.new("LS_MeshCache", 'MESH_CACHE')
    mod.cache_format, mod.filepath, mod.frame_start = 'PC2', str(path), float(frame_start)
    modifier = time.perf_counter() - t0
    return {"naive_s": header + modifier + spent * frames / measured, "naive_frames_timed": measured,
            "naive_extrapolated": measured < frames, **cost}


def same_pc2_payload(bulk_path: Path, naive_path: Path) -> bool:
    """Same header (but the sample count, when a subset was timed) and the same vertices:
    within 1e-6 m, as the bulk bake poses blocks of frames at once (a matrix product)
    where the loop poses one frame at a time, which orders the float sums otherwise."""
    naive_bytes = Path(naive_path).read_bytes()
    with open(bulk_path, "rb") as f:
        bulk_head = f.read(len(naive_bytes))
    bulk = np.frombuffer(bulk_head[HEADER_SIZE:], np.float32)
    naive = np.frombuffer(naive_bytes[HEADER_SIZE:], np.float32)
    return (bulk_head[:28] == naive_bytes[:28] and bulk.shape == naive.shape
            and bool(np.abs(bulk - naive).max(initial=0.0) <= 1e-6))


def bulk_vs_naive(mode: str, controls: np.ndarray, fps: float, folder: Path, budget_s: float,
                  first_frame: int = 1) -> dict:
    """The add-on's bake (job.write) and the naive loop on the same controls, same process."""
    names = CONTROLS if controls.shape[1] == len(CONTROLS) else ALL_CONTROLS  # mouth, or the whole face
    performance = Performance(fps=fps, first_frame=first_frame, controls=controls.astype(np.float32),
                              control_names=names)
    bulk_pc2, naive_pc2 = folder / "bulk.pc2", folder / "naive.pc2"
    settings = job.JobSettings(mode=mode, cache_path=str(bulk_pc2), relative_cache=False)
    obj = headless.open_head(str(HEAD), None)
    t0 = time.perf_counter()
    job.write(obj, performance, settings)
    bulk = time.perf_counter() - t0
    head = job.head_vertices(obj)
    fields = pipeline.head_fields(head, names)
    if mode == "SHAPE_KEYS":
        bulk_co = fcurve_co(bake.owned_action(obj))
        obj = headless.open_head(str(HEAD), None)
        row = naive_shape_keys(obj, fields.astype(np.float64), performance.controls, first_frame, budget_s)
        row["same_output"] = same_keys(bulk_co, fcurve_co(row.pop("action")), row["naive_frames_timed"])
    else:
        obj = headless.open_head(str(HEAD), None)
        row = naive_mesh_cache(obj, head, fields, performance.controls, first_frame, naive_pc2, budget_s)
        row["same_output"] = same_pc2_payload(bulk_pc2, naive_pc2)
        row["bytes"] = bulk_pc2.stat().st_size
        bulk_pc2.unlink()
        naive_pc2.unlink()
    row.update(bulk_s=bulk, ratio=row["naive_s"] / bulk, frames=len(controls))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--naive-budget", type=float, default=20.0,
                        help="seconds each naive loop may run before it is extrapolated")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench_bake.json"))
    args = parser.parse_args()
    if not HEAD.is_file():
        raise SystemExit(f"bench_bake needs the FLAME template at {HEAD}")
    frames = int(round(args.seconds * args.fps))
    weights = np.clip(np.random.default_rng(0).normal(0.3, 0.25, (frames, len(CONTROLS))), 0, 1.2)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {mode: bulk_vs_naive(mode, weights, args.fps, Path(tmp), args.naive_budget)
                for mode in ("SHAPE_KEYS", "MESH_CACHE")}
    result = {
        "blender": bpy.app.version_string, "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "frames": frames, "fps": args.fps, "controls": len(CONTROLS), "vertices": VERTEX_COUNT,
        "shape_keys": rows["SHAPE_KEYS"], "mesh_cache": rows["MESH_CACHE"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))

    print(f"Blender {result['blender']}, {frames} frames ({args.seconds:g} s at {args.fps:g} fps), "
          f"{len(CONTROLS)} controls, {VERTEX_COUNT} vertices")
    print(f"{'bake':<12}{'bulk s':>10}{'naive s':>12}{'ratio':>10}  naive timing / check")
    for name, r in (("shape keys", result["shape_keys"]), ("mesh cache", result["mesh_cache"])):
        how = (f"extrapolated from {r['naive_frames_timed']} of {frames} frames"
               if r["naive_extrapolated"] else "all frames")
        print(f"{name:<12}{r['bulk_s']:>10.3f}{r['naive_s']:>12.2f}{r['ratio']:>9.0f}x  "
              f"{how}; same output={r['same_output']}")
    print(f"-> {args.out}")
    ok = all(r["ratio"] >= 20 and r["same_output"] for r in rows.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
