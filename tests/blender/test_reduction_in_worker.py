"""The UI's bake reduces keys in its worker thread (Blender stays responsive); the keys
it writes are the very keys the synchronous bake computes on the main thread."""
import bpy
import numpy as np
import pytest

from shot import AUDIO, TEMPLATE, registered_addon


@pytest.fixture(scope="module", autouse=True)
def addon():
    registered_addon()


def baked_keys(obj):
    from flame_lipsync.operators import bake
    action = bake.owned_action(obj)
    if getattr(action, "layers", None):
        from bpy_extras import anim_utils
        curves = anim_utils.action_get_channelbag_for_slot(action, obj.data.shape_keys.animation_data.action_slot).fcurves
    else:
        curves = action.fcurves
    return {c.data_path: np.array([k.co[:] for k in c.keyframe_points]) for c in curves}


def test_worker_reduction_writes_the_synchronous_bakes_keys():
    from flame_lipsync.operators import headless
    from flame_lipsync.operators.generate import gather
    from flame_lipsync.operators.job import BakeJob, head_vertices, write
    results = []
    for in_worker in (False, True):
        obj = headless.open_head(str(TEMPLATE), None)
        props = bpy.context.scene.flame_lipsync
        props.source, props.audio_file, props.transcript = "FILE", str(AUDIO), ""
        props.transcript_beside_audio, props.bake_mode = False, "SHAPE_KEYS"
        obj, speech, fps, first, settings = gather(bpy.context)
        assert settings.keys == "REDUCED"
        job = BakeJob(speech, fps, first, settings, head=head_vertices(obj) if in_worker else None)
        job.start().wait()
        assert job.error is None, job.error
        assert ("reduced_keys" in job.result.metadata) == in_worker
        write(obj, job.result, settings)
        results.append(baked_keys(obj))
    sync, worker = results
    assert sync.keys() == worker.keys()
    for path in sync:
        np.testing.assert_array_equal(sync[path], worker[path])
    assert sum(len(v) for v in worker.values()) < 0.5 * len(worker) * len(next(iter(worker.values()))) * 2
