"""One lip-sync job: compute off the main thread, then write Blender data.

The computing half (pipeline.perform: engine, motion) touches no bpy data, so it
runs in a worker thread while Blender stays responsive; the writing half runs
on the main thread in one go. Cancelling before the write leaves the scene as
it was: nothing is written until the computation has finished.
"""
import threading
import time

import numpy as np

from .. import pipeline
from ..pipeline import Cancelled, Settings as JobSettings  # noqa: F401  (the operators' names)


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
    from . import bake, head_motion

    # Switching bake mode replaces our previous bake of the other kind: a mesh
    # cache would hide shape keys, and stale keys would confuse the artist.
    other = bake.owned_modifier(obj) if settings.mode == "SHAPE_KEYS" else bake.owned_shape_keys(obj)
    if other:
        bake.clear_bake(obj)
    head = head_vertices(obj)
    summary = _write_face(obj, head, performance, settings)
    if performance.head_rotation is not None:
        empty = head_motion.bake_head_rotation(obj, head, performance.head_rotation, performance.first_frame)
        return f"{summary}; head motion on '{empty.name}'"
    head_motion.clear_head_rotation(obj)  # a re-bake without the head layer leaves none behind
    return summary


def _write_face(obj, head, performance, settings) -> str:
    from . import bake
    frames = f"frames {performance.first_frame}-{performance.first_frame + performance.frame_count - 1}"
    if settings.mode == "SHAPE_KEYS":
        action = bake.bake_shape_keys(obj, performance.control_names,
                                      pipeline.head_fields(head, performance.control_names),
                                      performance.controls, performance.first_frame, settings.on_conflict)
        return f"baked {len(performance.control_names)} shape keys on '{obj.name}', action '{action.name}', {frames}"
    if not settings.cache_path:
        raise ValueError("mesh cache needs a file: save the .blend first or choose a cache folder")
    modifier = bake.bake_mesh_cache(obj, pipeline.pose_blocks(performance, head), performance.first_frame, settings.cache_path,
                                    settings.relative_cache, settings.on_conflict)
    return f"baked mesh cache '{modifier.name}' on '{obj.name}' ({settings.cache_path}), {frames}"


class BakeJob:
    """Runs `pipeline.perform` in a thread; the modal operator polls it and can cancel."""

    def __init__(self, speech, fps, first_frame, settings: JobSettings):
        self.args = (speech, fps, first_frame, settings)
        self.stage, self.progress = "starting", 0.0
        self.result: pipeline.Performance | None = None
        self.error: Exception | None = None
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
            speech, fps, first_frame, settings = self.args
            self.result = pipeline.perform(speech, fps, settings, first_frame,
                                           stage=self._report, cancelled=self._cancel.is_set)
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
