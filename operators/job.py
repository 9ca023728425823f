"""One lip-sync job: compute off the main thread, then write Blender data.

The computing half (engine, smoothing, intensity) touches no bpy data, so it
runs in a worker thread while Blender stays responsive; the writing half runs
on the main thread in one go. Cancelling before the write leaves the scene as
it was: nothing is written until the computation has finished.
"""
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..core import motion
from ..core.engines import run_engine
from ..core.rig import CONTROLS, load_rig


class Cancelled(Exception):
    pass


@dataclass
class JobSettings:
    engine: str = "phonetic"
    style: str | None = None          # neural engine: a training voice, None = their average
    device: str | None = None         # neural engine: "cpu", "cuda" or "mps" (preferences)
    transcript: str | None = None
    intensity: float = 1.0
    smoothing: float = 0.0
    mode: str = "SHAPE_KEYS"          # or "MESH_CACHE"
    on_conflict: str = "refuse"       # or "stash"
    cache_path: str | None = None     # PC2 file (absolute) for MESH_CACHE
    relative_cache: bool = True
    frame_range: tuple[int, int] | None = None   # keep only these scene frames


def compute(speech, fps: float, first_frame: int, settings: JobSettings, stage=lambda name, f: None,
            cancelled=lambda: False):
    """Speech -> Performance with controls only (offsets come from the head's frame)."""
    stage("recognising speech", 0.05)
    options = {"style": settings.style} if settings.style else {}
    if settings.device:
        options["device"] = settings.device
    performance = run_engine(settings.engine, speech, fps, settings.transcript, first_frame,
                             with_offsets=False, **options)
    if cancelled():
        raise Cancelled()
    stage("shaping motion", 0.85)
    performance = motion.smooth(performance, settings.smoothing)
    performance = motion.apply_intensity(performance, settings.intensity)
    if settings.frame_range:
        performance = clip_to_frames(performance, *settings.frame_range)
    if cancelled():
        raise Cancelled()
    return performance


def clip_to_frames(performance, start: int, end: int):
    first = performance.first_frame
    lo, hi = max(start - first, 0), min(end - first + 1, performance.frame_count)
    if hi <= lo:
        raise ValueError(f"frame range {start}-{end} does not overlap the dialogue "
                         f"(frames {first}-{first + performance.frame_count - 1})")
    return performance.with_(controls=performance.controls[lo:hi], first_frame=first + lo)


def head_vertices(obj) -> np.ndarray:
    """The head's rest shape in local coordinates (the Basis if it has shape keys)."""
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    if mesh.shape_keys is not None:
        mesh.shape_keys.reference_key.data.foreach_get("co", co)
    else:
        mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def write(obj, performance, settings: JobSettings) -> str:
    """Bake a computed performance onto obj; returns a one-line summary."""
    from . import bake

    # Switching bake mode replaces our previous bake of the other kind: a mesh
    # cache would hide shape keys, and stale keys would confuse the artist.
    other = bake.owned_modifier(obj) if settings.mode == "SHAPE_KEYS" else bake.owned_shape_keys(obj)
    if other:
        bake.clear_bake(obj)
    head = head_vertices(obj)
    fields = load_rig().fields_for(head)
    frames = f"frames {performance.first_frame}-{performance.first_frame + performance.frame_count - 1}"
    if settings.mode == "SHAPE_KEYS":
        action = bake.bake_shape_keys(obj, CONTROLS, fields, performance.controls,
                                      performance.first_frame, settings.on_conflict)
        return f"baked {len(CONTROLS)} shape keys on '{obj.name}', action '{action.name}', {frames}"
    if not settings.cache_path:
        raise ValueError("mesh cache needs a file: save the .blend first or choose a cache folder")
    flat = fields.reshape(len(CONTROLS), -1)

    def chunks(size=600):  # bounded memory for long dialogue
        for lo in range(0, performance.frame_count, size):
            weights = performance.controls[lo:lo + size]
            yield head[None] + (weights @ flat).reshape(len(weights), -1, 3)

    modifier = bake.bake_mesh_cache(obj, chunks(), performance.first_frame, settings.cache_path,
                                    settings.relative_cache)
    return f"baked mesh cache '{modifier.name}' on '{obj.name}' ({settings.cache_path}), {frames}"


class BakeJob:
    """Runs `compute` in a thread; the modal operator polls it and can cancel."""

    def __init__(self, speech, fps, first_frame, settings: JobSettings):
        self.args = (speech, fps, first_frame, settings)
        self.stage, self.progress = "starting", 0.0
        self.result = self.error = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.perf_counter()

    def start(self):
        self._thread.start()
        return self

    def _report(self, name, fraction):
        self.stage, self.progress = name, fraction

    def _run(self):
        try:
            self.result = compute(*self.args, stage=self._report, cancelled=self._cancel.is_set)
        except Exception as err:  # surfaced to the user by the operator
            self.error = err

    def cancel(self):
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout=None):
        self._thread.join(timeout)
        return self
