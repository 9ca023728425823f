"""The pipeline, in order: audio -> engine -> motion -> layers -> pose. One place that runs the
stages; the operators (UI bake), the headless CLI (bake and animate), eval and bench
all call it, so each gives what the others give. Never imports bpy.

    speech = pipeline.load_audio("line.wav", fps=30)
    performance = pipeline.perform(speech, fps=30, settings=pipeline.Settings(engine="neural"))
    for block in pipeline.pose_blocks(performance, head):   # (<=600, 5023, 3) vertices
        ...
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..core import cancel, motion
from ..core.cancel import Cancelled  # noqa: F401  (the user cancelled; nothing has been written)
from ..core.layers import LayerSettings, apply_layers
from ..core.audio import load_speech as load_audio  # noqa: F401  (the pipeline's first stage)
from ..core.performance import Performance
from ..core.rig import CONTROL_LAYERS, CONTROLS, load_rig
from .engines import ENGINES, get as get_engine, run_engine  # noqa: F401

POSE_BLOCK = 600  # frames posed at once: bounded memory for long dialogue



@dataclass
class Settings:
    engine: str = "phonetic"
    style: str | None = None          # engines with styles: a training voice, None = their average
    device: str | None = None         # engines on torch: "cpu", "cuda" or "mps" (preferences)
    transcript: str | None = None
    intensity: float = 1.0
    smoothing: float = 0.0
    mode: str = "SHAPE_KEYS"          # or "MESH_CACHE" (bake writers only)
    on_conflict: str = "refuse"       # or "stash" (bake writers only)
    cache_path: str | None = None     # PC2 file (absolute) for MESH_CACHE
    relative_cache: bool = True
    frame_range: tuple[int, int] | None = None   # keep only these scene frames
    mouth: bool = True                # the engine's mouth (off: the mouth rests, other layers play)
    layers: LayerSettings | None = field(default_factory=LayerSettings)  # None: mouth only (10 controls)


def perform(speech, fps: float, settings: Settings, first_frame: int = 1,
            stage=lambda name, fraction: None, cancelled=lambda: False) -> Performance:
    """Speech -> Performance with per-frame controls (engine, then the motion stage).
    Offsets are left to `pose`, which knows the head."""
    stage("recognising speech", 0.05)
    options = {"style": settings.style} if settings.style else {}
    if settings.device:
        options["device"] = settings.device
    with cancel.cancellable(cancelled):  # recogniser pieces, network chunks, layers check it
        return _perform(speech, fps, settings, first_frame, stage, options)


def _perform(speech, fps, settings, first_frame, stage, options) -> Performance:
    performance = run_engine(settings.engine, speech, fps, settings.transcript, first_frame,
                             with_offsets=False, **options)
    cancel.check()
    stage("shaping motion", 0.85)
    performance = motion.smooth(performance, settings.smoothing)
    performance = motion.apply_intensity(performance, settings.intensity)
    if settings.layers is not None:  # eyes, brows, head, emotion (core.layers)
        performance = apply_layers(performance, speech, settings.layers)
    if not settings.mouth:
        controls = performance.controls.copy()
        controls[:, [performance.control_names.index(n) for n in CONTROL_LAYERS["mouth"]]] = 0.0
        performance = performance.with_(controls=controls)
    if settings.frame_range:
        performance = clip_to_frames(performance, *settings.frame_range)
    cancel.check()
    return performance


def clip_to_frames(performance: Performance, start: int, end: int) -> Performance:
    first = performance.first_frame
    lo, hi = max(start - first, 0), min(end - first + 1, performance.frame_count)
    if hi <= lo:
        raise ValueError(f"frame range {start}-{end} does not overlap the dialogue "
                         f"(frames {first}-{first + performance.frame_count - 1})")
    rotation = performance.head_rotation
    return performance.with_(controls=performance.controls[lo:hi], first_frame=first + lo,
                             head_rotation=None if rotation is None else rotation[lo:hi])


def head_fields(head: np.ndarray, names=CONTROLS) -> np.ndarray:
    """(len(names), 5023, 3) rig fields in the head's own frame (a posed or scaled head's
    lips move the same way as the template's; its lids close on its own eyeballs).
    Read-only and kept for the last few heads: rebuilding the lids costs ~0.3 s, and a
    bake asks twice (key reduction, then the keys), every re-bake again."""
    names = tuple(names)
    rig = load_rig()
    head = np.asarray(head)
    key = (rig, names, head.dtype.str, head.shape, hashlib.sha1(np.ascontiguousarray(head)).digest())
    fields = _fields_cache.get(key)
    if fields is None:
        if names == CONTROLS:
            fields = rig.fields_for(head)
        else:
            from ..core.rig import ALL_CONTROLS
            fields = rig.all_fields_for(head)[[ALL_CONTROLS.index(n) for n in names]]
        fields.setflags(write=False)
        while len(_fields_cache) >= FIELDS_CACHED:
            _fields_cache.pop(next(iter(_fields_cache)))
        _fields_cache[key] = fields
    return fields


FIELDS_CACHED = 4
_fields_cache: dict = {}


def pose_blocks(performance: Performance, head: np.ndarray, block: int = POSE_BLOCK):
    """Per-frame vertices of `head` performing, in blocks of <= `block` frames:
    head + controls @ fields. The one definition of "pose the head"."""
    head = np.asarray(head, np.float32)
    flat = head_fields(head, performance.control_names).reshape(len(performance.control_names), -1)
    for lo in range(0, performance.frame_count, block):
        weights = performance.controls[lo:lo + block]
        yield head[None] + (weights @ flat).reshape(len(weights), -1, 3)


def pose(performance: Performance, head: np.ndarray) -> np.ndarray:
    """(T, 5023, 3) float32 vertices (all frames in memory; see pose_blocks)."""
    blocks = list(pose_blocks(performance, head))
    if not blocks:
        return np.zeros((0,) + head.shape, np.float32)
    return np.concatenate(blocks).astype(np.float32)
