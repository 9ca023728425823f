"""One lip-sync job: compute off the main thread, then write Blender data.

The computing half (pipeline.perform: engine, motion) touches no bpy data, so it
runs in a worker thread while Blender stays responsive; the writing half runs
on the main thread in one go. Cancelling before the write leaves the scene as
it was: nothing is written until the computation has finished.
"""
import threading
import time
from dataclasses import dataclass

import numpy as np

from .. import pipeline
from ..core import cancel
from ..core.key_reduction import DEFAULT_TOLERANCE
from ..pipeline import Cancelled  # noqa: F401  (the operators' names)


@dataclass
class JobSettings(pipeline.Settings):
    """The pipeline's settings plus what only the Blender writers read."""
    # Shape keys: "EVERY_FRAME" or "REDUCED" (fewest Bézier keys). The panel and the CLI
    # default to "REDUCED"; scripts that build settings keep one key per frame.
    keys: str = "EVERY_FRAME"
    key_tolerance: float = DEFAULT_TOLERANCE   # metres: reduced keys keep every vertex this close
    replace_range: bool = False       # a frame-range re-bake keeps our keys outside the range
    markers: str = "NONE"             # timeline markers: "NONE", "WORDS" or "PHONES"
    marker_origin: int | None = None  # scene frame of the speech's time 0 (the phones' clock)


def head_vertices(obj) -> np.ndarray:
    """The head's rest shape in local coordinates (the Basis if it has shape keys)."""
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    if mesh.shape_keys is not None:
        mesh.shape_keys.reference_key.data.foreach_get("co", co)
    else:
        mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def write(obj, performance, settings: JobSettings, mouth_interior: bool = True) -> str:
    """Bake a computed performance onto obj; returns a one-line summary.
    mouth_interior: also (re)build the owned teeth, tongue and mouth cavity."""
    from . import bake, head_motion
    from . import mouth_interior as interior

    # Switching bake mode replaces our previous bake of the other kind: a mesh
    # cache would hide shape keys, and stale keys would confuse the artist.
    other = bake.owned_modifier(obj) if settings.mode == "SHAPE_KEYS" else bake.owned_shape_keys(obj)
    if other:
        stashed = bake.stashed_artist_action(obj)
        if stashed and settings.on_conflict == "refuse":  # clearing would put it back in the way
            raise bake.BakeConflict(
                f"Shape keys of '{obj.name}' have the artist's action '{stashed}' stashed by the last "
                "bake; switching bake mode would restore it and it would block this one: choose "
                "'Stash' (command line: --stash) to keep it on its NLA track, or Clear first")
        bake.clear_bake(obj)
    head = head_vertices(obj)
    summary = _write_face(obj, head, performance, settings)
    if mouth_interior:  # after the face: the lower teeth's driver reads its LS_jaw_open key
        parts = interior.bake_mouth_interior(obj, head, performance, settings.mode)
        summary += f"; teeth and mouth ({len(parts)} objects)"
    else:
        interior.clear_mouth_interior(obj)  # a re-bake without them leaves none behind
    if settings.mode == "SHAPE_KEYS" and not getattr(settings, "replace_range", False):
        bake.remove_lines(obj)      # one line baked again replaces a channel's lines
    kind = getattr(settings, "markers", "NONE")
    if kind != "NONE":
        from . import markers
        count = markers.add_markers(bpy_scene(obj), obj.name, performance, kind,
                                    getattr(settings, "marker_origin", None), settings.transcript)
        summary += f"; {count} markers"
    if performance.head_rotation is not None:
        empty = head_motion.bake_head_rotation(obj, head, performance.head_rotation, performance.first_frame)
        return f"{summary}; head motion on '{empty.name}'"
    head_motion.clear_head_rotation(obj)  # a re-bake without the head layer leaves none behind
    return summary


def bpy_scene(obj):
    """The scene the head is in (the context's when it is there)."""
    import bpy
    scene = bpy.context.scene
    if scene is not None and obj.name in scene.objects:
        return scene
    return obj.users_scene[0] if obj.users_scene else scene


def _write_face(obj, head, performance, settings) -> str:
    from . import bake
    frames = f"frames {performance.first_frame}-{performance.first_frame + performance.frame_count - 1}"
    if settings.mode == "SHAPE_KEYS":
        action = bake.bake_shape_keys(obj, performance.control_names,
                                      pipeline.head_fields(head, performance.control_names),
                                      performance.controls, performance.first_frame, settings.on_conflict,
                                      keys=getattr(settings, "keys", "EVERY_FRAME"),
                                      tolerance=getattr(settings, "key_tolerance", DEFAULT_TOLERANCE),
                                      replace_range=getattr(settings, "replace_range", False),
                                      reduced=performance.metadata.get("reduced_keys"))
        return f"baked {len(performance.control_names)} shape keys on '{obj.name}', action '{action.name}', {frames}"
    if not settings.cache_path:
        raise ValueError("mesh cache needs a file: save the .blend first or choose a cache folder")
    modifier = bake.bake_mesh_cache(obj, pipeline.pose_blocks(performance, head), performance.first_frame, settings.cache_path,
                                    settings.relative_cache, settings.on_conflict)
    return f"baked mesh cache '{modifier.name}' on '{obj.name}' ({settings.cache_path}), {frames}"


def reduce_in_worker(performance, head, settings):
    """The shape-key bake's key reduction, computed with the performance (off Blender's
    main thread) for the head whose rest shape is `head`; the bake then writes those keys."""
    if (settings.mode != "SHAPE_KEYS" or getattr(settings, "keys", "EVERY_FRAME") != "REDUCED"
            or getattr(settings, "replace_range", False)):
        return performance
    from ..core.key_reduction import reduce_keys
    fields = pipeline.head_fields(np.asarray(head, np.float32), performance.control_names)  # as the bake
    head = np.asarray(head, np.float32).astype(np.float64)
    reduction = reduce_keys(performance.controls, fields, getattr(settings, "key_tolerance", DEFAULT_TOLERANCE),
                            performance.control_names, head=head)
    return performance.with_(metadata={**performance.metadata, "reduced_keys": reduction.keys})


class BakeJob:
    """Runs `pipeline.perform` in a thread; the modal operator polls it and can cancel."""

    def __init__(self, speech, fps, first_frame, settings: JobSettings, head=None):
        self.args = (speech, fps, first_frame, settings)
        self.head = head  # the target's rest vertices: key reduction runs here, not in the UI
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
            result = pipeline.perform(speech, fps, settings, first_frame,
                                      stage=self._report, cancelled=self._cancel.is_set)
            if self.head is not None:
                self._report("reducing keys", 0.9)
                with cancel.cancellable(self._cancel.is_set):  # checked between controls
                    result = reduce_in_worker(result, self.head, settings)
            self.result = result
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
