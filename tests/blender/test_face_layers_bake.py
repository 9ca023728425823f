"""The whole face bakes as separate layers: eyes/brows/emotion in their own F-curve
groups, the head on an owned empty + constraint that leaves the artist's transform,
action and shape keys as they were, removed by Clear."""
import bpy
import numpy as np
import pytest

from shot import AUDIO, TEMPLATE, registered_addon

from flame_lipsync.core.rig import ALL_CONTROLS, LAYER_OF


@pytest.fixture(scope="module", autouse=True)
def addon():
    registered_addon()


@pytest.fixture
def head():
    from flame_lipsync.operators import headless
    obj = headless.open_head(str(TEMPLATE), None)
    obj.location = (0.3, -0.2, 1.1)                 # the artist's own transform and action
    obj.keyframe_insert("location", frame=1)
    obj.location = (0.4, -0.2, 1.1)
    obj.keyframe_insert("location", frame=40)
    obj["artist_note"] = "mine"
    props = bpy.context.scene.flame_lipsync
    props.source, props.audio_file, props.transcript = "FILE", str(AUDIO), ""
    props.transcript_beside_audio, props.bake_mode = False, "SHAPE_KEYS"
    return obj


def fcurve_groups(obj):
    from flame_lipsync.operators import bake
    action = bake.owned_action(obj)
    if getattr(action, "layers", None):
        from bpy_extras import anim_utils
        curves = anim_utils.action_get_channelbag_for_slot(action, obj.data.shape_keys.animation_data.action_slot).fcurves
    else:
        curves = action.fcurves
    return {c.data_path.split('"')[1][3:]: (c.group.name if c.group else None) for c in curves}


def world_at(obj, frame):
    bpy.context.scene.frame_set(frame)
    return np.array(obj.matrix_world)


def test_layers_bake_in_groups_and_the_head_turns_without_touching_the_artists_data(head):
    scene = bpy.context.scene
    artist_action, basis = head.animation_data.action, np.array(head.matrix_basis)
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    groups = fcurve_groups(head)
    assert set(groups) == set(ALL_CONTROLS)
    for control, group in groups.items():
        assert group == ("Lip Sync" if LAYER_OF[control] == "mouth" else f"Lip Sync: {LAYER_OF[control]}")
    # The artist's transform and action are untouched; the constraint turns the head.
    assert head.animation_data.action == artist_action and np.allclose(head.matrix_basis, basis)
    constraint = head.constraints["LS_HeadMotion"]
    assert constraint.type == "CHILD_OF" and constraint.target.get("flame_lipsync")
    turned = [world_at(head, f) for f in range(1, 70, 5)]
    rotations = [m[:3, :3] / np.linalg.norm(m[:3, 0]) for m in turned]
    angles = [np.degrees(np.arccos(np.clip((np.trace(r @ rotations[0].T) - 1) / 2, -1, 1))) for r in rotations]
    assert 0.3 < max(angles) < 15.0, angles        # it moves, by degrees, not by a flip
    # Clear removes the constraint, the empty and its action; the artist's data stays.
    empty_name = constraint.target.name
    assert bpy.ops.flame_lipsync.clear() == {"FINISHED"}
    assert "LS_HeadMotion" not in head.constraints and empty_name not in bpy.data.objects
    assert head.animation_data.action == artist_action and head["artist_note"] == "mine"
    assert "flame_lipsync_head_empty" not in head
    scene.frame_set(1)


def test_a_layer_switched_off_bakes_no_motion_of_its_own(head):
    props = bpy.context.scene.flame_lipsync
    props.layer_head, props.layer_eyes = False, False
    try:
        assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
        assert "LS_HeadMotion" not in head.constraints
        key = head.data.shape_keys
        for name in ("blink_left", "blink_right"):
            bpy.context.scene.frame_set(30)
            assert key.key_blocks["LS_" + name].value == 0.0
    finally:
        props.layer_head, props.layer_eyes = True, True
